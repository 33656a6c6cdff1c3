// The proxy's lease in the control plane's registry (proto/mesh/v1/registry.proto): its
// inbound endpoints registered under one lease, renewed at a third of the TTL, registered
// again when the control plane says the lease is gone, retried with backoff while the
// control plane is unreachable, and withdrawn on shutdown before the drain so clients stop
// picking this workload while it still answers the requests it has.

import * as grpc from '@grpc/grpc-js'

import { formatDuration } from '../config/index.js'
import { Backoff, formatDelay, type BackoffOptions } from './backoff.js'
import { ControlPlaneChannel, describeGrpcError } from './channel.js'
import {
  durationToMs,
  type HeartbeatResponse__Output,
  type RegisterResponse__Output,
  type WorkloadEndpoint,
} from './proto.js'

/** One inbound listener as registered: its bound port and what it speaks. */
export interface InboundPort {
  port: number
  /** The Proxy inbound's protocol: auto | http1 | http2 | grpc | tcp. */
  protocol: string
  /** The Proxy inbound's mesh mTLS mode: strict | permissive | off. */
  mtls: string
}

export interface Lease {
  leaseId: string
  ttlMs: number
  endpoints: WorkloadEndpoint[]
}

export interface RegistrationOptions {
  channel: ControlPlaneChannel
  service: string
  namespace: string
  proxyId: string
  /** The IP to register; called for every Register, so it may look it up afresh. */
  address: () => Promise<string>
  backoff?: BackoffOptions
  /** Deadline of each Register and Heartbeat call (default 5 s). */
  callTimeoutMs?: number
  /** One line per fact (registered, lease lost, failures with the retry delay). */
  log: (line: string) => void
  onRegistered?: (lease: Lease) => void
}

const DEFAULT_CALL_TIMEOUT_MS = 5_000
/** A server answering with a TTL of 0 (or none) would make a busy loop; renew at least this far apart. */
const MIN_HEARTBEAT_MS = 100

/** `127.0.0.1:4143 (http1)`, the registered endpoints as log lines show them. */
export function describeEndpoints(endpoints: readonly WorkloadEndpoint[]): string {
  return endpoints
    .map((e) => `${e.address?.includes(':') ? `[${e.address}]` : e.address}:${e.port} (${e.protocol})`)
    .join(', ')
}

function samePorts(a: readonly InboundPort[], b: readonly InboundPort[]): boolean {
  return a.length === b.length && a.every((p, i) => p.port === b[i]?.port && p.protocol === b[i]?.protocol && p.mtls === b[i]?.mtls)
}

export class Registration {
  private readonly backoff: Backoff
  private readonly callTimeoutMs: number
  private ports: InboundPort[] = []
  private current: Lease | undefined
  private timer: NodeJS.Timeout | undefined
  /** Bumped whenever what should be registered changes; answers to older calls are dropped. */
  private generation = 0
  /** The call in flight, so shutdown can wait for a Register that may be creating a lease. */
  private inflight: Promise<unknown> | undefined
  private stopped = false
  private stopping: Promise<void> | undefined

  constructor(private readonly options: RegistrationOptions) {
    this.backoff = new Backoff(options.backoff)
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  }

  /** The lease held now, if any. */
  get lease(): Lease | undefined {
    return this.current
  }

  /**
   * The endpoints to register (last registered, or about to be: `pending` when given), for
   * the Discovery Hello.
   */
  async endpoints(pending: readonly InboundPort[] = this.ports): Promise<WorkloadEndpoint[]> {
    if (this.current) return this.current.endpoints
    if (pending.length === 0) return []
    const address = await this.options.address()
    return pending.map((p) => ({ address, port: p.port, protocol: p.protocol, mtls: p.mtls }))
  }

  /**
   * What to register: every inbound listener's bound port. The first call registers; a
   * change registers again (replacing the lease: same proxy id); none deregisters.
   */
  setPorts(ports: readonly InboundPort[]): void {
    if (this.stopped) return
    if (samePorts(ports, this.ports) && (this.current !== undefined || this.timer !== undefined || this.inflight)) return
    this.ports = ports.map((p) => ({ ...p }))
    this.generation++
    this.backoff.reset()
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.ports.length > 0) {
      void this.register()
    } else if (this.current) {
      const lease = this.current
      this.current = undefined
      void this.deregisterLease(lease, this.callTimeoutMs)
    }
  }

  /**
   * Stops renewing and withdraws the lease, waiting at most `timeoutMs` in all (a control
   * plane that is down must not hold up the shutdown; the lease then expires by its TTL).
   * Idempotent.
   */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.shutdown(timeoutMs)
    return this.stopping
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.stopped = true
    this.generation++
    clearTimeout(this.timer)
    this.timer = undefined
    const deadline = Date.now() + timeoutMs
    // A Register in flight may be creating a lease right now: wait for it (bounded) so
    // that lease is the one withdrawn rather than left to expire.
    if (this.inflight) await withTimeout(this.inflight.catch(() => {}), timeoutMs)
    const lease = this.current
    this.current = undefined
    if (lease) await this.deregisterLease(lease, Math.max(0, deadline - Date.now()))
  }

  private async register(): Promise<void> {
    const generation = this.generation
    let endpoints: WorkloadEndpoint[]
    try {
      const address = await this.options.address()
      endpoints = this.ports.map((p) => ({ address, port: p.port, protocol: p.protocol, mtls: p.mtls }))
    } catch (err) {
      if (generation === this.generation) this.retryRegister(`cannot find the address to register: ${describeGrpcError(err)}`)
      return
    }
    if (generation !== this.generation) return

    const request = {
      service: this.options.service,
      namespace: this.options.namespace,
      proxyId: this.options.proxyId,
      endpoints,
    }
    const call = new Promise<RegisterResponse__Output>((resolve, reject) => {
      this.options.channel.registry.Register(
        request,
        this.options.channel.metadata(),
        { deadline: ControlPlaneChannel.deadline(this.callTimeoutMs) },
        (err, response) => (err || !response ? reject(err ?? new Error('empty response')) : resolve(response)),
      )
    })
    this.inflight = call
    let response: RegisterResponse__Output
    try {
      response = await call
    } catch (err) {
      if (generation === this.generation) this.retryRegister(describeGrpcError(err))
      return
    } finally {
      if (this.inflight === call) this.inflight = undefined
    }
    const lease: Lease = { leaseId: response.leaseId, ttlMs: durationToMs(response.ttl), endpoints }
    if (this.stopped) {
      // Stopped while the call ran: shutdown() waits for it and withdraws this lease.
      this.current = lease
      return
    }
    if (generation !== this.generation) return
    const replaced = this.current !== undefined
    this.current = lease
    this.backoff.reset()
    this.options.log(
      `${replaced ? 'registered again' : 'registered'} ${describeEndpoints(endpoints)} as ` +
        `${this.options.namespace}/${this.options.service}; lease ttl ${formatDuration(Math.round(lease.ttlMs))}`,
    )
    this.options.onRegistered?.(lease)
    this.scheduleHeartbeat(lease.ttlMs / 3)
  }

  private retryRegister(reason: string): void {
    if (this.stopped) return
    const delay = this.backoff.next()
    this.options.log(`register with the control plane failed: ${reason}; retrying in ${formatDelay(delay)}`)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.register()
    }, delay)
  }

  private scheduleHeartbeat(delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        void this.heartbeat()
      },
      Math.max(MIN_HEARTBEAT_MS, Math.round(delayMs)),
    )
  }

  private async heartbeat(): Promise<void> {
    const lease = this.current
    if (!lease || this.stopped) return
    const generation = this.generation
    const call = new Promise<HeartbeatResponse__Output>((resolve, reject) => {
      this.options.channel.registry.Heartbeat(
        { leaseId: lease.leaseId },
        this.options.channel.metadata(),
        { deadline: ControlPlaneChannel.deadline(Math.min(this.callTimeoutMs, Math.max(lease.ttlMs, MIN_HEARTBEAT_MS))) },
        (err, response) => (err || !response ? reject(err ?? new Error('empty response')) : resolve(response)),
      )
    })
    this.inflight = call
    try {
      const response = await call
      if (generation !== this.generation || this.current !== lease) return
      lease.ttlMs = durationToMs(response.ttl) || lease.ttlMs
      this.backoff.reset()
      this.scheduleHeartbeat(lease.ttlMs / 3)
    } catch (err) {
      if (generation !== this.generation || this.current !== lease || this.stopped) return
      if ((err as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) {
        // Expired (the control plane did not hear from us within the TTL) or replaced.
        this.current = undefined
        this.options.log(`heartbeat: the control plane no longer knows lease ${lease.leaseId}: ${describeGrpcError(err)}; registering again`)
        this.backoff.reset()
        void this.register()
        return
      }
      // Keep trying within the TTL: a control plane back in time renews the same lease.
      const delay = Math.min(this.backoff.next(), Math.max(MIN_HEARTBEAT_MS, lease.ttlMs / 3))
      this.options.log(`heartbeat failed: ${describeGrpcError(err)}; retrying in ${formatDelay(delay)}`)
      this.scheduleHeartbeat(delay)
    } finally {
      if (this.inflight === call) this.inflight = undefined
    }
  }

  private async deregisterLease(lease: Lease, timeoutMs: number): Promise<void> {
    if (timeoutMs <= 0) {
      this.options.log(`no time left to deregister lease ${lease.leaseId}; it expires by its TTL`)
      return
    }
    try {
      await new Promise<void>((resolve, reject) => {
        this.options.channel.registry.Deregister(
          { leaseId: lease.leaseId },
          this.options.channel.metadata(),
          { deadline: ControlPlaneChannel.deadline(timeoutMs) },
          (err) => (err ? reject(err) : resolve()),
        )
      })
      this.options.log(`deregistered ${describeEndpoints(lease.endpoints)}`)
    } catch (err) {
      this.options.log(`deregister failed: ${describeGrpcError(err)}; the lease expires by its TTL`)
    }
  }
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise.then(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms))
    }),
  ]).finally(() => clearTimeout(timer))
}
