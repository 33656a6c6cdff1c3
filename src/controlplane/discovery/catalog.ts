/**
 * The catalog: everything a push can contain, as of one mesh version. It combines the
 * stored resources (the store's watch), the registered endpoints (the lease table) and
 * the health of endpoints (the health monitor) into *effective* resources: Services
 * carry static + registered - unhealthy endpoints, everything else is pushed as stored.
 *
 * Each effective resource is serialised to JSON once per content change and shared by
 * every scope and every stream that pushes it (see PushedResource).
 */
import { createHash } from 'node:crypto'
import {
  formatHostPort,
  parseHostPort,
  resourceKey,
  type Endpoint,
  type ServiceRef,
  type ServiceResource,
} from '../../config/index.js'
import type { ChangeSet, StoredEntry, StoredResource } from '../store/index.js'
import type { HealthTarget } from '../health/monitor.js'
import type { RegisteredEndpoint } from '../registry/endpoints.js'

/**
 * One resource as pushed. Immutable: a change of content makes a new object, so holders
 * of an older snapshot keep a consistent view.
 */
export interface PushedResource {
  /** `Kind/namespace/name`. */
  readonly id: string
  readonly kind: StoredResource['kind']
  readonly namespace: string
  readonly name: string
  readonly json: string
  /** SHA-1 of `json`: compares content without comparing long strings. */
  readonly digest: string
  /**
   * The mesh version at which this content was first pushed. (Unlike Admin.Get, which
   * reports store revisions, pushed Services change with leases and health too, and a
   * receiver may skip resources whose version it already holds, so the version must
   * move whenever the pushed content does.)
   */
  readonly resourceVersion: string
}

export interface CatalogSnapshot {
  readonly version: string
  /** By id. */
  readonly resources: ReadonlyMap<string, PushedResource>
  /** Services by `namespace/name`. */
  readonly services: ReadonlyMap<string, PushedResource>
  /** Routes (HTTPRoute, TCPRoute) by the `namespace/name` of each parent Service. */
  readonly routesByParent: ReadonlyMap<string, readonly PushedResource[]>
  /** For each route id: every Service it names (parents and backends). */
  readonly routeServices: ReadonlyMap<string, readonly string[]>
  /** AuthorizationPolicies by the `namespace/name` of their target Service. */
  readonly policiesByTarget: ReadonlyMap<string, readonly PushedResource[]>
  /** Ids whose content changed, appeared or disappeared since the previous snapshot. */
  readonly changed: ReadonlySet<string>
  /** True when resources were added or removed, or references may have changed. */
  readonly structureChanged: boolean
}

/** Where registered endpoints and endpoint health come from. */
export interface EndpointSources {
  registeredEndpoints(service: string): readonly RegisteredEndpoint[]
  unhealthyEndpoints(service: string): ReadonlySet<string> | undefined
  /**
   * The SPIFFE id of the workloads registered under Service `namespace/name` (their join
   * tokens admit that identity), so clients originate mTLS and check it. Absent: none.
   */
  registeredIdentity?(service: string): string
  /**
   * Whether `permissive` ports of workloads in `namespace` get mTLS (scoped mTLS, where the
   * network of the other namespaces is trusted). Strict ports always do. Absent: all.
   */
  mtlsInScope?(namespace: string): boolean
}

export function idOf(resource: { kind: string; namespace: string; name: string }): string {
  return `${resource.kind}/${resource.namespace}/${resource.name}`
}

function digestOf(json: string): string {
  return createHash('sha1').update(json).digest('base64')
}

function addressKey(address: string): string {
  try {
    const { host, port } = parseHostPort(address)
    return formatHostPort(host.toLowerCase(), port)
  } catch {
    return address
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}

export class Catalog {
  /** Stored resources by id. */
  private readonly stored = new Map<string, StoredResource>()
  private current: Map<string, PushedResource> = new Map()
  private last: CatalogSnapshot | undefined
  /** Ids to recompute at the next snapshot. */
  private readonly dirty = new Set<string>()
  private structureDirty = true

  constructor(private readonly sources: EndpointSources) {}

  /** Loads the store's listing (at start). */
  load(entries: readonly StoredEntry[]): void {
    for (const entry of entries) this.setStored(entry.resource)
  }

  /** Applies one committed store change. */
  applyChanges(changes: ChangeSet): void {
    for (const event of changes.events) {
      if (event.type === 'put') this.setStored(event.resource)
      else {
        const id = idOf(event.resource)
        this.stored.delete(id)
        this.dirty.add(id)
        this.structureDirty = true
      }
    }
  }

  /** The effective endpoints of Service `namespace/name` may have changed (a lease, a health transition). */
  serviceEndpointsChanged(service: string): void {
    this.dirty.add(`Service/${service}`)
  }

  get isDirty(): boolean {
    return this.dirty.size > 0 || this.last === undefined
  }

  /** Stored resources (not effective), for health targets and lookups. */
  storedService(service: string): ServiceResource | undefined {
    const resource = this.stored.get(`Service/${service}`)
    return resource?.kind === 'Service' ? resource : undefined
  }

  /** The effective resources as of `version`, recomputing only what changed since the last call. */
  snapshot(version: string): CatalogSnapshot {
    if (this.last !== undefined && this.dirty.size === 0 && !this.structureDirty) {
      if (this.last.version === version && this.last.changed.size === 0) return this.last
      this.last = { ...this.last, version, changed: new Set(), structureChanged: false }
      return this.last
    }
    const next = new Map(this.current)
    const changed = new Set<string>()
    for (const id of this.dirty) {
      const resource = this.stored.get(id)
      const previous = this.current.get(id)
      if (resource === undefined) {
        if (next.delete(id)) changed.add(id)
        continue
      }
      const json = JSON.stringify(resource.kind === 'Service' ? this.effectiveService(resource) : resource)
      if (previous?.json === json) continue
      next.set(id, {
        id,
        kind: resource.kind,
        namespace: resource.namespace,
        name: resource.name,
        json,
        digest: digestOf(json),
        resourceVersion: version,
      })
      changed.add(id)
    }
    this.dirty.clear()
    const structureChanged = this.structureDirty || this.last === undefined
    this.structureDirty = false
    this.current = next
    this.last = this.index(version, next, changed, structureChanged)
    return this.last
  }

  /**
   * What to health-check: every Service with a healthCheck and its static and
   * registered endpoints (before health is applied, or a withheld endpoint would stop
   * being checked and could never come back).
   */
  healthTargets(): Map<string, HealthTarget> {
    const targets = new Map<string, HealthTarget>()
    for (const resource of this.stored.values()) {
      if (resource.kind !== 'Service' || resource.healthCheck === undefined) continue
      const key = resourceKey(resource)
      targets.set(key, {
        check: resource.healthCheck,
        protocol: resource.protocol,
        addresses: this.candidateEndpoints(resource).map((endpoint) => endpoint.address),
      })
    }
    return targets
  }

  private setStored(resource: StoredResource): void {
    const id = idOf(resource)
    const previous = this.stored.get(id)
    this.stored.set(id, resource)
    this.dirty.add(id)
    // References live in routes and policies; a Service edit never changes the graph.
    if (previous === undefined || resource.kind !== 'Service') this.structureDirty = true
  }

  /** Static endpoints, then registered ones at addresses not already listed. */
  private candidateEndpoints(service: ServiceResource): Endpoint[] {
    const endpoints: Endpoint[] = [...service.endpoints]
    const registered = this.sources.registeredEndpoints(resourceKey(service))
    if (registered.length === 0) return endpoints
    const seen = new Set(endpoints.map((endpoint) => addressKey(endpoint.address)))
    const identity = this.sources.registeredIdentity?.(resourceKey(service))
    const permissiveMeshed = this.sources.mtlsInScope?.(service.namespace) ?? true
    for (const endpoint of registered) {
      const key = addressKey(endpoint.address)
      if (seen.has(key)) continue
      seen.add(key)
      const meshed = identity !== undefined && (endpoint.mtls === 'strict' || (endpoint.mtls === 'permissive' && permissiveMeshed))
      endpoints.push({ address: endpoint.address, weight: endpoint.weight, labels: endpoint.labels, ...(meshed ? { identity } : {}) })
    }
    return endpoints
  }

  private effectiveService(service: ServiceResource): ServiceResource {
    const candidates = this.candidateEndpoints(service)
    const unhealthy = service.healthCheck === undefined ? undefined : this.sources.unhealthyEndpoints(resourceKey(service))
    const endpoints = unhealthy === undefined || unhealthy.size === 0 ? candidates : candidates.filter((e) => !unhealthy.has(e.address))
    if (endpoints.length === service.endpoints.length && endpoints.every((e, i) => e === service.endpoints[i])) return service
    return { ...service, endpoints }
  }

  private index(
    version: string,
    resources: ReadonlyMap<string, PushedResource>,
    changed: ReadonlySet<string>,
    structureChanged: boolean,
  ): CatalogSnapshot {
    const previous = this.last
    if (previous !== undefined && !structureChanged) {
      // Same graph: rebuild only the maps whose values are PushedResource objects.
      return {
        version,
        resources,
        services: remap(previous.services, resources),
        routesByParent: remapLists(previous.routesByParent, resources),
        routeServices: previous.routeServices,
        policiesByTarget: remapLists(previous.policiesByTarget, resources),
        changed,
        structureChanged,
      }
    }
    const services = new Map<string, PushedResource>()
    const routesByParent = new Map<string, PushedResource[]>()
    const routeServices = new Map<string, string[]>()
    const policiesByTarget = new Map<string, PushedResource[]>()
    for (const [id, pushed] of resources) {
      const resource = this.stored.get(id) as StoredResource
      switch (resource.kind) {
        case 'Service':
          services.set(resourceKey(resource), pushed)
          break
        case 'HTTPRoute':
        case 'TCPRoute': {
          const named = new Set<string>()
          const parents = new Set(resource.parentRefs.map((ref: ServiceRef) => resourceKey(ref)))
          for (const parent of parents) {
            push(routesByParent, parent, pushed)
            named.add(parent)
          }
          for (const rule of resource.rules) for (const backend of rule.backendRefs) named.add(resourceKey(backend))
          routeServices.set(id, [...named])
          break
        }
        case 'AuthorizationPolicy':
          push(policiesByTarget, resourceKey(resource.targetRef), pushed)
          break
      }
    }
    return { version, resources, services, routesByParent, routeServices, policiesByTarget, changed, structureChanged }
  }
}

function remap(map: ReadonlyMap<string, PushedResource>, resources: ReadonlyMap<string, PushedResource>): Map<string, PushedResource> {
  const out = new Map<string, PushedResource>()
  for (const [key, pushed] of map) out.set(key, resources.get(pushed.id) ?? pushed)
  return out
}

function remapLists(
  map: ReadonlyMap<string, readonly PushedResource[]>,
  resources: ReadonlyMap<string, PushedResource>,
): Map<string, PushedResource[]> {
  const out = new Map<string, PushedResource[]>()
  for (const [key, list] of map) out.set(key, list.map((pushed) => resources.get(pushed.id) ?? pushed))
  return out
}
