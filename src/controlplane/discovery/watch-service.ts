/**
 * The Discovery gRPC service: authenticates a Watch stream, reads its Hello, and hands
 * it to the distributor as a WatchSession. Stream-protocol violations end the stream
 * with INVALID_ARGUMENT and one line naming the problem.
 */
import * as grpc from '@grpc/grpc-js'
import type { Hello__Output, WatchRequest__Output } from '../../control/proto.js'
import { isRpcError, rpcError, toRpcError, type RpcError } from '../errors.js'
import { checkName, namespaceOrDefault, peerAddress, requireField } from '../rpc.js'
import { checkIdentity, type Identity, type JoinTokens } from '../tokens.js'
import type { Distributor } from './distributor.js'
import type { ScopeRequest } from './scope.js'
import { WatchSession } from './session.js'

export interface WatchServiceDeps {
  tokens: JoinTokens
  distributor: Distributor
  log: (line: string) => void
  /** A stream that sends no Hello within this time is ended (default 30 s). */
  helloTimeoutMs?: number
  /** The server's authority id, announced on every push. */
  authorityId?: string
}

const MAX_WANTS = 1000
/** An authority id is 64 hex digits; anything longer from a Hello is cut (it is only shown). */
const MAX_AUTHORITY_ID_LENGTH = 64

/** The scope request of a Hello, with every field checked. */
export function scopeRequestOf(hello: Hello__Output): ScopeRequest {
  const service = checkName(hello.service, 'hello.service')
  const namespace = checkName(namespaceOrDefault(hello.namespace), 'hello.namespace')
  if (hello.wants.length > MAX_WANTS) {
    throw rpcError(grpc.status.INVALID_ARGUMENT, `hello.wants: expected at most ${MAX_WANTS} entries, got ${hello.wants.length}`)
  }
  const wants = new Set<string>()
  hello.wants.forEach((key, index) => {
    const field = `hello.wants[${index}]`
    if (key.kind !== '' && key.kind !== 'Service') {
      throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}.kind: expected "Service", got ${JSON.stringify(key.kind)}`)
    }
    const name = checkName(key.name, `${field}.name`)
    const wantedNamespace = key.namespace === '' ? namespace : checkName(key.namespace, `${field}.namespace`)
    wants.add(`${wantedNamespace}/${name}`)
  })
  return { namespace, service, wants: [...wants].sort() }
}

export function watchHandler(deps: WatchServiceDeps): grpc.handleBidiStreamingCall<WatchRequest__Output, Buffer> {
  const helloTimeoutMs = deps.helloTimeoutMs ?? 30_000
  return (call) => {
    let session: WatchSession | undefined
    let finished = false
    const finish = (error: RpcError | undefined): void => {
      if (finished) return
      finished = true
      clearTimeout(helloTimer)
      if (session !== undefined) {
        deps.distributor.leave(session)
        session.detach()
      }
      if (error === undefined) return
      if (error.code === grpc.status.OK) call.end()
      else call.emit('error', error)
    }
    const helloTimer = setTimeout(
      () => finish(rpcError(grpc.status.DEADLINE_EXCEEDED, `no hello within ${helloTimeoutMs} ms of opening the stream`)),
      helloTimeoutMs,
    )
    helloTimer.unref()

    // The peer went away (cancelled, reset) or half-closed: nothing more to send.
    call.on('cancelled', () => finish(undefined))
    call.on('error', () => finish(undefined))
    call.on('end', () => finish(rpcError(grpc.status.OK, 'client closed the stream')))

    const onMessage = (admitted: Identity, message: WatchRequest__Output): void => {
      if (finished) return
      try {
        if (session !== undefined) {
          session.receive(message)
          return
        }
        const hello = message.hello
        if (message.requestType !== 'hello' || hello == null) {
          throw rpcError(grpc.status.INVALID_ARGUMENT, 'the first message of a Watch stream must be a hello')
        }
        const request = scopeRequestOf(hello)
        checkIdentity(admitted, request)
        const proxyId = requireField(hello.proxyId, 'hello.proxy_id')
        const lastAckedVersion = /^\d{1,20}$/.test(hello.lastAckedVersion) ? hello.lastAckedVersion : '0'
        clearTimeout(helloTimer)
        session = new WatchSession(
          request,
          {
            proxyId,
            buildVersion: hello.buildVersion.slice(0, 100),
            peerAddress: peerAddress(call),
            endpoints: hello.endpoints,
            lastAckedVersion,
            authorityId: hello.authorityId.slice(0, MAX_AUTHORITY_ID_LENGTH),
          },
          {
            send: (push) => {
              if (!finished) call.write(push)
            },
            end: (error) => finish(error),
          },
          {
            authorityId: deps.authorityId,
            onNack: (nacked, version, error) =>
              deps.log(
                `discovery: proxy ${nacked.request.namespace}/${nacked.request.service} ${JSON.stringify(proxyId)} rejected version ${version}: ${error}`,
              ),
          },
        )
        deps.distributor.join(session)
      } catch (err) {
        const error = toRpcError(err)
        if (!isRpcError(err)) deps.log(`discovery: ${error.details}`)
        finish(error)
      }
    }

    deps.tokens.authenticate(call.metadata).then(
      (admitted) => {
        if (!finished) call.on('data', (message: WatchRequest__Output) => onMessage(admitted, message))
      },
      (err: unknown) => finish(toRpcError(err)),
    )
  }
}
