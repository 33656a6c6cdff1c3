/** Small helpers shared by the gRPC handlers of mesh-control. */
import * as grpc from '@grpc/grpc-js'
import { dnsLabel } from '../config/resources.js'
import { INVALID, ParseContext } from '../config/schema.js'
import { rpcError, toRpcError } from './errors.js'

/**
 * A unary handler from an async function: its result is the response, a thrown RpcError
 * its status, anything else INTERNAL (see toRpcError).
 */
export function unary<Request, Response>(
  handle: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Promise<Response>,
): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    handle(call.request, call).then(
      (response) => callback(null, response),
      (err: unknown) => callback(toRpcError(err)),
    )
  }
}

/** Checks a required string field of a request: INVALID_ARGUMENT naming it when empty or too long. */
export function requireField(value: string, field: string, maxLength = 253): string {
  if (value.length === 0) throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}: required`)
  if (value.length > maxLength) {
    throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}: expected at most ${maxLength} characters, got ${value.length}`)
  }
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}: control characters are not allowed`)
  }
  return value
}

/** `namespace` from a request: empty means "default". */
export function namespaceOrDefault(namespace: string): string {
  return namespace === '' ? 'default' : namespace
}

/** The peer of a call as `IP:PORT` (grpc-js reports `ipv4:1.2.3.4:5` or `ipv6:[::1]:5`). */
export function peerAddress(call: { getPeer(): string }): string {
  return call.getPeer().replace(/^ipv[46]:/, '')
}

/** The resource model's complaint about `value` as a service or namespace name, or undefined when valid. */
export function dnsLabelProblem(value: string): string | undefined {
  const ctx = new ParseContext()
  return dnsLabel.parse(value, [], ctx) === INVALID ? (ctx.errors[0]?.message ?? 'invalid name') : undefined
}

/** INVALID_ARGUMENT naming `field` unless `value` is a DNS label (the model's rule for names). */
export function checkName(value: string, field: string): string {
  const problem = dnsLabelProblem(value)
  if (problem !== undefined) throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}: ${problem}`)
  return value
}
