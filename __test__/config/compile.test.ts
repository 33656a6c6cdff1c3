import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { BindingProxyConfig } from '../../native/index.js'
import { compileProxyConfig, proxySettings } from '../../src/compile/index.js'
import { loadResourcesFromFileSync, validateResources, type MeshResource } from '../../src/config/index.js'
import { load } from './helpers.js'

const compile = (yaml: string): BindingProxyConfig => compileProxyConfig(load(yaml).resources, { source: 'mesh.yaml' })

describe('compileProxyConfig', () => {
  it('compiles the spec example into the engine snapshot input', () => {
    const file = join(__dirname, '..', 'fixtures', 'config', 'spec-example.yaml')
    const config = compileProxyConfig(loadResourcesFromFileSync(file).resources, { source: '/etc/mesh/mesh.yaml' })
    expect(config).toEqual({
      source: '/etc/mesh/mesh.yaml',
      inbound: [{ listen: '0.0.0.0:4143', forwardTo: '127.0.0.1:8080', protocol: 'auto', service: 'default/web', mtls: 'permissive' }],
      outbound: { listen: '127.0.0.1:4140', passthrough: true },
      tcpOutbound: [{ listen: '127.0.0.1:15432', service: 'default/postgres' }],
      services: [
        {
          name: 'orders',
          namespace: 'default',
          port: 80,
          protocol: 'http',
          endpoints: [{ address: '127.0.0.1:18080', weight: 1, labels: { version: 'v1' } }],
          loadBalancer: 'ewma',
          circuitBreaker: {
            maxConnections: 1024,
            maxPendingRequests: 1024,
            maxRequests: 1024,
            consecutiveFailures: 5,
            ejectionMs: 30_000,
            maxEjectionPercent: 50,
          },
        },
        { name: 'orders-v1', namespace: 'default', port: 80, protocol: 'http', endpoints: [{ address: '127.0.0.1:18081', weight: 1 }], loadBalancer: 'ewma' },
        { name: 'orders-v2', namespace: 'default', port: 80, protocol: 'http', endpoints: [{ address: '127.0.0.1:18082', weight: 1 }], loadBalancer: 'ewma' },
        { name: 'postgres', namespace: 'default', port: 5432, protocol: 'tcp', endpoints: [{ address: '127.0.0.1:5432', weight: 1 }], loadBalancer: 'ewma' },
      ],
      httpRoutes: [
        {
          name: 'orders-canary',
          namespace: 'default',
          parents: ['default/orders'],
          rules: [
            {
              matches: [{ path: { kind: 'PathPrefix', value: '/api' }, headers: [{ name: 'x-canary', kind: 'Exact', value: '1' }], method: 'GET' }],
              backends: [
                { service: 'default/orders-v2', weight: 10 },
                { service: 'default/orders-v1', weight: 90 },
              ],
              requestTimeoutMs: 2000,
              backendRequestTimeoutMs: 500,
              faults: { delay: { percent: 10, fixedMs: 100 }, abort: { percent: 5, status: 503 } },
              rateLimit: { requestsPerSecond: 100, burst: 50 },
              retry: {
                attempts: 3,
                codes: [502, 503, 504],
                backoffMs: 25,
                budgetPercent: 20,
                minRetriesPerSecond: 10,
                budgetWindowMs: 10_000,
                maxRequestBytes: 65536,
                nonIdempotent: false,
              },
            },
          ],
        },
      ],
      // The spec example's policy targets orders, not this proxy (web): orders' proxy enforces it.
      authorization: [],
      timeouts: { detectMs: 1000, connectMs: 1000, poolIdleMs: 90_000 },
    })
  })

  it('applies listener defaults: all interfaces, auto, service = namespace/Proxy name; IPv6 in brackets', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: api
namespace: shop
inbound:
  - { port: 4143, forwardTo: 127.0.0.1:8080 }
  - { port: 0, address: "::1", forwardTo: "[::1]:8081", protocol: grpc, mtls: off }
  - { port: 4144, address: 127.0.0.1, forwardTo: 127.0.0.1:5432, protocol: tcp, mtls: strict }
  - { port: 8443, forwardTo: 127.0.0.1:8080, tls: { certificate: /etc/tls/shop.crt, key: /etc/tls/shop.key } }
outbound:
  listen: 127.0.0.1:0
  passthrough: false
detectTimeout: 250ms
connectTimeout: 1.5s
poolIdleTimeout: 1m
`)
    expect(config.inbound).toEqual([
      { listen: '0.0.0.0:4143', forwardTo: '127.0.0.1:8080', protocol: 'auto', service: 'shop/api' },
      { listen: '[::1]:0', forwardTo: '[::1]:8081', protocol: 'grpc', service: 'shop/api', mtls: 'off' },
      { listen: '127.0.0.1:4144', forwardTo: '127.0.0.1:5432', protocol: 'tcp', service: 'shop/api', mtls: 'strict' },
      {
        listen: '0.0.0.0:8443',
        forwardTo: '127.0.0.1:8080',
        protocol: 'auto',
        service: 'shop/api',
        tls: { certificateFile: '/etc/tls/shop.crt', keyFile: '/etc/tls/shop.key' },
      },
    ])
    expect(config.outbound).toEqual({ listen: '127.0.0.1:0', passthrough: false })
    expect(config.timeouts).toEqual({ detectMs: 250, connectMs: 1500, poolIdleMs: 60_000 })
  })

  it('omits the outbound listener when the Proxy has only tcp ports; tcp services are namespace/name', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
outbound:
  tcp:
    - { listen: 127.0.0.1:15432, service: pg, namespace: data }
---
apiVersion: mesh/v1
kind: Service
name: pg
namespace: data
port: 5432
protocol: tcp
`)
    expect(config.outbound).toBeUndefined()
    expect(config.tcpOutbound).toEqual([{ listen: '127.0.0.1:15432', service: 'data/pg' }])
  })

  it('services: endpoint weights default to 1, labels only when present, ring_hash header', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: users
namespace: accounts
port: 8080
protocol: http2
endpoints:
  - address: 127.0.0.1:9001
  - address: "[::1]:9002"
    weight: 3
    labels: { zone: a }
    identity: spiffe://mesh.local/ns/accounts/sa/users
loadBalancer: { type: ring_hash, hashHeader: X-User-ID }
---
apiVersion: mesh/v1
kind: Service
name: sticky
loadBalancer: ring_hash
`)
    expect(config.services).toEqual([
      {
        name: 'users',
        namespace: 'accounts',
        port: 8080,
        protocol: 'http2',
        endpoints: [
          { address: '127.0.0.1:9001', weight: 1 },
          { address: '[::1]:9002', weight: 3, labels: { zone: 'a' }, identity: 'spiffe://mesh.local/ns/accounts/sa/users' },
        ],
        loadBalancer: 'ring_hash',
        hashHeader: 'x-user-id',
      },
      { name: 'sticky', namespace: 'default', port: 80, protocol: 'http', endpoints: [], loadBalancer: 'ring_hash' },
    ])
  })

  it('routes: parents in the route namespace by default, header match types, methods, weights, timeouts', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: orders
namespace: shop
---
apiVersion: mesh/v1
kind: Service
name: orders-v2
namespace: canary
---
apiVersion: mesh/v1
kind: HTTPRoute
name: orders
namespace: shop
parentRefs: [ { name: orders } ]
rules:
  - matches:
      - path: { type: RegularExpression, value: "/items/[0-9]+" }
        headers:
          - { name: X-Canary, value: "1" }
          - { name: x-user, value: "^a.*", type: RegularExpression }
        method: delete
      - path: { type: Exact, value: /health }
    backendRefs:
      - { name: orders }
      - { name: orders-v2, namespace: canary, weight: 0 }
    timeouts: { request: 0s, backendRequest: 1m }
  - backendRefs: [ { name: orders-v2, namespace: canary, weight: 5 } ]
    timeouts: { request: 1h }
  - {}
`)
    expect(config.httpRoutes).toEqual([
      {
        name: 'orders',
        namespace: 'shop',
        parents: ['shop/orders'],
        rules: [
          {
            matches: [
              {
                path: { kind: 'RegularExpression', value: '/items/[0-9]+' },
                headers: [
                  { name: 'x-canary', kind: 'Exact', value: '1' },
                  { name: 'x-user', kind: 'RegularExpression', value: '^a.*' },
                ],
                method: 'DELETE',
              },
              { path: { kind: 'Exact', value: '/health' }, headers: [] },
            ],
            backends: [
              { service: 'shop/orders', weight: 1 },
              { service: 'canary/orders-v2', weight: 0 },
            ],
            // request 0s disables that timeout: absent, not 0
            backendRequestTimeoutMs: 60_000,
          },
          { matches: [], backends: [{ service: 'canary/orders-v2', weight: 5 }], requestTimeoutMs: 3_600_000 },
          { matches: [], backends: [] },
        ],
      },
    ])
  })

  it('faults: durations in ms, shares as given, delay and abort each only when present', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: orders
---
apiVersion: mesh/v1
kind: HTTPRoute
name: chaos
parentRefs: [ { name: orders } ]
rules:
  - faults: { delay: { percent: "12.5%", fixed: 1.5s } }
  - faults: { abort: { status: 429 } }
  - backendRefs: [ { name: orders } ]
`)
    const rules = config.httpRoutes[0]?.rules
    expect(rules?.[0]?.faults).toEqual({ delay: { percent: 12.5, fixedMs: 1500 } })
    expect(rules?.[1]?.faults).toEqual({ abort: { percent: 100, status: 429 } })
    expect(rules?.[2]).not.toHaveProperty('faults')
  })

  it('rate limits: per rule and per inbound port, burst defaulting to the rate rounded up', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
inbound:
  - { port: 4143, forwardTo: 127.0.0.1:8080, rateLimit: { requestsPerSecond: 2.5 } }
  - { port: 4144, forwardTo: 127.0.0.1:8081 }
---
apiVersion: mesh/v1
kind: Service
name: orders
---
apiVersion: mesh/v1
kind: HTTPRoute
name: limited
parentRefs: [ { name: orders } ]
rules:
  - rateLimit: { requestsPerSecond: 100, burst: 10 }
`)
    expect(config.inbound[0]?.rateLimit).toEqual({ requestsPerSecond: 2.5, burst: 3 })
    expect(config.inbound[1]).not.toHaveProperty('rateLimit')
    expect(config.httpRoutes[0]?.rules[0]?.rateLimit).toEqual({ requestsPerSecond: 100, burst: 10 })
  })

  it('retry: durations in ms, budget as a percentage, every default filled in', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: orders
---
apiVersion: mesh/v1
kind: HTTPRoute
name: retrying
parentRefs: [ { name: orders } ]
rules:
  - retry: { attempts: 2, codes: [503], backoff: 1s, budget: "12.5%", minRetriesPerSecond: 0, budgetWindow: 30s, maxRequestBytes: 1024, nonIdempotent: true }
  - retry: {}
`)
    const [custom, defaults] = config.httpRoutes[0]?.rules ?? []
    expect(custom?.retry).toEqual({
      attempts: 2,
      codes: [503],
      backoffMs: 1000,
      budgetPercent: 12.5,
      minRetriesPerSecond: 0,
      budgetWindowMs: 30_000,
      maxRequestBytes: 1024,
      nonIdempotent: true,
    })
    expect(defaults?.retry).toEqual({
      attempts: 1,
      codes: [502, 503, 504],
      backoffMs: 25,
      budgetPercent: 20,
      minRetriesPerSecond: 10,
      budgetWindowMs: 10_000,
      maxRequestBytes: 65536,
      nonIdempotent: false,
    })
  })

  it('a route without rules gets one catch-all rule to its parent', () => {
    const config = compile(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: orders
---
apiVersion: mesh/v1
kind: HTTPRoute
name: all
parentRefs: [ { name: orders } ]
`)
    expect(config.httpRoutes).toEqual([{ name: 'all', namespace: 'default', parents: ['default/orders'], rules: [{ matches: [], backends: [] }] }])
  })

  it('TCPRoutes compile to nothing (warned, not enforced)', () => {
    const { resources, warnings } = load(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: pg
protocol: tcp
---
apiVersion: mesh/v1
kind: TCPRoute
name: pg
parentRefs: [ { name: pg } ]
rules: [ { backendRefs: [ { name: pg } ] } ]
`)
    expect(warnings).toEqual(['mesh.yaml: document 3 (TCPRoute "pg"): accepted but not enforced in this version'])
    const enforced = resources.filter((r) => r.kind !== 'TCPRoute')
    expect(compileProxyConfig(resources, { source: 'x' })).toEqual(compileProxyConfig(enforced, { source: 'x' }))
  })

  it('compiles the AuthorizationPolicies of the proxy\'s own Service, and warns about the others', () => {
    const { resources, warnings } = load(`
apiVersion: mesh/v1
kind: Proxy
name: orders
---
apiVersion: mesh/v1
kind: Service
name: orders
---
apiVersion: mesh/v1
kind: Service
name: billing
---
apiVersion: mesh/v1
kind: AuthorizationPolicy
name: web-api
targetRef: { kind: Service, name: orders }
rules:
  - from: [ { identity: "spiffe://mesh.local/ns/default/sa/web" }, { identity: "spiffe://mesh.local/ns/ops/*" } ]
    to: [ { paths: ["/api/*", "*.json"], methods: [get, POST] }, { methods: [DELETE] } ]
  - to: [ { paths: [/healthz] } ]
---
apiVersion: mesh/v1
kind: AuthorizationPolicy
name: no-batch
targetRef: { name: orders }
action: deny
rules: [ { from: [ { identity: "spiffe://mesh.local/ns/jobs/*" } ] } ]
---
apiVersion: mesh/v1
kind: AuthorizationPolicy
name: billing-locked
targetRef: { name: billing }
`)
    expect(warnings).toEqual([
      'mesh.yaml: document 6 (AuthorizationPolicy "billing-locked"): targetRef.name: Service "default/billing" is not this proxy\'s workload ("default/orders"); only the proxy of "default/billing" enforces this policy',
    ])
    expect(compileProxyConfig(resources, { source: 'x' }).authorization).toEqual([
      {
        name: 'web-api',
        namespace: 'default',
        action: 'allow',
        rules: [
          {
            from: ['spiffe://mesh.local/ns/default/sa/web', 'spiffe://mesh.local/ns/ops/*'],
            to: [
              { paths: ['/api/*', '*.json'], methods: ['GET', 'POST'] },
              { paths: [], methods: ['DELETE'] },
            ],
          },
          { from: [], to: [{ paths: ['/healthz'], methods: [] }] },
        ],
      },
      { name: 'no-batch', namespace: 'default', action: 'deny', rules: [{ from: ['spiffe://mesh.local/ns/jobs/*'], to: [] }] },
    ])
  })

  it('without a Proxy: no listeners, engine default timeouts', () => {
    const { resources } = validateResources([{ apiVersion: 'mesh/v1', kind: 'Service', name: 'orders' }], { requireProxy: false })
    const config = compileProxyConfig(resources, { source: 'control-plane' })
    expect(config).toEqual({
      source: 'control-plane',
      inbound: [],
      tcpOutbound: [],
      services: [{ name: 'orders', namespace: 'default', port: 80, protocol: 'http', endpoints: [], loadBalancer: 'ewma' }],
      httpRoutes: [],
      authorization: [],
    })
  })

  it('does not share objects with the resources (the engine input can be handed off)', () => {
    const { resources } = load(`
apiVersion: mesh/v1
kind: Proxy
name: web
---
apiVersion: mesh/v1
kind: Service
name: orders
endpoints: [ { address: 127.0.0.1:1, labels: { a: b } } ]
`)
    const config = compileProxyConfig(resources, { source: 'x' })
    const labels = config.services[0]?.endpoints[0]?.labels
    expect(labels).toEqual({ a: 'b' })
    if (labels) labels.a = 'changed'
    const service = resources[1] as Extract<MeshResource, { kind: 'Service' }>
    expect(service.endpoints[0]?.labels).toEqual({ a: 'b' })
  })
})

describe('proxySettings', () => {
  it('reads the Proxy resource, durations in ms', () => {
    const { resources } = load(`
apiVersion: mesh/v1
kind: Proxy
name: api
namespace: shop
workerThreads: 4
drainTimeout: 1m30s
admin: { listen: "[::1]:9990" }
`)
    expect(proxySettings(resources)).toEqual({ name: 'api', namespace: 'shop', workerThreads: 4, drainTimeoutMs: 90_000, adminListen: '[::1]:9990' })
  })

  it('defaults', () => {
    expect(proxySettings(load('apiVersion: mesh/v1\nkind: Proxy\nname: web\n').resources)).toEqual({
      name: 'web',
      namespace: 'default',
      workerThreads: 1,
      drainTimeoutMs: 10_000,
      adminListen: '127.0.0.1:4191',
    })
    expect(proxySettings([])).toEqual({ name: 'proxy', namespace: 'default', workerThreads: 1, drainTimeoutMs: 10_000, adminListen: '127.0.0.1:4191' })
  })
})
