/** meshctl's output: tables, apply lines, check lines, and YAML that applies back. */
import { describe, expect, it } from 'vitest'

import { loadResourcesFromText, parseDocuments, validateResources } from '../../src/config/index.js'
import type { ApplyResponse__Output, ProxyStatus__Output, Resource__Output, StatusResponse__Output } from '../../src/control/proto.js'
import {
  applyView,
  decodeResource,
  renderApplyLines,
  renderChecks,
  renderResourceTables,
  renderTable,
  renderYamlDocuments,
  statusChecks,
  statusView,
} from '../../src/cli/meshctl/format.js'

const FILE = `apiVersion: mesh/v1
kind: Service
name: orders
port: 80
endpoints:
  - address: 127.0.0.1:18080
  - address: 127.0.0.1:18081
    weight: 3
    labels: { version: v2 }
---
apiVersion: mesh/v1
kind: Service
name: payments
namespace: shop
port: 9090
protocol: grpc
loadBalancer: round_robin
---
apiVersion: mesh/v1
kind: HTTPRoute
name: orders-canary
parentRefs: [ { name: orders } ]
rules:
  - matches: [ { path: { type: PathPrefix, value: /api } } ]
    backendRefs: [ { name: orders, weight: 90 }, { name: payments, namespace: shop, weight: 10 } ]
  - matches: []
---
apiVersion: mesh/v1
kind: AuthorizationPolicy
name: orders-from-web
targetRef: { kind: Service, name: orders }
action: deny
rules:
  - from: [ { identity: "spiffe://mesh.local/ns/default/sa/web" } ]
`

/** What mesh-control's Get sends: normalised resources as JSON, with their versions. */
function stored(text: string): Resource__Output[] {
  const { resources } = loadResourcesFromText(text, 'mesh.yaml', { requireProxy: false })
  return resources.map((resource, index) => ({
    kind: resource.kind,
    namespace: resource.namespace,
    name: resource.name,
    resourceVersion: String(index + 3),
    json: JSON.stringify(resource),
  }))
}

function proxy(overrides: Partial<ProxyStatus__Output>): ProxyStatus__Output {
  return {
    proxyId: 'orders-1',
    service: 'orders',
    namespace: 'default',
    buildVersion: '0.1.0',
    peerAddress: '127.0.0.1:50000',
    connectedAt: { seconds: '1795000000', nanos: 0 },
    pushedVersion: '7',
    ackedVersion: '7',
    lastReply: 'REPLY_STATE_ACK',
    lastReplyAt: { seconds: '1795000001', nanos: 500_000_000 },
    error: '',
    inSync: true,
    resourceCount: 3,
    authorityId: '',
    ...overrides,
  }
}

function status(overrides: Partial<StatusResponse__Output> = {}): StatusResponse__Output {
  return {
    serverVersion: '0.1.0',
    startedAt: { seconds: '1795000000', nanos: 0 },
    version: '12',
    store: { type: 'file', writable: true, error: '', location: '/var/lib/mesh' },
    ca: null,
    proxies: [],
    ...overrides,
  }
}

describe('tables', () => {
  it('pads columns three spaces apart and leaves the last one unpadded', () => {
    expect(renderTable(['NAME', 'PORT', 'X'], [['a', '80', ''], ['longer-name', '8080', 'y']])).toBe(
      'NAME          PORT   X\n' + 'a             80\n' + 'longer-name   8080   y\n',
    )
  })

  it('shows each kind with its own columns', () => {
    const resources = stored(FILE).map(decodeResource)
    const services = renderResourceTables(resources.filter((r) => r.kind === 'Service'), false)
    expect(services).toBe(
      [
        'NAMESPACE   NAME       PORT   PROTOCOL   ENDPOINTS                         LB            VERSION',
        'default     orders     80     http       127.0.0.1:18080,127.0.0.1:18081   ewma          3',
        'shop        payments   9090   grpc       <none>                            round_robin   4',
        '',
      ].join('\n'),
    )
    const routes = renderResourceTables(resources.filter((r) => r.kind === 'HTTPRoute'), false)
    expect(routes).toBe(
      ['NAMESPACE   NAME            PARENTS   RULES   BACKENDS               VERSION', 'default     orders-canary   orders    2       orders,shop/payments   5', ''].join(
        '\n',
      ),
    )
    const policies = renderResourceTables(resources.filter((r) => r.kind === 'AuthorizationPolicy'), false)
    expect(policies).toBe(
      ['NAMESPACE   NAME              TARGET   ACTION   RULES   VERSION', 'default     orders-from-web   orders   deny     1       6', ''].join('\n'),
    )
  })

  it('qualifies names with their kind and separates kinds when listing all', () => {
    const text = renderResourceTables(stored(FILE).map(decodeResource), true)
    const blocks = text.split('\n\n')
    expect(blocks).toHaveLength(3)
    expect(blocks[0]).toMatch(/^NAMESPACE +NAME +PORT/)
    expect(text).toContain('service/orders ')
    expect(text).toContain('httproute/orders-canary ')
    expect(text).toContain('authorizationpolicy/orders-from-web ')
  })

  it('cuts long endpoint lists short', () => {
    const endpoints = [1, 2, 3, 4, 5].map((n) => `  - address: 127.0.0.1:1000${n}`).join('\n')
    const [service] = stored(`kind: Service\napiVersion: mesh/v1\nname: many\nendpoints:\n${endpoints}\n`).map(decodeResource)
    expect(renderResourceTables([service!], false)).toContain('127.0.0.1:10001,127.0.0.1:10002,127.0.0.1:10003 +2 more')
  })
})

describe('YAML output', () => {
  it('is a document stream that validates back to the same resources', () => {
    const original = loadResourcesFromText(FILE, 'mesh.yaml', { requireProxy: false }).resources
    const yaml = renderYamlDocuments(stored(FILE).map((r) => decodeResource(r).document))
    const documents = parseDocuments(yaml, 'out.yaml')
    expect(documents.map((d) => d.number)).toEqual([1, 2, 3, 4])
    expect(validateResources(documents.map((d) => d.value), { requireProxy: false }).resources).toEqual(original)
  })
})

describe('apply lines', () => {
  it('says created, configured or unchanged per resource, kubectl style', () => {
    const response: ApplyResponse__Output = {
      version: '9',
      errors: [],
      warnings: [],
      results: [
        { key: { kind: 'Service', namespace: 'default', name: 'orders' }, action: 'APPLY_ACTION_CREATED', resourceVersion: '9' },
        { key: { kind: 'HTTPRoute', namespace: 'default', name: 'orders-canary' }, action: 'APPLY_ACTION_CONFIGURED', resourceVersion: '9' },
        { key: { kind: 'Service', namespace: 'shop', name: 'payments' }, action: 'APPLY_ACTION_UNCHANGED', resourceVersion: '4' },
      ],
    }
    expect(renderApplyLines(response)).toBe(
      'service/orders created\nhttproute/orders-canary configured\nservice/payments (namespace shop) unchanged\n',
    )
    expect(applyView(response)).toEqual({
      version: '9',
      warnings: [],
      results: [
        { kind: 'Service', namespace: 'default', name: 'orders', action: 'created', resourceVersion: '9' },
        { kind: 'HTTPRoute', namespace: 'default', name: 'orders-canary', action: 'configured', resourceVersion: '9' },
        { kind: 'Service', namespace: 'shop', name: 'payments', action: 'unchanged', resourceVersion: '4' },
      ],
    })
  })
})

describe('check', () => {
  it('passes a healthy control plane with no proxies', () => {
    const checks = statusChecks(status(), '127.0.0.1:7443')
    expect(checks.every((c) => c.ok)).toBe(true)
    expect(renderChecks(checks)).toBe(
      [
        'ok    control plane reachable: 127.0.0.1:7443 (mesh-control 0.1.0, store version 12)',
        'ok    store writable: file /var/lib/mesh',
        'ok    certificate authority: not reported by this mesh-control version',
        'ok    proxies connected: 0',
        'ok    proxies in sync: no proxies connected',
        '',
      ].join('\n'),
    )
  })

  it('lists each proxy out of sync with its versions and NACK error verbatim', () => {
    const nackError = 'mesh-control: document 2 (HTTPRoute "orders-canary"): rules[0].timeouts.request: expected a duration, got "soon"'
    const checks = statusChecks(
      status({
        proxies: [
          proxy({ proxyId: 'orders-1' }),
          proxy({ proxyId: 'orders-2', ackedVersion: '5', pushedVersion: '7', lastReply: 'REPLY_STATE_NACK', error: nackError, inSync: false }),
          proxy({ proxyId: 'web-1', service: 'web', namespace: 'shop', ackedVersion: '5', pushedVersion: '8', lastReply: 'REPLY_STATE_PENDING', inSync: false }),
        ],
      }),
      '127.0.0.1:7443',
    )
    expect(checks.map((c) => c.ok)).toEqual([true, true, true, true, false])
    const text = renderChecks(checks)
    expect(text).toContain('ok    proxies connected: 3\n')
    expect(text).toContain(
      'FAIL  proxies in sync: 2 of 3 not in sync\n' +
        `        default/orders (proxy orders-2): acked version 5, pushed version 7: NACK: ${nackError}\n` +
        '        shop/web (proxy web-1): acked version 5, pushed version 8: waiting for its reply\n',
    )
  })

  it('fails an unwritable store and an invalid CA, and passes a valid CA', () => {
    const ca = {
      valid: true,
      notBefore: { seconds: '1500000000', nanos: 0 },
      notAfter: { seconds: '1800000000', nanos: 0 },
      trustDomain: 'mesh.local',
      error: '',
      trustBundleRoots: 1,
      subject: 'O=mesh-core, CN=mesh.local root CA 4a1b2c3d',
      certificateTtl: { seconds: '86400', nanos: 0 },
      source: '/var/lib/mesh/ca/ca.crt',
      authorityId: '',
    }
    const bad = statusChecks(
      status({
        store: { type: 'file', writable: false, error: 'EACCES (permission denied)', location: '/var/lib/mesh' },
        ca: { ...ca, valid: false, error: 'the CA certificate expired at 2026-01-01T00:00:00Z' },
      }),
      'cp:7443',
    )
    expect(renderChecks(bad)).toContain('FAIL  store writable: file /var/lib/mesh: EACCES (permission denied)\n')
    expect(renderChecks(bad)).toContain(
      'FAIL  certificate authority: trust domain mesh.local: the CA certificate expired at 2026-01-01T00:00:00Z\n',
    )
    const good = statusChecks(status({ ca }), 'cp:7443')
    expect(renderChecks(good)).toContain(
      'ok    certificate authority: trust domain mesh.local, valid until 2027-01-15T08:00:00.000Z, 1 root in the trust bundle, certificates live 24h\n',
    )
    const rotating = statusChecks(status({ ca: { ...ca, trustBundleRoots: 2, certificateTtl: { seconds: '300', nanos: 0 } } }), 'cp:7443')
    expect(renderChecks(rotating)).toContain('2 roots in the trust bundle, certificates live 5m\n')
  })

  it('shows the CA\'s authority id and counts the proxies whose certificate is under it', () => {
    const current = '3fa9c2e1b7d0' + 'a'.repeat(52)
    const previous = '0a1b2c3d4e5f' + 'b'.repeat(52)
    const ca = {
      valid: true,
      notBefore: { seconds: '1500000000', nanos: 0 },
      notAfter: { seconds: '1800000000', nanos: 0 },
      trustDomain: 'mesh.local',
      error: '',
      trustBundleRoots: 2,
      subject: 'O=mesh-core, CN=mesh.local root CA 4a1b2c3d',
      certificateTtl: { seconds: '86400', nanos: 0 },
      source: '/var/lib/mesh/ca/ca.crt',
      authorityId: current,
    }
    const rotating = renderChecks(
      statusChecks(
        status({
          ca,
          proxies: [
            proxy({ proxyId: 'orders-1', authorityId: current }),
            proxy({ proxyId: 'orders-2', authorityId: previous }),
            proxy({ service: 'web', proxyId: 'web-1', authorityId: '' }),
          ],
        }),
        'cp:7443',
      ),
    )
    expect(rotating).toContain('2 roots in the trust bundle, certificates live 24h, authority 3fa9c2e1b7d0\n')
    expect(rotating).toContain(
      'FAIL  proxy certificates: 1 of 3 under authority 3fa9c2e1b7d0\n' +
        '        default/orders (proxy orders-2): under authority 0a1b2c3d4e5f\n' +
        '        default/web (proxy web-1): no certificate yet\n',
    )
    const done = renderChecks(statusChecks(status({ ca, proxies: [proxy({ authorityId: current })] }), 'cp:7443'))
    expect(done).toContain('ok    proxy certificates: 1 of 1 under authority 3fa9c2e1b7d0\n')
    expect(renderChecks(statusChecks(status({ ca }), 'cp:7443'))).not.toContain('proxy certificates')
    // A server that reports no authority id (an older one) gets no such check.
    expect(renderChecks(statusChecks(status({ ca: { ...ca, authorityId: '' }, proxies: [proxy({})] }), 'cp:7443'))).not.toContain('proxy certificates')
  })

  it('prints the status with readable times for -o json', () => {
    const view = statusView(status({ proxies: [proxy({})] })) as { startedAt: string; proxies: { lastReply: string; lastReplyAt: string }[] }
    expect(view.startedAt).toBe('2026-11-18T11:06:40.000Z')
    expect(view.proxies[0]).toMatchObject({ lastReply: 'ack', lastReplyAt: '2026-11-18T11:06:41.500Z', pushedVersion: '7' })
  })
})
