import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  ConfigError,
  loadResourcesFromFile,
  loadResourcesFromFileSync,
  type HTTPRouteResource,
  type ProxyResource,
  type ServiceResource,
} from '../../src/config/index.js'
import { configErrors, load } from './helpers.js'

const FIXTURES = join(__dirname, '..', 'fixtures', 'config')
const SPEC_EXAMPLE = join(FIXTURES, 'spec-example.yaml')

const SPEC_EXAMPLE_WARNINGS = [
  'document 2 (Service "orders"): healthCheck: accepted but not enforced in this version',
  'document 4 (AuthorizationPolicy "orders-from-web"): targetRef.name: Service "default/orders" is not this proxy\'s workload ("default/web"); only the proxy of "default/orders" enforces this policy',
]

describe('the spec example file', () => {
  it('loads, with one warning per field that is not enforced yet', async () => {
    const { resources, warnings } = await loadResourcesFromFile(SPEC_EXAMPLE)
    expect(resources.map((r) => `${r.kind}/${r.name}`)).toEqual([
      'Proxy/web',
      'Service/orders',
      'HTTPRoute/orders-canary',
      'AuthorizationPolicy/orders-from-web',
      'Service/orders-v1',
      'Service/orders-v2',
      'Service/postgres',
    ])
    expect(warnings).toEqual(SPEC_EXAMPLE_WARNINGS.map((w) => `${SPEC_EXAMPLE}: ${w}`))
  })

  it('is normalised with every default applied', () => {
    const { resources } = loadResourcesFromFileSync(SPEC_EXAMPLE)
    const proxy = resources[0] as ProxyResource
    expect(proxy).toEqual({
      apiVersion: 'mesh/v1',
      kind: 'Proxy',
      name: 'web',
      namespace: 'default',
      inbound: [{ port: 4143, address: '0.0.0.0', forwardTo: '127.0.0.1:8080', protocol: 'auto', mtls: 'permissive' }],
      outbound: { listen: '127.0.0.1:4140', passthrough: true, tcp: [{ listen: '127.0.0.1:15432', service: 'postgres', namespace: 'default' }] },
      admin: { listen: '127.0.0.1:4191' },
      workerThreads: 1,
      drainTimeout: '10s',
      detectTimeout: '1s',
      connectTimeout: '1s',
      poolIdleTimeout: '90s',
    })
    const orders = resources[1] as ServiceResource
    expect(orders.loadBalancer).toEqual({ type: 'ewma' })
    expect(orders.endpoints).toEqual([{ address: '127.0.0.1:18080', weight: 1, labels: { version: 'v1' } }])
    expect(orders.healthCheck).toEqual({ path: '/healthz', interval: '5s', timeout: '1s', unhealthyThreshold: 3, healthyThreshold: 2 })

    const route = resources[2] as HTTPRouteResource
    expect(route.parentRefs).toEqual([{ kind: 'Service', name: 'orders', namespace: 'default' }])
    const rule = route.rules[0]
    expect(rule?.matches).toEqual([
      { path: { type: 'PathPrefix', value: '/api' }, headers: [{ name: 'x-canary', value: '1', type: 'Exact' }], method: 'GET' },
    ])
    expect(rule?.backendRefs).toEqual([
      { kind: 'Service', name: 'orders-v2', namespace: 'default', weight: 10 },
      { kind: 'Service', name: 'orders-v1', namespace: 'default', weight: 90 },
    ])
    expect(rule?.retry).toEqual({
      attempts: 3,
      codes: [502, 503, 504],
      backoff: '25ms',
      budget: 20,
      minRetriesPerSecond: 10,
      budgetWindow: '10s',
      maxRequestBytes: 65536,
      nonIdempotent: false,
    })
    expect(rule?.faults).toEqual({ delay: { percent: 10, fixed: '100ms' }, abort: { percent: 5, status: 503 } })
    expect(rule?.rateLimit).toEqual({ requestsPerSecond: 100, burst: 50 })
  })

  it('names the file by the path the caller gave, in errors too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-config-'))
    try {
      const file = join(dir, 'bad.yaml')
      writeFileSync(file, 'apiVersion: mesh/v1\nkind: Proxy\nname: Web\n')
      await expect(loadResourcesFromFile(file)).rejects.toThrow(`${file}: document 1 (Proxy "Web"): name: expected a DNS label`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('error reporting', () => {
  it('gives the spec example message exactly', () => {
    const text = [
      'apiVersion: mesh/v1',
      'kind: Proxy',
      'name: web',
      'outbound: { listen: 127.0.0.1:4140 }',
      '---',
      'apiVersion: mesh/v1',
      'kind: Service',
      'name: orders',
      'endpoints:',
      '  - address: localhost',
    ].join('\n')
    const err = (() => {
      try {
        load(text)
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).errors).toEqual(['mesh.yaml: document 2 (Service "orders"): endpoints[0].address: expected HOST:PORT, got "localhost"'])
    expect((err as ConfigError).message).toBe('mesh.yaml: document 2 (Service "orders"): endpoints[0].address: expected HOST:PORT, got "localhost"')
  })

  it('collects every problem of every document, and says how many more in the message', () => {
    const text = [
      'apiVersion: mesh/v1',
      'kind: Proxy',
      'name: web',
      'inbound:',
      '  - port: 4143',
      '    forwardTo: localhost:8080',
      '    protocl: http1',
      'workerThreads: 0',
      '---',
      'apiVersion: mesh/v1',
      'kind: Service',
      'name: orders',
      'endpoints: [ { address: 127.0.0.1:1, weight: "2" } ]',
      'loadBalancer: round-robin',
    ].join('\n')
    let caught: unknown
    try {
      load(text)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(ConfigError)
    const error = caught as ConfigError
    expect(error.errors).toEqual([
      'mesh.yaml: document 1 (Proxy "web"): inbound[0].forwardTo: expected HOST:PORT with an IP address, got "localhost:8080"',
      'mesh.yaml: document 1 (Proxy "web"): inbound[0].protocl: unknown field (did you mean "protocol"?)',
      'mesh.yaml: document 1 (Proxy "web"): workerThreads: expected an integer from 1 to 1024, got the number 0',
      'mesh.yaml: document 2 (Service "orders"): endpoints[0].weight: expected an integer from 1 to 1000000, got "2"',
      'mesh.yaml: document 2 (Service "orders"): loadBalancer: expected one of ewma, round_robin, least_request, random, ring_hash; got "round-robin" (did you mean "round_robin"?)',
    ])
    expect(error.message).toBe(`${error.errors[0]} (and 4 more)`)
    expect(error.name).toBe('ConfigError')
  })

  it('reports YAML syntax errors with file, line and column', () => {
    const errors = configErrors(() => load('apiVersion: mesh/v1\nkind: Proxy\nname: web\n---\nkind: Service\nname: a: b\n'))
    expect(errors).toEqual(['mesh.yaml:6:7: YAML syntax error: Nested mappings are not allowed in compact mappings'])
  })

  it('reports a duplicate YAML key as a syntax error on its line', () => {
    const errors = configErrors(() => load('apiVersion: mesh/v1\nkind: Proxy\nname: web\nname: other\n'))
    expect(errors).toEqual(['mesh.yaml:4:1: YAML syntax error: Map keys must be unique'])
  })

  it('reports an alias to an unknown anchor on its line', () => {
    const errors = configErrors(() => load('apiVersion: mesh/v1\nkind: Proxy\nname: web\ninbound: *ports\n'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^mesh\.yaml:4:10: YAML error: Unresolved alias/)
  })

  it('rejects a file that is not a resource', () => {
    expect(configErrors(() => load('just a string\n'))).toEqual([
      'mesh.yaml: document 1: expected a resource (a mapping with apiVersion, kind and name), got "just a string"',
      'mesh.yaml: no Proxy resource (standalone mode needs exactly one, with the ports this proxy listens on)',
    ])
  })

  it('rejects an empty file in standalone mode and accepts it when the Proxy is optional', () => {
    expect(configErrors(() => load('# nothing here\n'))).toEqual([
      'mesh.yaml: no Proxy resource (standalone mode needs exactly one, with the ports this proxy listens on)',
    ])
    expect(load('', { requireProxy: false })).toEqual({ resources: [], warnings: [] })
  })

  it('reports unreadable files in one line', async () => {
    await expect(loadResourcesFromFile('/nonexistent/mesh.yaml')).rejects.toThrow(
      /^\/nonexistent\/mesh\.yaml: cannot read config file: no such file$/,
    )
    expect(() => loadResourcesFromFileSync(FIXTURES)).toThrow(`${FIXTURES}: cannot read config file: is a directory, expected a file`)
  })
})

describe('document handling', () => {
  const proxyYaml = 'apiVersion: mesh/v1\nkind: Proxy\nname: web\n'

  it('numbers documents by position, counting empty ones', () => {
    const errors = configErrors(() => load(`${proxyYaml}---\n---\napiVersion: mesh/v1\nkind: Service\nname: Orders\n`))
    expect(errors).toEqual([
      'mesh.yaml: document 3 (Service "Orders"): name: expected a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters), got "Orders"',
    ])
  })

  it('accepts a leading document marker and a trailing one', () => {
    const { resources } = load(`---\n${proxyYaml}---\n`)
    expect(resources).toHaveLength(1)
  })

  it('reads JSON: one object, or a list of resources', () => {
    const proxy = { apiVersion: 'mesh/v1', kind: 'Proxy', name: 'web', outbound: { listen: '127.0.0.1:4140' } }
    const service = { apiVersion: 'mesh/v1', kind: 'Service', name: 'orders', endpoints: [{ address: '127.0.0.1:18080' }] }
    expect(load(JSON.stringify(proxy, null, '\t')).resources.map((r) => r.kind)).toEqual(['Proxy'])
    const list = load(JSON.stringify([proxy, service], null, 2))
    expect(list.resources.map((r) => r.name)).toEqual(['web', 'orders'])
    const bad = configErrors(() => load(JSON.stringify([proxy, { ...service, port: '80' }], null, 2)))
    expect(bad).toEqual(['mesh.yaml: document 2 (Service "orders"): port: expected an integer from 1 to 65535, got "80"'])
  })

  it('reports JSON syntax errors with their line', () => {
    const errors = configErrors(() => load('{\n  "apiVersion": "mesh/v1",\n  "kind": "Proxy"\n  "name": "web"\n}\n'))
    expect(errors.length).toBeGreaterThan(0)
    expect(errors[0]).toMatch(/^mesh\.yaml:4:\d+: YAML syntax error: /)
  })

  it('loads the JSON fixture the same as its YAML twin', async () => {
    const fromJson = await loadResourcesFromFile(join(FIXTURES, 'minimal.json'))
    const fromYaml = await loadResourcesFromFile(join(FIXTURES, 'minimal.yaml'))
    expect(fromJson.resources).toEqual(fromYaml.resources)
    expect(fromJson.resources.map((r) => r.kind)).toEqual(['Proxy', 'Service'])
  })

  it('supports anchors and merge keys within a document', () => {
    const text = [
      proxyYaml,
      'outbound: { listen: 127.0.0.1:4140 }',
      '---',
      'apiVersion: mesh/v1',
      'kind: Service',
      'name: orders',
      'endpoints:',
      '  - &first { address: 127.0.0.1:1, weight: 2, labels: { app: orders } }',
      '  - { <<: *first, address: 127.0.0.1:2 }',
    ].join('\n')
    const service = load(text).resources[1] as ServiceResource
    expect(service.endpoints).toEqual([
      { address: '127.0.0.1:1', weight: 2, labels: { app: 'orders' } },
      { address: '127.0.0.1:2', weight: 2, labels: { app: 'orders' } },
    ])
  })

  it('does not carry anchors across documents (YAML semantics), and says where', () => {
    const text = `${proxyYaml}labels: &l { a: b }\n---\napiVersion: mesh/v1\nkind: Service\nname: a\nendpoints: *l\n`
    expect(configErrors(() => load(text))).toEqual([
      'mesh.yaml:9:12: YAML error: Unresolved alias (the anchor must be set before the alias): l',
    ])
  })

  it('refuses alias explosions', () => {
    const text = [
      proxyYaml,
      'x1: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]',
      'x2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'x3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'x4: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n')
    const errors = configErrors(() => load(text))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^mesh\.yaml:\d+:\d+: YAML error: Excessive alias count/)
  })
})
