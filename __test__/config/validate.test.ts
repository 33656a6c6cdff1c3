import { describe, expect, it } from 'vitest'
import { validateResources, type HTTPRouteResource, type MeshResource, type ProxyResource, type ServiceResource } from '../../src/config/index.js'
import { configErrors, errorsWithProxy, PROXY, validateWithProxy } from './helpers.js'

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'mesh/v1',
  kind: 'Service',
  name,
  endpoints: [{ address: '127.0.0.1:18080' }],
  ...extra,
})

const route = (extra: Record<string, unknown>) => ({
  apiVersion: 'mesh/v1',
  kind: 'HTTPRoute',
  name: 'r',
  parentRefs: [{ name: 'orders' }],
  ...extra,
})

const proxy = (extra: Record<string, unknown>) => ({ ...PROXY, ...extra })

const proxyErrors = (extra: Record<string, unknown>) => configErrors(() => validateResources([proxy(extra)], { fileLabel: 'mesh.yaml' }))

const at = (document: number, label: string, rest: string) => `mesh.yaml: document ${document} (${label}): ${rest}`

describe('field checks', () => {
  it('unknown fields, with a suggestion when one is close', () => {
    expect(errorsWithProxy(service('orders'), route({ rules: [{ matchs: [] }], parentRef: [] }))).toEqual([
      at(3, 'HTTPRoute "r"', 'rules[0].matchs: unknown field (did you mean "matches"?)'),
      at(3, 'HTTPRoute "r"', 'parentRef: unknown field (did you mean "parentRefs"?)'),
    ])
    expect(errorsWithProxy(service('orders', { colour: 'blue' }))).toEqual([at(2, 'Service "orders"', 'colour: unknown field')])
    expect(errorsWithProxy(service('orders', { LoadBalancer: 'random' }))).toEqual([
      at(2, 'Service "orders"', 'LoadBalancer: unknown field (did you mean "loadBalancer"?)'),
    ])
  })

  it('tells Kubernetes users where name and namespace go', () => {
    expect(errorsWithProxy({ apiVersion: 'mesh/v1', kind: 'Service', metadata: { name: 'orders' } })).toEqual([
      'mesh.yaml: document 2 (Service): metadata: unknown field (put name and namespace at the top level of the document)',
      'mesh.yaml: document 2 (Service): name: required field is missing (expected a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters))',
    ])
  })

  it('wrong types name what was expected and what was found', () => {
    expect(errorsWithProxy(service('orders', { port: '80', endpoints: { address: '127.0.0.1:1' }, protocol: 5 }))).toEqual([
      at(2, 'Service "orders"', 'endpoints: expected a list, got a mapping (write each item on its own line starting with "- ")'),
      at(2, 'Service "orders"', 'port: expected an integer from 1 to 65535, got "80"'),
      at(2, 'Service "orders"', 'protocol: expected one of http, http2, grpc, tcp; got the number 5'),
    ])
    expect(errorsWithProxy(service('orders', { endpoints: [{ address: '127.0.0.1:1', labels: { version: 1 } }] }))).toEqual([
      at(2, 'Service "orders"', 'endpoints[0].labels.version: expected a string, got the number 1 (quote it to make it a string)'),
    ])
    expect(proxyErrors({ outbound: { listen: '127.0.0.1:4140', passthrough: 'yes' } })).toEqual([
      at(1, 'Proxy "web"', 'outbound.passthrough: expected true or false, got "yes"'),
    ])
  })

  it('required fields: missing, and present but empty', () => {
    expect(errorsWithProxy(service('orders', { endpoints: [{ weight: 1 }, { address: null }] }))).toEqual([
      at(2, 'Service "orders"', 'endpoints[0].address: required field is missing (expected HOST:PORT)'),
      at(2, 'Service "orders"', 'endpoints[1].address: expected HOST:PORT, got an empty value'),
    ])
  })

  it('durations: a unit is required and bounds are enforced', () => {
    expect(proxyErrors({ drainTimeout: 5, detectTimeout: '11s', connectTimeout: '0s', poolIdleTimeout: '2d' })).toEqual([
      at(1, 'Proxy "web"', 'drainTimeout: expected a duration with a unit such as "250ms", "2s", "1m" or "1h", got the bare number 5 (add a unit, e.g. "5s" or "5ms")'),
      at(1, 'Proxy "web"', 'detectTimeout: expected a duration of at most 10s, got "11s"'),
      at(1, 'Proxy "web"', 'connectTimeout: expected a duration of at least 1ms, got "0s"'),
      at(1, 'Proxy "web"', 'poolIdleTimeout: expected a duration such as "250ms", "2s", "1m" or "1h", got "2d"'),
    ])
    expect(proxyErrors({ drainTimeout: '25h' })).toEqual([at(1, 'Proxy "web"', 'drainTimeout: expected a duration of at most 24h, got "25h"')])
  })

  it('addresses: IPs only, ports in range, the spec wording for a missing port', () => {
    expect(
      proxyErrors({
        inbound: [
          { port: 70000, forwardTo: '127.0.0.1:8080' },
          { port: 4144, forwardTo: 'localhost:80' },
          { port: 4145, forwardTo: '127.0.0.1:0' },
          { port: 4146, address: 'localhost', forwardTo: '127.0.0.1:80' },
        ],
        admin: { listen: 'localhost' },
      }),
    ).toEqual([
      at(1, 'Proxy "web"', 'inbound[0].port: expected an integer from 0 to 65535, got the number 70000'),
      at(1, 'Proxy "web"', 'inbound[1].forwardTo: expected HOST:PORT with an IP address, got "localhost:80"'),
      at(1, 'Proxy "web"', 'inbound[2].forwardTo: expected HOST:PORT with a port from 1 to 65535, got "127.0.0.1:0"'),
      at(1, 'Proxy "web"', 'inbound[3].address: expected an IP address, got "localhost"'),
      at(1, 'Proxy "web"', 'admin.listen: expected HOST:PORT, got "localhost"'),
    ])
  })

  it('enums list the allowed values and suggest the closest', () => {
    expect(proxyErrors({ inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080', protocol: 'http', mtls: 'strct' }] })).toEqual([
      at(1, 'Proxy "web"', 'inbound[0].protocol: expected one of auto, http1, http2, grpc, tcp; got "http" (did you mean "http1"?)'),
      at(1, 'Proxy "web"', 'inbound[0].mtls: expected one of strict, permissive, off; got "strct" (did you mean "strict"?)'),
    ])
  })

  it('names: DNS labels for Services, dotted names allowed for routes', () => {
    expect(errorsWithProxy(service('Orders_1'))[0]).toBe(
      at(2, 'Service "Orders_1"', 'name: expected a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters), got "Orders_1"'),
    )
    expect(errorsWithProxy(service('a'.repeat(64)))[0]).toMatch(/name: expected a DNS label/)
    expect(validateWithProxy(service('orders'), route({ name: 'orders.canary-1' })).resources).toHaveLength(3)
    expect(errorsWithProxy(service('orders', { namespace: 'Prod' }))).toEqual([at(2, 'Service "orders"', 'namespace: expected a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters), got "Prod"')])
  })

  it('apiVersion and kind', () => {
    expect(errorsWithProxy({ apiVersion: 'v1', kind: 'Service', name: 'a' })).toEqual([at(2, 'Service "a"', 'apiVersion: expected "mesh/v1", got "v1"')])
    expect(errorsWithProxy({ apiVersion: 'mesh/v1', kind: 'Services', name: 'a' })).toEqual([
      at(2, 'Services "a"', 'kind: expected one of Proxy, Service, HTTPRoute, TCPRoute, AuthorizationPolicy; got "Services" (did you mean "Service"?)'),
    ])
    expect(errorsWithProxy({ name: 'a' })).toEqual([
      'mesh.yaml: document 2 ("a"): kind: required field is missing (expected one of Proxy, Service, HTTPRoute, TCPRoute, AuthorizationPolicy)',
      'mesh.yaml: document 2 ("a"): apiVersion: required field is missing (expected "mesh/v1")',
    ])
    expect(errorsWithProxy(['a'])).toEqual(['mesh.yaml: document 2: expected a resource (a mapping with apiVersion, kind and name), got a list'])
  })

  it('load balancers: a name or a mapping; hashHeader only for ring_hash', () => {
    const lb = (loadBalancer: unknown) => (validateWithProxy(service('orders', { loadBalancer })).resources[1] as ServiceResource).loadBalancer
    expect(lb('round_robin')).toEqual({ type: 'round_robin' })
    expect(lb({ type: 'ring_hash', hashHeader: 'X-User' })).toEqual({ type: 'ring_hash', hashHeader: 'x-user' })
    expect(lb({ type: 'ring_hash' })).toEqual({ type: 'ring_hash' })
    expect(errorsWithProxy(service('orders', { loadBalancer: { type: 'random', hashHeader: 'x' } }))).toEqual([
      at(2, 'Service "orders"', 'loadBalancer.hashHeader: only valid with type ring_hash, not random'),
    ])
    expect(errorsWithProxy(service('orders', { loadBalancer: { type: 'ring_hash', hashHeader: 'x user' } }))).toEqual([
      at(2, 'Service "orders"', 'loadBalancer.hashHeader: expected an HTTP header name, got "x user"'),
    ])
    expect(errorsWithProxy(service('orders', { loadBalancer: 3 }))).toEqual([
      at(2, 'Service "orders"', 'loadBalancer: expected one of ewma, round_robin, least_request, random, ring_hash, or a mapping such as { type: ring_hash, hashHeader: x-user }; got the number 3'),
    ])
  })

  it('endpoints: duplicates and weights', () => {
    expect(errorsWithProxy(service('orders', { endpoints: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:1', weight: 0 }] }))).toEqual([
      at(2, 'Service "orders"', 'endpoints[1].weight: expected an integer from 1 to 1000000, got the number 0'),
    ])
    expect(errorsWithProxy(service('orders', { endpoints: [{ address: '[::1]:1' }, { address: '127.0.0.1:2' }, { address: '[::1]:1' }] }))).toEqual([
      at(2, 'Service "orders"', 'endpoints[2].address: duplicate of endpoints[0].address'),
    ])
  })

  it('label keys that are not identifiers are quoted in paths', () => {
    expect(errorsWithProxy(service('orders', { endpoints: [{ address: '127.0.0.1:1', labels: { 'app.kubernetes.io/name': true } }] }))).toEqual([
      at(2, 'Service "orders"', 'endpoints[0].labels["app.kubernetes.io/name"]: expected a string, got the boolean true (quote it to make it a string)'),
    ])
  })
})

describe('HTTPRoute checks', () => {
  const routeErrors = (extra: Record<string, unknown>) => errorsWithProxy(service('orders'), route(extra))
  const ROUTE = 'HTTPRoute "r"'

  it('path matches: Exact/PathPrefix need a path, regexes must compile without lookaround', () => {
    expect(
      routeErrors({
        rules: [
          {
            matches: [
              { path: { value: 'api' } },
              { path: { type: 'Exact', value: '/a?b' } },
              { path: { type: 'RegularExpression', value: '/(a' } },
              { path: { type: 'RegularExpression', value: '/(?!admin).*' } },
              { path: { type: 'Prefix', value: '/' } },
            ],
          },
        ],
      }),
    ).toEqual([
      at(3, ROUTE, 'rules[0].matches[0].path.value: expected a path starting with "/" (no spaces, "?" or "#"), got "api"'),
      at(3, ROUTE, 'rules[0].matches[1].path.value: expected a path starting with "/" (no spaces, "?" or "#"), got "/a?b"'),
      at(3, ROUTE, 'rules[0].matches[2].path.value: expected a valid regular expression (Unterminated group), got "/(a"'),
      at(3, ROUTE, 'rules[0].matches[3].path.value: expected a regular expression without lookaround or backreferences, got "/(?!admin).*"'),
      at(3, ROUTE, 'rules[0].matches[4].path.type: expected one of Exact, PathPrefix, RegularExpression; got "Prefix" (did you mean "PathPrefix"?)'),
    ])
  })

  it("regexes in the engine's dialect are accepted: inline flags, (?P<name>)", () => {
    const ok = validateWithProxy(
      service('orders'),
      route({ rules: [{ matches: [{ path: { type: 'RegularExpression', value: '(?i)/users/(?P<id>[0-9]+)' }, headers: [{ name: 'x', type: 'RegularExpression', value: '(?i:abc)|d{2,3}' }] }] }] }),
    )
    expect(ok.resources).toHaveLength(3)
    expect(errorsWithProxy(service('orders'), route({ rules: [{ matches: [{ path: { type: 'RegularExpression', value: '/(a)\\1' } }] }] }))).toEqual([
      at(3, 'HTTPRoute "r"', 'rules[0].matches[0].path.value: expected a regular expression without lookaround or backreferences, got "/(a)\\\\1"'),
    ])
  })

  it('header matches and methods', () => {
    expect(
      routeErrors({
        rules: [{ matches: [{ headers: [{ name: 'x-canary', value: 1 }, { name: 'bad header', value: 'x' }, { name: 'x', value: '(', type: 'RegularExpression' }], method: 'FETCH' }] }],
      }),
    ).toEqual([
      at(3, ROUTE, 'rules[0].matches[0].headers[0].value: expected a string, got the number 1 (quote it to make it a string)'),
      at(3, ROUTE, 'rules[0].matches[0].headers[1].name: expected an HTTP header name, got "bad header"'),
      at(3, ROUTE, 'rules[0].matches[0].headers[2].value: expected a valid regular expression (Unterminated group), got "("'),
      at(3, ROUTE, 'rules[0].matches[0].method: expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; got "FETCH"'),
    ])
  })

  it('timeouts: durations, backendRequest no longer than request', () => {
    expect(routeErrors({ rules: [{ timeouts: { request: '1s', backendRequest: '2s' } }, { timeouts: { request: 2 } }, { timeouts: { requests: '1s' } }] })).toEqual([
      at(3, ROUTE, 'rules[0].timeouts.backendRequest: expected at most timeouts.request (1s), got "2s"'),
      at(3, ROUTE, 'rules[1].timeouts.request: expected a duration with a unit such as "250ms", "2s", "1m" or "1h", got the bare number 2 (add a unit, e.g. "2s" or "2ms")'),
      at(3, ROUTE, 'rules[2].timeouts.requests: unknown field (did you mean "request"?)'),
    ])
    // 0s disables the request timeout, so a longer backendRequest is fine.
    expect(validateWithProxy(service('orders'), route({ rules: [{ timeouts: { request: '0s', backendRequest: '2s' } }] })).warnings).toEqual([])
  })

  it('backendRefs: weights, and at least one above zero', () => {
    expect(errorsWithProxy(service('orders'), service('b'), route({ rules: [{ backendRefs: [{ name: 'orders', weight: 0 }, { name: 'b', weight: 0 }] }, { backendRefs: [{ name: 'b', weight: -1 }] }] }))).toEqual([
      at(4, ROUTE, 'rules[0].backendRefs: expected at least one backend with a weight above 0'),
      at(4, ROUTE, 'rules[1].backendRefs[0].weight: expected an integer from 0 to 1000000, got the number -1'),
    ])
  })

  it('parentRefs are required and not empty', () => {
    expect(errorsWithProxy(service('orders'), route({ parentRefs: [] }))).toEqual([at(3, ROUTE, 'parentRefs: expected at least 1 item, got 0')])
    const { parentRefs: _omitted, ...noParents } = route({})
    expect(errorsWithProxy(service('orders'), noParents)).toEqual([at(3, ROUTE, 'parentRefs: required field is missing (expected a list)')])
    expect(errorsWithProxy(service('orders'), route({ parentRefs: [{ name: 'orders', kind: 'Gateway' }] }))).toEqual([
      at(3, ROUTE, 'parentRefs[0].kind: expected "Service", got "Gateway"'),
    ])
  })

  it('defaults: one catch-all rule to the parent; method upper-cased; refs in the route namespace', () => {
    const { resources } = validateResources(
      [PROXY, service('orders', { namespace: 'shop' }), route({ namespace: 'shop', rules: undefined }), route({ name: 'r2', namespace: 'shop', rules: [{ matches: [{ method: 'post', path: { value: '/x' } }], backendRefs: [{ name: 'orders' }] }] })],
      { fileLabel: 'mesh.yaml' },
    )
    const [first, second] = resources.slice(2) as HTTPRouteResource[]
    expect(first?.parentRefs).toEqual([{ kind: 'Service', name: 'orders', namespace: 'shop' }])
    expect(first?.rules).toEqual([{ matches: [], backendRefs: [] }])
    expect(second?.rules[0]?.matches).toEqual([{ path: { type: 'PathPrefix', value: '/x' }, headers: [], method: 'POST' }])
    expect(second?.rules[0]?.backendRefs).toEqual([{ kind: 'Service', name: 'orders', namespace: 'shop', weight: 1 }])
  })
})

describe('endpoint identities', () => {
  it('take an exact SPIFFE id and nothing else', () => {
    const withIdentity = (identity: unknown) => service('orders', { endpoints: [{ address: '127.0.0.1:18080', identity }] })
    expect(validateWithProxy(withIdentity('spiffe://mesh.local/ns/default/sa/orders')).warnings).toEqual([])
    const expected = 'expected a SPIFFE ID such as "spiffe://mesh.local/ns/default/sa/web"'
    expect(errorsWithProxy(withIdentity('spiffe://mesh.local/ns/default/sa/*'))).toEqual([
      at(2, 'Service "orders"', `endpoints[0].identity: ${expected}, got "spiffe://mesh.local/ns/default/sa/*"`),
    ])
    expect(errorsWithProxy(withIdentity('orders'))).toEqual([at(2, 'Service "orders"', `endpoints[0].identity: ${expected}, got "orders"`)])
  })
})

describe('ingress TLS on an inbound port', () => {
  const withInbound = (fields: Record<string, unknown>) => proxy({ inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080', ...fields }] })
  const inboundErrors = (fields: Record<string, unknown>) =>
    configErrors(() => validateResources([withInbound(fields)], { fileLabel: 'mesh.yaml' }))

  it('takes a certificate and a key file', () => {
    for (const extra of [{}, { mtls: 'off' }]) {
      const { resources, warnings } = validateResources([withInbound({ tls: { certificate: 'server.crt', key: 'server.key' }, ...extra })], {
        fileLabel: 'mesh.yaml',
      })
      expect(warnings).toEqual([])
      expect((resources[0] as { inbound: { tls?: unknown }[] }).inbound[0]!.tls).toEqual({ certificate: 'server.crt', key: 'server.key' })
    }
  })

  it('names a missing or empty file and refuses mesh mTLS on the same port', () => {
    expect(inboundErrors({ tls: { certificate: 'server.crt' } })).toEqual([at(1, 'Proxy "web"', 'inbound[0].tls.key: required field is missing (expected a file path)')])
    expect(inboundErrors({ tls: { certificate: '', key: 'k' } })).toEqual([
      at(1, 'Proxy "web"', 'inbound[0].tls.certificate: expected a file path, got ""'),
    ])
    expect(inboundErrors({ tls: { certificate: 'c', key: 'k' }, mtls: 'strict' })).toEqual([
      at(
        1,
        'Proxy "web"',
        'inbound[0].mtls: a port with tls terminates TLS for clients outside the mesh and cannot also take mesh mTLS; remove mtls or set it to off',
      ),
    ])
  })
})

describe('fields accepted but not enforced', () => {
  const WARNING = 'accepted but not enforced in this version'

  it('warn once per field present, in the error format', () => {
    const { warnings } = validateWithProxy(
      service('orders', { healthCheck: {}, circuitBreaker: {} }),
      route({ rules: [{ retry: {} }, { faults: { abort: { status: 503 } }, rateLimit: { requestsPerSecond: 10 } }] }),
    )
    expect(warnings).toEqual([
      at(2, 'Service "orders"', `healthCheck: ${WARNING}`),
    ])
  })

  it('no longer warn for mtls, which the engine enforces', () => {
    const inbound = (mtls?: string) => validateResources([proxy({ inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080', ...(mtls ? { mtls } : {}) }] })], { fileLabel: 'mesh.yaml' }).warnings
    for (const mode of ['off', 'permissive', 'strict', undefined]) expect(inbound(mode)).toEqual([])
  })

  it('are still validated in full', () => {
    expect(
      errorsWithProxy(
        service('orders', {
          healthCheck: { path: 'healthz', interval: 5, unhealthyThreshold: 0, healthyThresold: 2 },
          circuitBreaker: { maxConnections: -1, ejection: '30' },
        }),
        route({
          rules: [
            {
              retry: { attempts: 0, codes: [502, 700], backoff: 25, budget: '120%' },
              faults: { delay: { percent: 101, fixed: '100ms' }, abort: { percent: '5%' } },
              rateLimit: { requestsPerSecond: 0, burst: 1.5 },
            },
            { faults: {} },
          ],
        }),
      ),
    ).toEqual([
      at(2, 'Service "orders"', 'healthCheck.path: expected a path starting with "/" (no spaces, "?" or "#"), got "healthz"'),
      at(2, 'Service "orders"', 'healthCheck.interval: expected a duration with a unit such as "250ms", "2s", "1m" or "1h", got the bare number 5 (add a unit, e.g. "5s" or "5ms")'),
      at(2, 'Service "orders"', 'healthCheck.unhealthyThreshold: expected an integer from 1 to 1000, got the number 0'),
      at(2, 'Service "orders"', 'healthCheck.healthyThresold: unknown field (did you mean "healthyThreshold"?)'),
      at(2, 'Service "orders"', 'circuitBreaker.maxConnections: expected an integer from 1 to 4294967295, got the number -1'),
      at(2, 'Service "orders"', 'circuitBreaker.ejection: expected a duration such as "250ms", "2s", "1m" or "1h", got "30"'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.attempts: expected an integer from 1 to 100, got the number 0'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.codes[1]: expected an integer from 100 to 599, got the number 700'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.backoff: expected a duration with a unit such as "250ms", "2s", "1m" or "1h", got the bare number 25 (add a unit, e.g. "25s" or "25ms")'),
      at(3, 'HTTPRoute "r"', 'rules[0].retry.budget: expected a percentage from 0 to 100 (e.g. 20 or "20%"), got "120%"'),
      at(3, 'HTTPRoute "r"', 'rules[0].faults.delay.percent: expected a percentage from 0 to 100 (e.g. 20 or "20%"), got the number 101'),
      at(3, 'HTTPRoute "r"', 'rules[0].faults.abort.status: required field is missing (expected an integer from 200 to 599)'),
      at(3, 'HTTPRoute "r"', 'rules[0].rateLimit.requestsPerSecond: expected a positive number, got the number 0'),
      at(3, 'HTTPRoute "r"', 'rules[0].rateLimit.burst: expected an integer from 1 to 1000000000, got the number 1.5'),
      at(3, 'HTTPRoute "r"', 'rules[1].faults: expected delay, abort or both'),
    ])
  })

  it('defaults of the not-enforced fields are filled in', () => {
    const { resources } = validateWithProxy(service('orders', { healthCheck: {}, circuitBreaker: {} }), route({ rules: [{ retry: {}, rateLimit: { requestsPerSecond: 2.5 }, faults: { delay: { fixed: '1s' } } }] }))
    const svc = resources[1] as ServiceResource
    expect(svc.healthCheck).toEqual({ interval: '5s', timeout: '1s', unhealthyThreshold: 3, healthyThreshold: 2 })
    expect(svc.circuitBreaker).toEqual({
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 1024,
      consecutiveFailures: 5,
      ejection: '30s',
      maxEjectionPercent: 50,
    })
    const rule = (resources[2] as HTTPRouteResource).rules[0]
    expect(rule?.retry).toEqual({
      attempts: 1,
      codes: [502, 503, 504],
      backoff: '25ms',
      budget: 20,
      minRetriesPerSecond: 10,
      budgetWindow: '10s',
      maxRequestBytes: 65536,
      nonIdempotent: false,
    })
    expect(rule?.rateLimit).toEqual({ requestsPerSecond: 2.5, burst: 3 })
    expect(rule?.faults).toEqual({ delay: { percent: 100, fixed: '1s' } })
  })

  it('TCPRoute: validated, one warning for the resource', () => {
    const tcpRoute = (extra: Record<string, unknown>) => ({ apiVersion: 'mesh/v1', kind: 'TCPRoute', name: 'db', parentRefs: [{ name: 'pg' }], rules: [{ backendRefs: [{ name: 'pg' }] }], ...extra })
    const pg = service('pg', { protocol: 'tcp', port: 5432 })
    expect(validateWithProxy(pg, tcpRoute({})).warnings).toEqual([at(3, 'TCPRoute "db"', WARNING)])
    expect(errorsWithProxy(pg, tcpRoute({ rules: [{ backendRefs: [{ name: 'pg', port: 5433 }] }, { backendRefs: [{ name: 'pgx' }] }, {}] }))).toEqual([
      at(3, 'TCPRoute "db"', 'rules[2].backendRefs: required field is missing (expected a list)'),
    ])
    expect(errorsWithProxy(pg, tcpRoute({ rules: [{ backendRefs: [{ name: 'pg', port: 5433 }] }, { backendRefs: [{ name: 'pgx' }] }] }))).toEqual([
      at(3, 'TCPRoute "db"', 'rules[0].backendRefs[0].port: Service "default/pg" has port 5432, got 5433'),
      at(3, 'TCPRoute "db"', 'rules[1].backendRefs[0].name: unknown Service "default/pgx" (did you mean "pg"?)'),
    ])
  })

  it('AuthorizationPolicy: validated, enforced (no warning) when it targets this proxy\'s workload', () => {
    const policy = (extra: Record<string, unknown>) => ({ apiVersion: 'mesh/v1', kind: 'AuthorizationPolicy', name: 'p', targetRef: { name: 'orders' }, ...extra })
    const ok = validateWithProxy(service('orders'), policy({ rules: [{ from: [{ identity: 'spiffe://mesh.local/ns/default/*' }], to: [{ paths: ['/api/*', '*.json', '*'], methods: ['get'] }] }] }))
    // The minimal Proxy is "web": orders' proxy enforces this policy, not this one.
    expect(ok.warnings).toEqual([
      at(3, 'AuthorizationPolicy "p"', 'targetRef.name: Service "default/orders" is not this proxy\'s workload ("default/web"); only the proxy of "default/orders" enforces this policy'),
    ])
    expect(validateWithProxy(service('web'), policy({ targetRef: { name: 'web' } })).warnings).toEqual([])
    expect(ok.resources[2]).toEqual({
      apiVersion: 'mesh/v1',
      kind: 'AuthorizationPolicy',
      name: 'p',
      namespace: 'default',
      targetRef: { kind: 'Service', name: 'orders', namespace: 'default' },
      action: 'allow',
      rules: [{ from: [{ identity: 'spiffe://mesh.local/ns/default/*' }], to: [{ paths: ['/api/*', '*.json', '*'], methods: ['GET'] }] }],
    })
    expect(
      errorsWithProxy(
        service('orders'),
        policy({
          action: 'permit',
          targetRef: { name: 'order' },
          rules: [{ from: [{ identity: 'web' }, { identity: 'spiffe://mesh.local/*/sa/web' }], to: [{ paths: ['/a/*/b', 'api'], methods: ['GRAB'] }] }],
        }),
      ),
    ).toEqual([
      at(3, 'AuthorizationPolicy "p"', 'action: expected one of allow, deny; got "permit"'),
      at(3, 'AuthorizationPolicy "p"', 'rules[0].from[0].identity: expected a SPIFFE ID such as "spiffe://mesh.local/ns/default/sa/web", got "web"'),
      at(3, 'AuthorizationPolicy "p"', 'rules[0].from[1].identity: expected "*" only at the end, got "spiffe://mesh.local/*/sa/web"'),
      at(3, 'AuthorizationPolicy "p"', 'rules[0].to[0].paths[0]: expected a path with at most one "*" at its start or end, got "/a/*/b"'),
      at(3, 'AuthorizationPolicy "p"', 'rules[0].to[0].paths[1]: expected a path starting with "/" (no spaces, "?" or "#"), got "api"'),
      at(3, 'AuthorizationPolicy "p"', 'rules[0].to[0].methods[0]: expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH; got "GRAB"'),
    ])
    expect(errorsWithProxy(service('orders'), policy({ targetRef: { name: 'order' } }))).toEqual([
      at(3, 'AuthorizationPolicy "p"', 'targetRef.name: unknown Service "default/order" (did you mean "orders"?)'),
    ])
  })
})

describe('checks across documents', () => {
  it('exactly one Proxy in standalone mode; none allowed when the caller says so', () => {
    expect(configErrors(() => validateResources([service('orders')], { fileLabel: 'mesh.yaml' }))).toEqual([
      'mesh.yaml: no Proxy resource (standalone mode needs exactly one, with the ports this proxy listens on)',
    ])
    expect(validateResources([service('orders')], { requireProxy: false }).resources).toHaveLength(1)
    expect(errorsWithProxy(proxy({ name: 'api' }))).toEqual([at(2, 'Proxy "api"', 'only one Proxy is allowed, document 1 already defines one')])
    expect(configErrors(() => validateResources([proxy({}), proxy({ name: 'api' })], { requireProxy: false }))).toHaveLength(1)
  })

  it('duplicate names per kind and namespace, even when the first is invalid', () => {
    expect(errorsWithProxy(service('orders'), service('orders', { namespace: 'other' }), route({ name: 'orders' }), service('orders'))).toEqual([
      at(5, 'Service "orders"', 'name: Service "default/orders" is already defined in document 2'),
    ])
    expect(errorsWithProxy(service('orders', { port: 0 }), service('orders'))).toEqual([
      at(2, 'Service "orders"', 'port: expected an integer from 1 to 65535, got the number 0'),
      at(3, 'Service "orders"', 'name: Service "default/orders" is already defined in document 2'),
    ])
  })

  it('references to unknown Services, with a suggestion', () => {
    expect(
      errorsWithProxy(
        service('orders'),
        service('orders-v1', { namespace: 'shop' }),
        route({ parentRefs: [{ name: 'ordres' }, { name: 'orders', namespace: 'shop' }], rules: [{ backendRefs: [{ name: 'orders-v1' }, { name: 'orders-v1', namespace: 'shop' }] }] }),
      ),
    ).toEqual([
      at(4, 'HTTPRoute "r"', 'parentRefs[0].name: unknown Service "default/ordres" (did you mean "orders"?)'),
      at(4, 'HTTPRoute "r"', 'parentRefs[1].name: unknown Service "shop/orders" (there is one in namespace "default")'),
      at(4, 'HTTPRoute "r"', 'rules[0].backendRefs[0].name: unknown Service "default/orders-v1" (there is one in namespace "shop")'),
    ])
    expect(proxyErrors({ outbound: { tcp: [{ listen: '127.0.0.1:15432', service: 'postgres' }] } })).toEqual([
      at(1, 'Proxy "web"', 'outbound.tcp[0].service: unknown Service "default/postgres"'),
    ])
  })

  it('does not report references to a Service whose own document is invalid', () => {
    expect(errorsWithProxy(service('orders', { port: 'eighty' }), route({}))).toEqual([
      at(2, 'Service "orders"', 'port: expected an integer from 1 to 65535, got "eighty"'),
    ])
  })

  it('reference checks can be turned off (Services defined elsewhere)', () => {
    const result = validateResources([route({})], { requireProxy: false, checkReferences: false })
    expect(result.resources).toHaveLength(1)
  })

  it('HTTPRoutes need HTTP Services, and ports must agree', () => {
    expect(errorsWithProxy(service('orders', { protocol: 'tcp' }), route({ parentRefs: [{ name: 'orders', port: 8080 }] }))).toEqual([
      at(3, 'HTTPRoute "r"', 'parentRefs[0].port: Service "default/orders" has port 80, got 8080'),
      at(3, 'HTTPRoute "r"', 'parentRefs[0].name: Service "default/orders" has protocol tcp; an HTTPRoute needs an http, http2 or grpc Service'),
    ])
    expect(validateWithProxy(service('orders', { protocol: 'grpc' }), route({ parentRefs: [{ name: 'orders', port: 80 }] })).resources).toHaveLength(3)
  })

  it('listen ports: no two listeners on one port; 0.0.0.0 overlaps every address', () => {
    expect(
      proxyErrors({
        inbound: [
          { port: 4143, forwardTo: '127.0.0.1:8080' },
          { port: 4143, address: '127.0.0.2', forwardTo: '127.0.0.1:8081' },
          { port: 0, forwardTo: '127.0.0.1:8082' },
        ],
        outbound: { listen: '127.0.0.1:4191', tcp: [{ listen: '127.0.0.1:0', service: 'pg' }, { listen: '127.0.0.3:4140', service: 'pg' }, { listen: '127.0.0.4:4140', service: 'pg' }] },
      }),
    ).toEqual([
      at(1, 'Proxy "web"', 'inbound[1].port: port 4143 is already used by inbound[0].port'),
      at(1, 'Proxy "web"', 'admin.listen: port 4191 is already used by outbound.listen'),
    ])
    expect(proxyErrors({ inbound: [{ port: 4143, address: '::', forwardTo: '127.0.0.1:8080' }], outbound: { listen: '127.0.0.1:4143' } })).toEqual([
      at(1, 'Proxy "web"', 'outbound.listen: port 4143 is already used by inbound[0].port'),
    ])
  })

  it('an inbound port that forwards to itself is a loop', () => {
    expect(proxyErrors({ inbound: [{ port: 4143, forwardTo: '127.0.0.1:4143' }] })).toEqual([
      at(1, 'Proxy "web"', "inbound[0].forwardTo: 127.0.0.1:4143 is this listener's own address (a forwarding loop)"),
    ])
    expect(proxyErrors({ inbound: [{ port: 4143, address: '::', forwardTo: '[::1]:4143' }] })).toEqual([
      at(1, 'Proxy "web"', "inbound[0].forwardTo: [::1]:4143 is this listener's own address (a forwarding loop)"),
    ])
    expect(proxyErrors({ inbound: [{ port: 4143, address: '127.0.0.2', forwardTo: '127.0.0.2:4143' }] })).toHaveLength(1)
    // Another local address, or a remote workload, on the same port is not a loop.
    expect(validateResources([proxy({ inbound: [{ port: 4143, address: '127.0.0.2', forwardTo: '127.0.0.1:4143' }] })]).resources).toHaveLength(1)
    expect(validateResources([proxy({ inbound: [{ port: 4143, forwardTo: '10.0.0.5:4143' }] })]).resources).toHaveLength(1)
  })
})

describe('normalised resources', () => {
  it('validate again to themselves (round trip)', () => {
    const first = validateWithProxy(
      service('orders', { loadBalancer: { type: 'ring_hash', hashHeader: 'X-User' }, healthCheck: {} }),
      service('b', { namespace: 'shop' }),
      route({ rules: [{ matches: [{ method: 'get', headers: [{ name: 'X-A', value: 'b' }] }], backendRefs: [{ name: 'b', namespace: 'shop' }], retry: { budget: '20%' } }] }),
    )
    const second = validateResources(first.resources as unknown[], { fileLabel: 'mesh.yaml' })
    expect(second.resources).toEqual(first.resources)
    expect(second.warnings).toEqual(first.warnings)
  })

  it('apply namespace and Proxy defaults', () => {
    const { resources } = validateResources([{ apiVersion: 'mesh/v1', kind: 'Proxy', name: 'web' }])
    const p = resources[0] as ProxyResource
    expect(p.namespace).toBe('default')
    expect(p.inbound).toEqual([])
    expect(p.outbound).toBeUndefined()
    expect(p.admin).toEqual({ listen: '127.0.0.1:4191' })
    expect([p.workerThreads, p.drainTimeout, p.detectTimeout, p.connectTimeout]).toEqual([1, '10s', '1s', '1s'])
  })

  it('do not share default objects between resources', () => {
    const { resources } = validateResources([proxy({}), service('a', { endpoints: undefined }), service('b', { endpoints: undefined })])
    const [a, b] = resources.slice(1) as ServiceResource[]
    expect(a?.endpoints).toEqual([])
    expect(a?.endpoints).not.toBe(b?.endpoints)
  })

  it('label the input "config" when no file label is given', () => {
    expect(configErrors(() => validateResources([proxy({ name: 1 })]))).toEqual(['config: document 1 (Proxy): name: expected a string, got the number 1 (quote it to make it a string)'])
  })

  it('keep document order and lose nothing', () => {
    const input: unknown[] = [service('a'), PROXY, service('b')]
    const kinds = validateResources(input).resources.map((r: MeshResource) => `${r.kind}/${r.name}`)
    expect(kinds).toEqual(['Service/a', 'Proxy/web', 'Service/b'])
  })
})
