// meshctl's connection to mesh-control's Admin service: promise-returning calls, each
// with a deadline, and every gRPC failure turned into one line an operator can act on.

import * as grpc from '@grpc/grpc-js'

import {
  AdminClient,
  type AdminClientType,
  type ApplyRequest,
  type ApplyResponse__Output,
  type CreateTokenRequest,
  type CreateTokenResponse__Output,
  type DeleteRequest,
  type DeleteResponse__Output,
  type GetRequest,
  type GetResponse__Output,
  type StatusResponse__Output,
} from '../../control/proto.js'
import { formatDuration } from '../../config/index.js'
import { CommandError, firstLine } from '../common.js'

/** Reasons a connection attempt failed, as grpc-js reports them (`connect ECONNREFUSED ...`). */
const CONNECT_REASONS: readonly [RegExp, string][] = [
  [/ECONNREFUSED/, 'connection refused'],
  [/ECONNRESET/, 'connection reset'],
  [/EHOSTUNREACH/, 'host unreachable'],
  [/ENETUNREACH/, 'network unreachable'],
  [/ETIMEDOUT/, 'connection timed out'],
  [/EADDRNOTAVAIL/, 'address not available'],
  [/Name resolution failed|ENOTFOUND|EAI_AGAIN/, 'cannot resolve the host name'],
  [/Connection dropped|Connection closed|GOAWAY/i, 'connection dropped'],
]

/** The reason in a grpc-js UNAVAILABLE that never reached the server, or undefined for one the server sent. */
function connectionFailure(details: string): string | undefined {
  // grpc-js's own wording; a server's UNAVAILABLE (an unwritable store) reads differently.
  if (!/^(No connection established|Name resolution failed|Connection dropped|Connection closed|(read|write|connect) E[A-Z]+)/.test(details)) {
    return undefined
  }
  for (const [pattern, reason] of CONNECT_REASONS) if (pattern.test(details)) return reason
  // `No connection established. Last error: Error: X (2026-...). Resolution note: ` -> `X`.
  return firstLine(details)
    .replace(/^No connection established\. Last error: (Error: )?/, '')
    .replace(/\. Resolution note:.*$/, '')
    .replace(/ \(\d{4}-\d\d-\d\dT[^)]*\)/, '')
}

export class AdminConnection {
  private readonly client: AdminClientType

  constructor(
    /** HOST:PORT as the user gave it (hostnames resolve through DNS). */
    readonly address: string,
    readonly timeoutMs: number,
  ) {
    const Client = AdminClient()
    this.client = new Client(address, grpc.credentials.createInsecure())
  }

  apply(request: ApplyRequest): Promise<ApplyResponse__Output> {
    return this.call((options, done) => this.client.apply(request, options, done))
  }

  get(request: GetRequest): Promise<GetResponse__Output> {
    return this.call((options, done) => this.client.get(request, options, done))
  }

  delete(request: DeleteRequest): Promise<DeleteResponse__Output> {
    return this.call((options, done) => this.client.delete(request, options, done))
  }

  status(): Promise<StatusResponse__Output> {
    return this.call((options, done) => this.client.status({}, options, done))
  }

  createToken(request: CreateTokenRequest): Promise<CreateTokenResponse__Output> {
    return this.call((options, done) => this.client.createToken(request, options, done))
  }

  close(): void {
    this.client.close()
  }

  /**
   * One unary call with a deadline. Fails fast when the connection is refused (no
   * waitForReady: an operator wants "connection refused" now, not after the timeout).
   */
  private call<T>(start: (options: grpc.CallOptions, done: grpc.requestCallback<T>) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      start({ deadline: Date.now() + this.timeoutMs }, (err, response) => {
        if (err) reject(this.describe(err))
        else if (response === undefined) reject(new CommandError(`mesh-control at ${this.address} sent an empty answer`))
        else resolve(response)
      })
    })
  }

  /** The one line for a failed call. */
  describe(err: grpc.ServiceError): CommandError {
    const details = err.details ?? ''
    const notMeshControl = (reason: string) => new CommandError(`${this.address} does not serve mesh-control's Admin API (${reason})`)
    const unreachable = (reason: string) => new CommandError(`cannot reach mesh-control at ${this.address} (${reason})`)
    switch (err.code) {
      case grpc.status.UNAVAILABLE: {
        // An HTTP/1 server, or anything else that does not speak HTTP/2, on that port.
        if (/^No connection established.*Protocol error/.test(details)) return notMeshControl('it does not speak HTTP/2')
        const reason = connectionFailure(details)
        if (reason !== undefined) return unreachable(reason)
        break
      }
      case grpc.status.DEADLINE_EXCEEDED: {
        const waited = formatDuration(this.timeoutMs)
        // Never connected (a silent port, a black-holed address) vs connected but slow.
        const connected = this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY
        return connected
          ? new CommandError(`mesh-control at ${this.address} did not answer within ${waited} (see --timeout)`)
          : unreachable(`no answer within ${waited}`)
      }
      case grpc.status.UNIMPLEMENTED:
        // Another gRPC server, or an HTTP server answering 404, on that port.
        return notMeshControl(firstLine(details) || 'unimplemented')
      case grpc.status.INTERNAL:
      case grpc.status.UNKNOWN:
        return new CommandError(`mesh-control at ${this.address} failed: ${firstLine(details) || grpc.status[err.code]}`)
    }
    // Refusals the server explains itself (NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT,
    // UNAVAILABLE for an unwritable store): its one line is the message.
    return new CommandError(firstLine(details) || `mesh-control at ${this.address} answered ${grpc.status[err.code] ?? err.code}`)
  }
}
