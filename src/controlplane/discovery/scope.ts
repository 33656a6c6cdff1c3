/**
 * What one proxy receives: pure functions from a catalog snapshot and the proxy's
 * Hello to the set of resources in its scope (discovery.proto, Hello.wants):
 *   * the Services it may call: every Service when `wants` is empty, else those listed;
 *   * every route whose parentRef is one of those Services, and every Service such a
 *     route names (backends and other parents), transitively: a proxy that holds a
 *     route must hold all it references to validate it, and a Service it holds must
 *     come with all its routes or traffic to it would be routed by half the rules;
 *   * its own Service and the AuthorizationPolicies that target it.
 *
 * Work is shared: proxies with the same (namespace, service, wants) form one group
 * with one Scope object, and the route closure of a `wants` list is computed once for
 * every group that has it.
 */
import { createHash } from 'node:crypto'
import type { CatalogSnapshot, PushedResource } from './catalog.js'

/** What determines a scope: identity and the normalised wants. */
export interface ScopeRequest {
  namespace: string
  service: string
  /** `namespace/name` of the wanted Services, sorted, unique; empty means every Service. */
  wants: readonly string[]
}

export function wantsKeyOf(wants: readonly string[]): string {
  return wants.join(',')
}

export function groupKeyOf(request: ScopeRequest): string {
  return `${request.namespace}/${request.service}|${wantsKeyOf(request.wants)}`
}

function byId(a: PushedResource, b: PushedResource): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/** The Services a `wants` list reaches and their routes. */
export class Closure {
  readonly ids: ReadonlySet<string>
  /** Every member, sorted by id. */
  readonly resources: readonly PushedResource[]
  readonly fingerprint: string

  constructor(resources: PushedResource[]) {
    resources.sort(byId)
    this.resources = resources
    this.ids = new Set(resources.map((resource) => resource.id))
    const hash = createHash('sha1')
    for (const resource of resources) hash.update(`${resource.id}\n${resource.digest}\n`)
    this.fingerprint = hash.digest('base64')
  }
}

export function computeClosure(snapshot: CatalogSnapshot, wants: readonly string[]): Closure {
  const services = new Set<string>()
  const routes = new Map<string, PushedResource>()
  const queue: string[] = []
  const reach = (service: string): void => {
    if (services.has(service) || !snapshot.services.has(service)) return
    services.add(service)
    queue.push(service)
  }
  if (wants.length === 0) for (const service of snapshot.services.keys()) reach(service)
  else for (const service of wants) reach(service)
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    for (const route of snapshot.routesByParent.get(next) ?? []) {
      if (routes.has(route.id)) continue
      routes.set(route.id, route)
      for (const named of snapshot.routeServices.get(route.id) ?? []) reach(named)
    }
  }
  const members = [...services].map((service) => snapshot.services.get(service) as PushedResource)
  return new Closure([...members, ...routes.values()])
}

/**
 * True when `closure` (computed from an earlier snapshot) still holds for `snapshot`:
 * the reference graph is unchanged and none of its members changed content.
 */
export function closureStillValid(closure: Closure, snapshot: CatalogSnapshot): boolean {
  if (snapshot.structureChanged) return false
  for (const id of snapshot.changed) if (closure.ids.has(id)) return false
  return true
}

/** The resources one group of proxies receives, as of one mesh version. Immutable. */
export class Scope {
  private sortedCache: readonly PushedResource[] | undefined
  private byIdCache: Map<string, PushedResource> | undefined

  constructor(
    /** The mesh version this content was computed at. */
    readonly version: string,
    readonly closure: Closure,
    /** Own Service and policies not already in the closure, sorted by id. */
    readonly extras: readonly PushedResource[],
    /** Equal fingerprints mean equal content (same ids, same JSON). */
    readonly fingerprint: string,
  ) {}

  get size(): number {
    return this.closure.resources.length + this.extras.length
  }

  /** Every resource, sorted by id. */
  get resources(): readonly PushedResource[] {
    if (this.sortedCache === undefined) {
      this.sortedCache = this.extras.length === 0 ? this.closure.resources : [...this.closure.resources, ...this.extras].sort(byId)
    }
    return this.sortedCache
  }

  get(id: string): PushedResource | undefined {
    this.byIdCache ??= new Map(this.resources.map((resource) => [resource.id, resource]))
    return this.byIdCache.get(id)
  }
}

/** The scope of `request` given the closure of its wants. */
export function computeScope(snapshot: CatalogSnapshot, closure: Closure, request: ScopeRequest): Scope {
  const own = `${request.namespace}/${request.service}`
  const extras: PushedResource[] = []
  const ownService = snapshot.services.get(own)
  if (ownService !== undefined && !closure.ids.has(ownService.id)) extras.push(ownService)
  for (const policy of snapshot.policiesByTarget.get(own) ?? []) extras.push(policy)
  extras.sort(byId)
  const fingerprint =
    extras.length === 0 ? closure.fingerprint : `${closure.fingerprint}+${extras.map((r) => `${r.id}@${r.digest}`).join(',')}`
  return new Scope(snapshot.version, closure, extras, fingerprint)
}
