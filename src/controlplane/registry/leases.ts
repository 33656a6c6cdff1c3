/**
 * The lease table: one lease per (namespace, service, proxy id), each holding the
 * endpoints one proxy registered, alive while heartbeats arrive within the TTL.
 * In memory; persistence (leases.json) is the owner's job, told through onChange.
 */
import { randomBytes } from 'node:crypto'
import type { Identity } from '../tokens.js'
import type { RegisteredEndpoint } from './endpoints.js'

export interface Lease {
  /** Opaque and unguessable (`lease_` + 128 random bits). */
  readonly id: string
  readonly namespace: string
  readonly service: string
  readonly proxyId: string
  readonly endpoints: readonly RegisteredEndpoint[]
  readonly registeredAt: Date
}

/** Why the endpoints of a service changed. */
export type LeaseEvent =
  | { type: 'registered'; lease: Lease; replaced?: Lease }
  | { type: 'deregistered'; lease: Lease }
  | { type: 'expired'; lease: Lease }

export interface LeaseTableOptions {
  ttlMs: number
  /** Called after every change, synchronously. */
  onChange: (event: LeaseEvent) => void
}

interface Entry {
  lease: Lease
  timer: NodeJS.Timeout
}

export function serviceKeyOf(lease: { namespace: string; service: string }): string {
  return `${lease.namespace}/${lease.service}`
}

function proxyKeyOf(namespace: string, service: string, proxyId: string): string {
  return `${namespace}/${service}/${proxyId}`
}

export function newLeaseId(): string {
  return `lease_${randomBytes(16).toString('base64url')}`
}

export class LeaseTable {
  private readonly byId = new Map<string, Entry>()
  private readonly byProxy = new Map<string, Entry>()
  /** Leases by `namespace/service`, for the endpoints of a Service. */
  private readonly byService = new Map<string, Set<Entry>>()
  private closed = false

  constructor(private readonly options: LeaseTableOptions) {}

  get ttlMs(): number {
    return this.options.ttlMs
  }

  get size(): number {
    return this.byId.size
  }

  /**
   * Restores leases from leases.json without events: each gets a fresh TTL, so a control
   * plane restart gives live proxies a full window to heartbeat again.
   */
  restore(leases: readonly Lease[]): void {
    for (const lease of leases) {
      const previous = this.byProxy.get(proxyKeyOf(lease.namespace, lease.service, lease.proxyId))
      if (previous !== undefined) this.remove(previous)
      this.add(lease)
    }
  }

  /** Registers (or replaces) the lease of one proxy. */
  register(identity: Identity, proxyId: string, endpoints: readonly RegisteredEndpoint[]): Lease {
    this.checkOpen()
    const lease: Lease = {
      id: newLeaseId(),
      namespace: identity.namespace,
      service: identity.service,
      proxyId,
      endpoints,
      registeredAt: new Date(),
    }
    const previous = this.byProxy.get(proxyKeyOf(lease.namespace, lease.service, proxyId))
    if (previous !== undefined) this.remove(previous)
    this.add(lease)
    this.options.onChange({ type: 'registered', lease, replaced: previous?.lease })
    return lease
  }

  /** Renews a live lease; undefined when it expired, was replaced or never existed. */
  heartbeat(id: string): Lease | undefined {
    const entry = this.byId.get(id)
    if (entry === undefined) return undefined
    entry.timer.refresh()
    return entry.lease
  }

  get(id: string): Lease | undefined {
    return this.byId.get(id)?.lease
  }

  /** Withdraws a lease at once; false when there was none. */
  deregister(id: string): boolean {
    const entry = this.byId.get(id)
    if (entry === undefined) return false
    this.remove(entry)
    this.options.onChange({ type: 'deregistered', lease: entry.lease })
    return true
  }

  /** Endpoints of the live leases of `namespace/service`, ordered by proxy id. */
  endpointsOf(serviceKey: string): RegisteredEndpoint[] {
    const entries = this.byService.get(serviceKey)
    if (entries === undefined) return []
    return [...entries]
      .sort((a, b) => (a.lease.proxyId < b.lease.proxyId ? -1 : a.lease.proxyId > b.lease.proxyId ? 1 : 0))
      .flatMap((entry) => entry.lease.endpoints)
  }

  /** Every live lease (for persistence), in a stable order. */
  all(): Lease[] {
    return [...this.byId.values()]
      .map((entry) => entry.lease)
      .sort((a, b) => proxyKeyOf(a.namespace, a.service, a.proxyId).localeCompare(proxyKeyOf(b.namespace, b.service, b.proxyId)))
  }

  /** Stops every expiry timer; the table keeps its content but changes nothing more. */
  close(): void {
    this.closed = true
    for (const entry of this.byId.values()) clearTimeout(entry.timer)
  }

  private add(lease: Lease): void {
    const timer = setTimeout(() => this.expire(lease.id), this.options.ttlMs)
    timer.unref()
    const entry: Entry = { lease, timer }
    this.byId.set(lease.id, entry)
    this.byProxy.set(proxyKeyOf(lease.namespace, lease.service, lease.proxyId), entry)
    const key = serviceKeyOf(lease)
    let set = this.byService.get(key)
    if (set === undefined) this.byService.set(key, (set = new Set()))
    set.add(entry)
  }

  private remove(entry: Entry): void {
    clearTimeout(entry.timer)
    const { lease } = entry
    this.byId.delete(lease.id)
    this.byProxy.delete(proxyKeyOf(lease.namespace, lease.service, lease.proxyId))
    const key = serviceKeyOf(lease)
    const set = this.byService.get(key)
    set?.delete(entry)
    if (set?.size === 0) this.byService.delete(key)
  }

  private expire(id: string): void {
    const entry = this.byId.get(id)
    if (entry === undefined || this.closed) return
    this.remove(entry)
    this.options.onChange({ type: 'expired', lease: entry.lease })
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the lease table is closed')
  }
}
