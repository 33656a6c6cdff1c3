// The proxy's side of Discovery.Watch (proto/mesh/v1/discovery.proto): one stream at a
// time, Hello first, every push merged against the last ACKed state, handed to the proxy
// to validate, compile and apply, and answered with an ACK or a NACK echoing its version
// and nonce. A broken stream is reopened after an exponential, jittered delay; the proxy
// keeps serving its last applied config meanwhile, and the new Hello says which version
// that is.

import type * as grpc from '@grpc/grpc-js'

import { Backoff, type BackoffOptions } from './backoff.js'
import { ControlPlaneChannel, describeGrpcError, describeStatus } from './channel.js'
import { EMPTY_HELD, mergePush, PUSH_LABEL, type HeldResources } from './push-state.js'
import {
  compareVersions,
  type Hello,
  type WatchRequest,
  type WatchResponse__Output,
} from './proto.js'

/** What a push asks of the proxy; the state is the complete candidate after the merge. */
export interface PushToApply {
  version: string
  full: boolean
  state: HeldResources
}

export interface StreamEnded {
  /** One line: the status and its details, or what the proxy noticed. */
  reason: string
  /** When the next stream opens. */
  retryInMs: number
  /** Whether this stream had delivered a push (it was up), or never got that far. */
  wasConnected: boolean
}

export interface DiscoveryClientOptions {
  channel: ControlPlaneChannel
  /**
   * The Hello of a new stream, without last_acked_version (the client fills it in).
   * Called once per stream, so endpoints can be resolved afresh.
   */
  hello: () => Promise<Omit<Hello, 'lastAckedVersion'>>
  /**
   * Validates, compiles and applies the candidate state as one unit. Resolves: ACK.
   * Throws: NACK with the error's first line (a ConfigError's message already ends with
   * `(and N more)`); the proxy must then still run its previous config.
   */
  apply: (push: PushToApply) => Promise<void>
  /** The first push of a stream arrived: the control plane is reachable and serving. */
  onConnected?: () => void
  /**
   * A push announced the server's authority id (WatchResponse.authority_id; '' from a
   * server that does not report one). Called for every push, before it is applied and
   * whether or not it is then ACKed: the announcement is not part of the config.
   */
  onAuthority?: (authorityId: string) => void
  onStreamEnded?: (ended: StreamEnded) => void
  backoff?: BackoffOptions
}

/** A one-line NACK error: first line of the message, never empty. */
export function nackError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const first = (message.split('\n', 1)[0] ?? '').trim()
  return first === '' ? `${PUSH_LABEL}: push rejected` : first
}

type WatchCall = grpc.ClientDuplexStream<WatchRequest, WatchResponse__Output>

interface StreamState {
  call: WatchCall
  /** A push arrived on this stream. */
  delivered: boolean
  /** Version of the previous push on this stream (versions increase within a stream). */
  lastPushVersion: string | undefined
  /** Pushes are handled one after the other even if a server sends the next early. */
  queue: Promise<void>
}

export class DiscoveryClient {
  private readonly backoff: Backoff
  private stream: StreamState | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private stopped = false
  private started = false
  private heldState: HeldResources = EMPTY_HELD
  private ackedVersion = '0'

  constructor(private readonly options: DiscoveryClientOptions) {
    this.backoff = new Backoff(options.backoff)
  }

  /** The state of the last ACKed push (what the proxy runs). */
  get held(): HeldResources {
    return this.heldState
  }

  /** The version of the last ACKed push, '0' before any. */
  get lastAckedVersion(): string {
    return this.ackedVersion
  }

  /** A stream is open and has delivered a push. */
  get connected(): boolean {
    return this.stream?.delivered === true
  }

  start(): void {
    if (this.started) return
    this.started = true
    void this.open()
  }

  /** Ends the stream and stops reconnecting. Idempotent. */
  stop(): void {
    this.stopped = true
    clearTimeout(this.retryTimer)
    this.retryTimer = undefined
    const stream = this.stream
    this.stream = undefined
    // Half-close first so a well-behaved server sees an orderly end, then cancel.
    stream?.call.end()
    stream?.call.cancel()
  }

  private async open(): Promise<void> {
    this.retryTimer = undefined
    if (this.stopped) return
    let hello: Omit<Hello, 'lastAckedVersion'>
    try {
      hello = await this.options.hello()
    } catch (err) {
      this.scheduleRetry(`cannot build the Hello: ${describeGrpcError(err)}`, false)
      return
    }
    if (this.stopped) return

    const call = this.options.channel.discovery.Watch(this.options.channel.metadata())
    const stream: StreamState = { call, delivered: false, lastPushVersion: undefined, queue: Promise.resolve() }
    this.stream = stream
    // The status event carries everything; 'error' only duplicates it for non-OK codes,
    // but an unhandled 'error' would crash the process.
    call.on('error', () => {})
    call.on('status', (status: grpc.StatusObject) => {
      const reason =
        status.code === 0 ? 'the control plane closed the stream' : describeStatus(status.code, status.details)
      this.streamEnded(stream, reason)
    })
    call.on('data', (push: WatchResponse__Output) => {
      stream.queue = stream.queue
        .then(() => this.handlePush(stream, push))
        // Not a NACK matter (those are handled inside): something broke in the client
        // itself. Start over on a new stream rather than leave this one half-answered.
        .catch((err: unknown) => {
          stream.call.cancel()
          this.streamEnded(stream, `internal error handling a push: ${nackError(err)}`)
        })
    })
    call.write({ hello: { ...hello, lastAckedVersion: this.ackedVersion } })
  }

  private async handlePush(stream: StreamState, push: WatchResponse__Output): Promise<void> {
    if (this.stream !== stream || this.stopped) return
    if (!stream.delivered) {
      stream.delivered = true
      this.backoff.reset()
      this.options.onConnected?.()
    }
    this.options.onAuthority?.(push.authorityId)

    let reply: WatchRequest
    try {
      const previous = stream.lastPushVersion
      stream.lastPushVersion = push.version
      if (previous !== undefined && compareVersions(push.version, previous) <= 0) {
        throw new Error(`${PUSH_LABEL}: push version ${push.version} is not above version ${previous} pushed before on this stream`)
      }
      const state = mergePush(this.heldState, push)
      await this.options.apply({ version: push.version, full: push.full, state })
      // Applied: this is what the proxy runs now, whether or not the ACK gets through.
      this.heldState = state
      this.ackedVersion = push.version
      reply = { ack: { version: push.version, nonce: push.nonce } }
    } catch (err) {
      reply = { nack: { version: push.version, nonce: push.nonce, error: nackError(err) } }
    }
    if (this.stream === stream && !this.stopped) stream.call.write(reply)
  }

  private streamEnded(stream: StreamState, reason: string): void {
    if (this.stream !== stream) return
    this.stream = undefined
    stream.call.end()
    this.scheduleRetry(reason, stream.delivered)
  }

  private scheduleRetry(reason: string, wasConnected: boolean): void {
    if (this.stopped) return
    const retryInMs = this.backoff.next()
    this.options.onStreamEnded?.({ reason, retryInMs, wasConnected })
    this.retryTimer = setTimeout(() => void this.open(), retryInMs)
  }
}
