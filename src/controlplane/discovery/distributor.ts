/**
 * The distributor: joins catalog snapshots to connected streams. Streams with the same
 * scope request share one group; on every batch of changes (coalesced to one pass per
 * event-loop turn, so an apply that touches many resources, or a burst of
 * registrations, costs one pass) it takes a snapshot, recomputes each distinct route
 * closure and each group's scope at most once, and tells only the sessions whose scope
 * content changed.
 */
import * as grpc from '@grpc/grpc-js'
import type { ProxyStatus } from '../../control/proto.js'
import { rpcError } from '../errors.js'
import type { CatalogSnapshot } from './catalog.js'
import { closureStillValid, computeClosure, computeScope, groupKeyOf, wantsKeyOf, type Closure, type Scope, type ScopeRequest } from './scope.js'
import type { WatchSession } from './session.js'

/**
 * Certificates issued to proxies whose stream has not joined yet (Certify can finish
 * before the Hello is read), by row key, until that stream joins. Bounded, oldest
 * first out: an entry matters only for the moment between the two calls.
 */
const MAX_CERTIFIED_BEFORE_JOIN = 4096

interface Group {
  readonly key: string
  readonly request: ScopeRequest
  readonly sessions: Set<WatchSession>
  scope: Scope | undefined
}

export interface DistributorOptions {
  /**
   * The snapshot of the current mesh state. Each snapshot reports what changed since
   * the previous one, so the distributor must be its only caller.
   */
  snapshot: () => CatalogSnapshot
  /** Called after each pass with the snapshot it used (health targets follow it). */
  afterPass?: (snapshot: CatalogSnapshot) => void
  log: (line: string) => void
}

export class Distributor {
  private readonly groups = new Map<string, Group>()
  /** By `namespace/service/proxyId`. */
  private readonly rows = new Map<string, WatchSession>()
  private readonly closures = new Map<string, Closure>()
  private readonly certifiedBeforeJoin = new Map<string, string>()
  private scheduled: NodeJS.Immediate | undefined
  private closed = false

  constructor(private readonly options: DistributorOptions) {}

  get sessionCount(): number {
    return this.rows.size
  }

  /** Recomputes scopes on the next turn of the event loop (many calls, one pass). */
  schedule(): void {
    if (this.scheduled !== undefined || this.closed) return
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined
      this.pass()
    })
  }

  /**
   * Adds a stream. A stream of the same proxy (same identity and proxy id) that is
   * still open is ended: the proxy reconnected and the old stream is a leftover.
   */
  join(session: WatchSession): void {
    if (this.closed) {
      session.end(rpcError(grpc.status.UNAVAILABLE, 'mesh-control is shutting down'))
      return
    }
    const previous = this.rows.get(session.rowKey)
    if (previous !== undefined) {
      this.leave(previous)
      previous.end(rpcError(grpc.status.ABORTED, `replaced by a newer Watch stream of proxy ${JSON.stringify(session.info.proxyId)}`))
    }
    this.rows.set(session.rowKey, session)
    const certifiedUnder = this.certifiedBeforeJoin.get(session.rowKey)
    if (certifiedUnder !== undefined) {
      this.certifiedBeforeJoin.delete(session.rowKey)
      session.certified(certifiedUnder)
    }
    const key = groupKeyOf(session.request)
    let group = this.groups.get(key)
    if (group === undefined) {
      group = { key, request: session.request, sessions: new Set(), scope: undefined }
      this.groups.set(key, group)
    }
    group.sessions.add(session)
    if (group.scope !== undefined) session.scopeChanged(group.scope)
    // A new group's scope (or a group whose scope is behind pending changes) comes with the next pass.
    this.schedule()
  }

  leave(session: WatchSession): void {
    if (this.rows.get(session.rowKey) === session) this.rows.delete(session.rowKey)
    const key = groupKeyOf(session.request)
    const group = this.groups.get(key)
    if (group === undefined || !group.sessions.delete(session)) return
    if (group.sessions.size === 0) this.groups.delete(key)
  }

  /**
   * This server issued proxy `proxyId` of `namespace/service` a certificate under
   * `authorityId`: its status row shows it from now on (or from when its stream joins).
   */
  certified(namespace: string, service: string, proxyId: string, authorityId: string): void {
    if (this.closed || proxyId === '') return
    const rowKey = `${namespace}/${service}/${proxyId}`
    const session = this.rows.get(rowKey)
    if (session !== undefined) {
      session.certified(authorityId)
      return
    }
    this.certifiedBeforeJoin.delete(rowKey)
    this.certifiedBeforeJoin.set(rowKey, authorityId)
    if (this.certifiedBeforeJoin.size > MAX_CERTIFIED_BEFORE_JOIN) {
      const oldest = this.certifiedBeforeJoin.keys().next().value as string
      this.certifiedBeforeJoin.delete(oldest)
    }
  }

  /** One row per connected proxy, sorted by namespace, service, proxy id. */
  statuses(): ProxyStatus[] {
    return [...this.rows.values()]
      .sort(
        (a, b) =>
          compare(a.request.namespace, b.request.namespace) ||
          compare(a.request.service, b.request.service) ||
          compare(a.info.proxyId, b.info.proxyId),
      )
      .map((session) => session.status())
  }

  /** Ends every stream with `error` and stops scheduling. */
  close(error = rpcError(grpc.status.UNAVAILABLE, 'mesh-control is shutting down')): void {
    this.closed = true
    if (this.scheduled !== undefined) clearImmediate(this.scheduled)
    this.scheduled = undefined
    const sessions = [...this.rows.values()]
    this.rows.clear()
    this.groups.clear()
    this.certifiedBeforeJoin.clear()
    for (const session of sessions) session.end(error)
  }

  /** Runs a pass now (normally scheduled). */
  pass(): void {
    if (this.closed) return
    const snapshot = this.options.snapshot()
    const closures = new Map<string, Closure>()
    const closureOf = (wants: readonly string[]): Closure => {
      const key = wantsKeyOf(wants)
      let closure = closures.get(key)
      if (closure === undefined) {
        const previous = this.closures.get(key)
        closure = previous !== undefined && closureStillValid(previous, snapshot) ? previous : computeClosure(snapshot, wants)
        closures.set(key, closure)
      }
      return closure
    }
    for (const group of this.groups.values()) {
      const closure = closureOf(group.request.wants)
      const previous = group.scope
      if (previous !== undefined && previous.closure === closure && !extrasChanged(previous, snapshot, group.request)) continue
      const scope = computeScope(snapshot, closure, group.request)
      if (previous !== undefined && previous.fingerprint === scope.fingerprint) {
        // Same content; keep the older object (and its version) so nothing is re-pushed.
        continue
      }
      group.scope = scope
      for (const session of [...group.sessions]) {
        try {
          session.scopeChanged(scope)
        } catch (err) {
          this.options.log(`discovery: push to proxy ${session.info.proxyId} failed: ${(err as Error).message}`)
        }
      }
    }
    // Keep only closures still in use, so an abandoned wants list does not pin memory.
    this.closures.clear()
    for (const [key, closure] of closures) this.closures.set(key, closure)
    this.options.afterPass?.(snapshot)
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** True when the own Service or its policies may differ from what `scope` holds. */
function extrasChanged(scope: Scope, snapshot: CatalogSnapshot, request: ScopeRequest): boolean {
  if (snapshot.structureChanged) return true
  const own = `Service/${request.namespace}/${request.service}`
  if (snapshot.changed.has(own)) return true
  for (const extra of scope.extras) if (snapshot.changed.has(extra.id)) return true
  return false
}
