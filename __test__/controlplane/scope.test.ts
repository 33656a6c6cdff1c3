import { describe, expect, it } from 'vitest'
import { validateResources } from '../../src/config/index.js'
import { discoveryService, type WatchResponse__Output } from '../../src/control/proto.js'
import { Catalog, type EndpointSources } from '../../src/controlplane/discovery/catalog.js'
import { encodePush } from '../../src/controlplane/discovery/encoding.js'
import { computeClosure, computeScope, type ScopeRequest } from '../../src/controlplane/discovery/scope.js'
import { diff } from '../../src/controlplane/discovery/session.js'
import type { RegisteredEndpoint } from '../../src/controlplane/registry/endpoints.js'
import type { StoredEntry, StoredResource } from '../../src/controlplane/store/index.js'
import { httpRoute, policy, service, type Doc } from './harness.js'

function entries(docs: Doc[]): StoredEntry[] {
  const { resources } = validateResources(docs, { requireProxy: false })
  return resources.map((resource) => ({ resource: resource as StoredResource, revision: 1, source: 'test' }))
}

function sources(registered: Record<string, RegisteredEndpoint[]> = {}, unhealthy: Record<string, string[]> = {}): EndpointSources {
  return {
    registeredEndpoints: (key) => registered[key] ?? [],
    unhealthyEndpoints: (key) => (unhealthy[key] === undefined ? undefined : new Set(unhealthy[key])),
  }
}

const request = (service: string, wants: string[] = []): ScopeRequest => ({ namespace: 'default', service, wants })

const mesh = [
  service('web'),
  service('a', { endpoints: [{ address: '10.0.0.1:80' }] }),
  service('b'),
  service('c'),
  service('d'),
  service('lonely'),
  service('x', { namespace: 'other' }),
  httpRoute('a-to-b', 'a', ['b']),
  httpRoute('b-to-c', 'b', ['c']),
  // A route with two parents: holding it needs both, and d's routes with it.
  { ...httpRoute('cd', 'c', ['c']), parentRefs: [{ name: 'c' }, { name: 'd' }] },
  httpRoute('d-self', 'd', []),
  policy('web-allow', 'web'),
  policy('a-allow', 'a'),
]

function scopeIds(catalog: Catalog, req: ScopeRequest, version = '1'): string[] {
  const snapshot = catalog.snapshot(version)
  return computeScope(snapshot, computeClosure(snapshot, req.wants), req).resources.map((r) => r.id)
}

describe('scope', () => {
  it('follows routes transitively from the wanted Services, through every Service a route names', () => {
    const catalog = new Catalog(sources())
    catalog.load(entries(mesh))
    expect(scopeIds(catalog, request('web', ['default/a']))).toEqual([
      'AuthorizationPolicy/default/web-allow',
      'HTTPRoute/default/a-to-b',
      'HTTPRoute/default/b-to-c',
      'HTTPRoute/default/cd',
      'HTTPRoute/default/d-self',
      'Service/default/a',
      'Service/default/b',
      'Service/default/c',
      'Service/default/d',
      'Service/default/web',
    ])
    expect(scopeIds(catalog, request('web', ['default/lonely']))).toEqual([
      'AuthorizationPolicy/default/web-allow',
      'Service/default/lonely',
      'Service/default/web',
    ])
    // A wanted Service that does not exist contributes nothing (yet).
    expect(scopeIds(catalog, request('lonely', ['default/missing']))).toEqual(['Service/default/lonely'])
  })

  it('with empty wants: every Service in every namespace and every route; policies of its own Service only', () => {
    const catalog = new Catalog(sources())
    catalog.load(entries(mesh))
    const ids = scopeIds(catalog, request('a'))
    expect(ids.filter((id) => id.startsWith('Service/'))).toHaveLength(7)
    expect(ids).toContain('Service/other/x')
    expect(ids.filter((id) => id.startsWith('HTTPRoute/'))).toHaveLength(4)
    expect(ids.filter((id) => id.startsWith('AuthorizationPolicy/'))).toEqual(['AuthorizationPolicy/default/a-allow'])
  })

  it('pushes Services with static + registered - unhealthy endpoints, and re-serialises only what changed', () => {
    const registered: Record<string, RegisteredEndpoint[]> = {}
    const unhealthy: Record<string, string[]> = {}
    const catalog = new Catalog(sources(registered, unhealthy))
    catalog.load(entries(mesh))
    const first = catalog.snapshot('5')
    const a1 = first.services.get('default/a')
    const web1 = first.services.get('default/web')

    registered['default/a'] = [
      { address: '10.0.0.1:80', weight: 1, labels: {}, protocol: 'auto', mtls: 'off' }, // same as the static one: not doubled
      { address: '10.0.0.2:4143', weight: 2, labels: { zone: 'z' }, protocol: 'auto', mtls: 'off' },
    ]
    unhealthy['default/a'] = ['10.0.0.1:80'] // ignored: a has no healthCheck
    catalog.serviceEndpointsChanged('default/a')
    const second = catalog.snapshot('6')
    const a2 = second.services.get('default/a')
    expect(JSON.parse(a2!.json).endpoints).toEqual([
      { address: '10.0.0.1:80', weight: 1, labels: {} },
      { address: '10.0.0.2:4143', weight: 2, labels: { zone: 'z' } },
    ])
    expect(a2!.resourceVersion).toBe('6')
    expect(a1!.resourceVersion).toBe('5')
    expect([...second.changed]).toEqual(['Service/default/a'])
    expect(second.services.get('default/web')).toBe(web1) // untouched: same object, same encoding

    // The pushed body is still a valid normalised Service.
    expect(() => validateResources([JSON.parse(a2!.json)], { requireProxy: false })).not.toThrow()
  })

  it('gives registered endpoints of mTLS ports the workload identity; scoped mTLS leaves permissive ports of other namespaces plaintext', () => {
    const endpoint = (address: string, mtls: RegisteredEndpoint['mtls']): RegisteredEndpoint => ({ address, weight: 1, labels: {}, protocol: 'auto', mtls })
    const registered: Record<string, RegisteredEndpoint[]> = {
      'default/a': [endpoint('10.0.0.2:4143', 'strict'), endpoint('10.0.0.3:4143', 'permissive'), endpoint('10.0.0.4:4143', 'off')],
      'other/x': [endpoint('10.0.1.2:4143', 'strict'), endpoint('10.0.1.3:4143', 'permissive')],
    }
    const identities = (catalog: Catalog, key: string): (string | undefined)[] =>
      (JSON.parse(catalog.snapshot('1').services.get(key)!.json) as { endpoints: { identity?: string }[] }).endpoints.map((e) => e.identity)
    const identityOf = (key: string): string => `spiffe://mesh.local/ns/${key.split('/')[0]}/sa/${key.split('/')[1]}`

    const everywhere = new Catalog({ ...sources(registered), registeredIdentity: identityOf })
    everywhere.load(entries(mesh))
    const A = 'spiffe://mesh.local/ns/default/sa/a'
    const X = 'spiffe://mesh.local/ns/other/sa/x'
    // The static endpoint (10.0.0.1) and the off port carry none.
    expect(identities(everywhere, 'default/a')).toEqual([undefined, A, A, undefined])
    expect(identities(everywhere, 'other/x')).toEqual([X, X])

    const scoped = new Catalog({ ...sources(registered), registeredIdentity: identityOf, mtlsInScope: (ns) => ns === 'default' })
    scoped.load(entries(mesh))
    expect(identities(scoped, 'default/a')).toEqual([undefined, A, A, undefined])
    expect(identities(scoped, 'other/x')).toEqual([X, undefined])
  })

  it('withholds unhealthy endpoints of a health-checked Service', () => {
    const unhealthy: Record<string, string[]> = { 'default/h': ['10.0.0.2:80'] }
    const catalog = new Catalog(sources({}, unhealthy))
    catalog.load(
      entries([
        service('h', { endpoints: [{ address: '10.0.0.1:80' }, { address: '10.0.0.2:80' }], healthCheck: { path: '/healthz' } }),
      ]),
    )
    const pushed = catalog.snapshot('1').services.get('default/h')
    expect(JSON.parse(pushed!.json).endpoints.map((e: { address: string }) => e.address)).toEqual(['10.0.0.1:80'])
    expect(catalog.healthTargets().get('default/h')?.addresses).toEqual(['10.0.0.1:80', '10.0.0.2:80'])
  })

  it('diffs two scopes into changed resources and removed keys', () => {
    const catalog = new Catalog(sources())
    catalog.load(entries(mesh))
    const req = request('web', ['default/a'])
    const s1 = catalog.snapshot('1')
    const before = computeScope(s1, computeClosure(s1, req.wants), req)
    catalog.applyChanges({
      revision: 2,
      events: [
        { type: 'delete', resource: entries([service('web'), policy('web-allow', 'web')])[1]!.resource, revision: 2 },
        { type: 'put', resource: entries([service('c', { port: 8080 })])[0]!.resource, revision: 2 },
      ],
    })
    const s2 = catalog.snapshot('2')
    const after = computeScope(s2, computeClosure(s2, req.wants), req)
    const delta = diff(before, after)
    expect(delta.changed.map((r) => r.id)).toEqual(['Service/default/c'])
    expect(delta.removed).toEqual([{ kind: 'AuthorizationPolicy', namespace: 'default', name: 'web-allow' }])
  })
})

describe('push encoding', () => {
  it('decodes a push assembled from pre-encoded resources like a normally encoded one', () => {
    const catalog = new Catalog(sources())
    catalog.load(entries(mesh))
    const resources = [...catalog.snapshot('42').resources.values()]
    const removed = [{ kind: 'Service', namespace: 'default', name: 'gone' }]
    const bytes = encodePush({ version: '42', nonce: '7', full: false, removed }, resources)
    const decoded = discoveryService().Watch.responseDeserialize(bytes) as WatchResponse__Output
    expect(decoded.version).toBe('42')
    expect(decoded.nonce).toBe('7')
    expect(decoded.full).toBe(false)
    expect(decoded.removed).toEqual(removed)
    expect(decoded.resources).toEqual(
      resources.map((r) => ({ kind: r.kind, namespace: r.namespace, name: r.name, resourceVersion: '42', json: r.json })),
    )
  })
})
