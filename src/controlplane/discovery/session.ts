/**
 * One Discovery stream after its Hello: the push/reply state machine of
 * discovery.proto, independent of gRPC (the transport sends prepared buffers and ends
 * the stream). The distributor tells the session when its group's scope changes; the
 * session decides whether and what to push:
 *   * at most one push outstanding; changes meanwhile are folded into the next push;
 *   * the first push of the stream, and the first after a NACK, is full; later ones are
 *     deltas against the last ACKed scope;
 *   * after a NACK nothing is pushed until the scope differs from the NACKed one;
 *   * a scope whose content equals what the proxy holds is never pushed.
 */
import * as grpc from '@grpc/grpc-js'
import { timestampFromDate, type ProxyStatus, type WatchRequest__Output, type WorkloadEndpoint__Output } from '../../control/proto.js'
import { rpcError, type RpcError } from '../errors.js'
import type { PushedResource } from './catalog.js'
import { encodePush } from './encoding.js'
import type { Scope, ScopeRequest } from './scope.js'

export interface SessionTransport {
  /** Writes one encoded WatchResponse. */
  send(push: Buffer): void
  /** Ends the stream with a status. */
  end(error: RpcError): void
}

export interface SessionInfo {
  proxyId: string
  buildVersion: string
  peerAddress: string
  /** Hello.endpoints (informational). */
  endpoints: readonly WorkloadEndpoint__Output[]
  /** Hello.last_acked_version: what the proxy runs when it connects. */
  lastAckedVersion: string
  /** Hello.authority_id: the authority of the certificate the proxy held when it connected. */
  authorityId: string
}

/** Longest NACK error kept for Status (one line; a broken client could send megabytes). */
const MAX_ERROR_LENGTH = 2000

type ReplyState = 'REPLY_STATE_UNSPECIFIED' | 'REPLY_STATE_PENDING' | 'REPLY_STATE_ACK' | 'REPLY_STATE_NACK'

interface Outstanding {
  nonce: string
  version: string
  scope: Scope
}

export interface SessionOptions {
  /** The server's authority id, announced on every push (WatchResponse.authority_id). */
  authorityId?: string
  /** A NACK arrived (for the log). */
  onNack?: (session: WatchSession, version: string, error: string) => void
}

export class WatchSession {
  readonly connectedAt = new Date()
  private scope: Scope | undefined
  private outstanding: Outstanding | undefined
  /** The content the proxy holds from this stream (the last ACKed push, or equal content). */
  private acked: Scope | undefined
  private nackedFingerprint: string | undefined
  private nextFull = true
  private nonceCounter = 0
  private pushedVersion = '0'
  private ackedVersion: string
  private lastReply: ReplyState = 'REPLY_STATE_UNSPECIFIED'
  private lastReplyAt: Date | undefined
  private error = ''
  private ended = false
  /** The authority of the proxy's certificate: its Hello's word until this server certifies it. */
  private certificateAuthorityId: string

  constructor(
    readonly request: ScopeRequest,
    readonly info: SessionInfo,
    private readonly transport: SessionTransport,
    private readonly options: SessionOptions = {},
  ) {
    this.ackedVersion = info.lastAckedVersion
    this.certificateAuthorityId = info.authorityId
  }

  /** This server issued the proxy a certificate under `authorityId` (its own). */
  certified(authorityId: string): void {
    this.certificateAuthorityId = authorityId
  }

  /** `namespace/service/proxyId`: one status row per proxy. */
  get rowKey(): string {
    return `${this.request.namespace}/${this.request.service}/${this.info.proxyId}`
  }

  get isEnded(): boolean {
    return this.ended
  }

  /** The group's scope is now `scope` (called on join and on every change). */
  scopeChanged(scope: Scope): void {
    this.scope = scope
    this.maybePush()
  }

  /** Handles a message after the Hello; throws an RpcError for a protocol violation. */
  receive(message: WatchRequest__Output): void {
    switch (message.requestType) {
      case 'hello':
        throw rpcError(grpc.status.INVALID_ARGUMENT, 'a second hello on the same stream; open a new stream to change identity or wants')
      case 'ack':
      case 'nack': {
        const reply = message[message.requestType] as { version: string; nonce: string; error?: string }
        const outstanding = this.checkReply(message.requestType, reply)
        this.outstanding = undefined
        this.lastReplyAt = new Date()
        if (message.requestType === 'ack') {
          this.lastReply = 'REPLY_STATE_ACK'
          this.error = ''
          this.ackedVersion = outstanding.version
          this.acked = outstanding.scope
          this.nackedFingerprint = undefined
          this.nextFull = false
        } else {
          const error = oneLine(reply.error ?? '') || '(no error given)'
          this.lastReply = 'REPLY_STATE_NACK'
          this.error = error
          this.nackedFingerprint = outstanding.scope.fingerprint
          // The proxy runs the last ACKed state, not the rejected one: only a full push is safe.
          this.nextFull = true
          this.options.onNack?.(this, outstanding.version, error)
        }
        this.maybePush()
        return
      }
      default:
        throw rpcError(grpc.status.INVALID_ARGUMENT, 'a WatchRequest with no hello, ack or nack')
    }
  }

  /** Ends the stream (idempotent). */
  end(error: RpcError): void {
    if (this.ended) return
    this.ended = true
    this.transport.end(error)
  }

  /** Marks the stream gone without writing to it (the peer left). */
  detach(): void {
    this.ended = true
  }

  status(): ProxyStatus {
    const inSync =
      this.lastReply === 'REPLY_STATE_ACK' &&
      this.outstanding === undefined &&
      this.scope !== undefined &&
      this.acked?.fingerprint === this.scope.fingerprint
    return {
      proxyId: this.info.proxyId,
      service: this.request.service,
      namespace: this.request.namespace,
      buildVersion: this.info.buildVersion,
      peerAddress: this.info.peerAddress,
      connectedAt: timestampFromDate(this.connectedAt),
      pushedVersion: this.pushedVersion,
      ackedVersion: this.ackedVersion,
      lastReply: this.lastReply,
      lastReplyAt: this.lastReplyAt === undefined ? null : timestampFromDate(this.lastReplyAt),
      error: this.lastReply === 'REPLY_STATE_NACK' ? this.error : '',
      inSync,
      resourceCount: this.scope?.size ?? 0,
      authorityId: this.certificateAuthorityId,
    }
  }

  private checkReply(kind: 'ack' | 'nack', reply: { version: string; nonce: string }): Outstanding {
    const outstanding = this.outstanding
    if (outstanding === undefined) {
      throw rpcError(grpc.status.INVALID_ARGUMENT, `${kind} with nonce ${JSON.stringify(reply.nonce)}, but no push is outstanding`)
    }
    if (reply.nonce !== outstanding.nonce) {
      throw rpcError(
        grpc.status.INVALID_ARGUMENT,
        `${kind} with nonce ${JSON.stringify(reply.nonce)}, but the outstanding push has nonce ${JSON.stringify(outstanding.nonce)}`,
      )
    }
    if (reply.version !== outstanding.version) {
      throw rpcError(
        grpc.status.INVALID_ARGUMENT,
        `${kind} of version ${reply.version} with the nonce of the push of version ${outstanding.version}`,
      )
    }
    return outstanding
  }

  private maybePush(): void {
    const scope = this.scope
    if (this.ended || scope === undefined || this.outstanding !== undefined) return
    if (this.nackedFingerprint !== undefined && scope.fingerprint === this.nackedFingerprint) return
    if (!this.nextFull && this.acked !== undefined) {
      if (scope.fingerprint === this.acked.fingerprint) return
      const delta = diff(this.acked, scope)
      if (delta.changed.length === 0 && delta.removed.length === 0) {
        // Same content under another decomposition: the proxy already holds it.
        this.acked = scope
        return
      }
      this.send(scope, false, delta.changed, delta.removed)
      return
    }
    this.send(scope, true, scope.resources, [])
  }

  private send(
    scope: Scope,
    full: boolean,
    resources: readonly PushedResource[],
    removed: readonly { kind: string; namespace: string; name: string }[],
  ): void {
    const nonce = String(++this.nonceCounter)
    const version = scope.version
    this.outstanding = { nonce, version, scope }
    this.pushedVersion = version
    this.lastReply = 'REPLY_STATE_PENDING'
    this.transport.send(encodePush({ version, nonce, full, removed, authorityId: this.options.authorityId }, resources))
  }
}

function oneLine(text: string): string {
  const line = text.split('\n', 1)[0]?.trim() ?? ''
  return line.length > MAX_ERROR_LENGTH ? `${line.slice(0, MAX_ERROR_LENGTH - 3)}...` : line
}

/** What changed from `held` to `next`: resources to (re)send and keys to drop. */
export function diff(
  held: Scope,
  next: Scope,
): { changed: PushedResource[]; removed: { kind: string; namespace: string; name: string }[] } {
  const changed: PushedResource[] = []
  for (const resource of next.resources) {
    if (held.get(resource.id)?.digest !== resource.digest) changed.push(resource)
  }
  const removed: { kind: string; namespace: string; name: string }[] = []
  for (const resource of held.resources) {
    if (next.get(resource.id) === undefined) removed.push({ kind: resource.kind, namespace: resource.namespace, name: resource.name })
  }
  return { changed, removed }
}
