/**
 * Errors of mesh-control: MeshControlError for problems the operator must fix (one line,
 * no stack), and the mapping of internal failures onto gRPC statuses.
 */
import * as grpc from '@grpc/grpc-js'
import { messageOf } from '../config/index.js'
import { StoreError, type StoreErrorCode } from './store/index.js'

/** A user error from MeshControl.start (port in use, corrupt store): one line, printed as is. */
export class MeshControlError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'MeshControlError'
  }
}

/** What a gRPC handler answers with: a status code and one line. */
export interface RpcError extends Partial<grpc.StatusObject> {
  code: grpc.status
  details: string
}

export function rpcError(code: grpc.status, details: string): RpcError {
  return { code, details, metadata: new grpc.Metadata() }
}

/** True for an object produced by {@link rpcError}. */
export function isRpcError(value: unknown): value is RpcError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RpcError).code === 'number' &&
    typeof (value as RpcError).details === 'string' &&
    !(value instanceof Error)
  )
}

const STORE_STATUS: Readonly<Record<StoreErrorCode, grpc.status>> = {
  not_found: grpc.status.NOT_FOUND,
  conflict: grpc.status.FAILED_PRECONDITION,
  invalid: grpc.status.INVALID_ARGUMENT,
  io: grpc.status.UNAVAILABLE,
  closed: grpc.status.UNAVAILABLE,
  // A store that turned corrupt under a running server cannot serve; the operator must act.
  corrupt: grpc.status.INTERNAL,
  compacted: grpc.status.INTERNAL,
  // Only raised when opening a store, never by a call on an open one.
  locked: grpc.status.UNAVAILABLE,
}

export { firstLine, messageOf } from '../config/index.js'

/**
 * The status a failed handler answers with: its own RpcError, a StoreError by code, and
 * anything else as INTERNAL with its first line (never a stack: it goes to a client).
 */
export function toRpcError(err: unknown): RpcError {
  if (isRpcError(err)) return err
  if (err instanceof StoreError) return rpcError(STORE_STATUS[err.code], err.message)
  return rpcError(grpc.status.INTERNAL, `internal error: ${messageOf(err)}`)
}
