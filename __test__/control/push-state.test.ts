/**
 * How pushes change what a proxy holds (full replace, delta against the last ACKed
 * state, removals) and how the held state becomes validator input, then config with the
 * local Proxy.
 */
import { describe, expect, it } from 'vitest'

import { ConfigError } from '../../src/config/index.js'
import { decodeResources, EMPTY_HELD, keyOf, mergePush } from '../../src/control/push-state.js'
import type { Resource__Output, WatchResponse__Output } from '../../src/control/proto.js'
import { defaultLocalProxy, loadLocalProxy, prepareLocalOnly, preparePushed } from '../../src/proxy/connected-config.js'
import { envelope } from '../support/fake-control-plane.js'
import { httpRouteDoc, serviceDoc, type Doc } from '../support/resources.js'

function push(resources: Doc[], opts: { full?: boolean; removed?: { kind: string; name: string }[]; version?: string } = {}): WatchResponse__Output {
  return {
    version: opts.version ?? '1',
    nonce: 'n',
    full: opts.full ?? true,
    resources: resources.map((d) => envelope(d) as Resource__Output),
    removed: (opts.removed ?? []).map((r) => ({ kind: r.kind, namespace: 'default', name: r.name })),
    authorityId: '',
  }
}

function names(held: ReadonlyMap<string, unknown>): string[] {
  return [...held.keys()]
}

function errorsOf(fn: () => unknown): readonly string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err.errors
    throw err
  }
  throw new Error('expected a ConfigError')
}

const orders = serviceDoc('orders', [9001])
const payments = serviceDoc('payments', [9002])
const route = httpRouteDoc('split', 'orders', [{ backendRefs: [{ name: 'payments' }] }])

describe('mergePush', () => {
  it('a full push replaces everything, in key order', () => {
    const first = mergePush(EMPTY_HELD, push([payments, orders]))
    expect(names(first)).toEqual(['Service/default/orders', 'Service/default/payments'])
    const second = mergePush(first, push([route, orders]))
    expect(names(second)).toEqual(['HTTPRoute/default/split', 'Service/default/orders'])
  })

  it('a delta replaces listed resources whole and drops removed keys', () => {
    const held = mergePush(EMPTY_HELD, push([orders, payments]))
    const moved = serviceDoc('orders', [9009])
    const next = mergePush(held, push([moved, route], { full: false, removed: [{ kind: 'Service', name: 'payments' }] }))
    expect(names(next)).toEqual(['HTTPRoute/default/split', 'Service/default/orders'])
    expect(JSON.parse(next.get('Service/default/orders')?.json ?? '')).toMatchObject({ endpoints: [{ address: '127.0.0.1:9009' }] })
    // The held state itself is untouched (a NACKed candidate must leave nothing behind).
    expect(names(held)).toEqual(['Service/default/orders', 'Service/default/payments'])
  })

  it('an empty delta confirms the held state', () => {
    const held = mergePush(EMPTY_HELD, push([orders]))
    expect(names(mergePush(held, push([], { full: false })))).toEqual(['Service/default/orders'])
  })

  it('removing a key that is not held is harmless', () => {
    const held = mergePush(EMPTY_HELD, push([orders]))
    expect(names(mergePush(held, push([], { full: false, removed: [{ kind: 'Service', name: 'ghost' }] })))).toEqual([
      'Service/default/orders',
    ])
  })

  it('refuses pushes that break the stream rules, naming each problem', () => {
    expect(errorsOf(() => mergePush(EMPTY_HELD, push([orders, orders], { version: '4' })))).toEqual([
      'control-plane: Service "default/orders" is listed twice in push version 4',
    ])
    expect(errorsOf(() => mergePush(EMPTY_HELD, push([orders], { full: false, removed: [{ kind: 'Service', name: 'orders' }], version: '5' })))).toEqual([
      'control-plane: Service "default/orders" is both listed and removed in push version 5',
    ])
    expect(errorsOf(() => mergePush(EMPTY_HELD, push([orders], { removed: [{ kind: 'Service', name: 'x' }], version: '6' })))).toEqual([
      'control-plane: push version 6 is full but also lists 1 removed key(s)',
    ])
  })

  it('keys compare byte for byte', () => {
    expect(keyOf({ kind: 'Service', namespace: 'default', name: 'a' })).not.toBe(keyOf({ kind: 'service', namespace: 'default', name: 'a' }))
  })
})

describe('decodeResources', () => {
  it('numbers documents 1..N in key order', () => {
    const docs = decodeResources(mergePush(EMPTY_HELD, push([route, orders])))
    expect(docs.map((d) => d.number)).toEqual([1, 2])
    expect(docs.map((d) => (d.value as Doc).kind)).toEqual(['HTTPRoute', 'Service'])
  })

  it('refuses bodies that are not JSON, disagree with their envelope, or are a Proxy', () => {
    const held = new Map([
      ['Proxy/default/p', { kind: 'Proxy', namespace: 'default', name: 'p', resourceVersion: '1', json: '{}' }],
      ['Service/default/a', { kind: 'Service', namespace: 'default', name: 'a', resourceVersion: '1', json: '{"kind":' }],
      ['Service/default/b', { ...(envelope(serviceDoc('c', [1])) as Resource__Output), name: 'b' }],
    ])
    const errors = errorsOf(() => decodeResources(held))
    expect(errors).toHaveLength(3)
    expect(errors[0]).toBe('control-plane: document 1 (Proxy "default/p"): a push cannot carry a Proxy; each proxy\'s Proxy resource is local')
    expect(errors[1]).toMatch(/^control-plane: document 2 \(Service "default\/a"\): body is not valid JSON: /)
    expect(errors[2]).toBe('control-plane: document 3 (Service "default/b"): body is "Service" "default/c", not what its envelope says')
  })
})

describe('connected config: local Proxy + pushed resources', () => {
  const identity = { name: 'web', namespace: 'default' }
  const local = (docs: Doc[]) => loadLocalProxy({ kind: 'resources', resources: docs, label: 'proxy.yaml' }, identity)
  const proxyDoc = (extra: Doc = {}): Doc => ({
    apiVersion: 'mesh/v1',
    kind: 'Proxy',
    name: 'web',
    outbound: { listen: '127.0.0.1:0' },
    admin: { listen: '127.0.0.1:0' },
    ...extra,
  })

  it('validates pushed resources with the standalone validator, labelled control-plane', async () => {
    const bad = httpRouteDoc('r', 'orders', [{ backendRefs: [{ name: 'nope' }] }])
    const docs = decodeResources(mergePush(EMPTY_HELD, push([bad, orders])))
    const errors = errorsOf(() => preparePushed(defaultLocalProxy(identity), docs, 'control-plane 127.0.0.1:7443'))
    expect(errors).toEqual(['control-plane: document 1 (HTTPRoute "r"): rules[0].backendRefs[0].name: unknown Service "default/nope"'])
    const error = new ConfigError(errors)
    expect(error.message).not.toContain('\n')
  })

  it('compiles the Proxy and the pushed Services together', async () => {
    const docs = decodeResources(mergePush(EMPTY_HELD, push([orders, payments, route])))
    const prepared = preparePushed(await local([proxyDoc()]), docs, 'control-plane 127.0.0.1:7443')
    expect(prepared.label).toBe('control-plane')
    expect(prepared.source).toBe('control-plane 127.0.0.1:7443')
    expect(prepared.compiled.services.map((s) => s.name)).toEqual(['orders', 'payments'])
    expect(prepared.compiled.httpRoutes.map((r) => r.name)).toEqual(['split'])
    expect(prepared.compiled.outbound?.listen).toBe('127.0.0.1:0')
  })

  it('names the local file for problems of the Proxy (a tcp port to a Service not pushed)', async () => {
    const proxy = await local([proxyDoc({ outbound: { listen: '127.0.0.1:0', tcp: [{ listen: '127.0.0.1:0', service: 'db' }] } })])
    const errors = errorsOf(() => preparePushed(proxy, decodeResources(mergePush(EMPTY_HELD, push([orders]))), 'cp'))
    expect(errors).toEqual(['proxy.yaml: document 1 (Proxy "web"): outbound.tcp[0].service: unknown Service "default/db"'])
  })

  it('before the first push, tcp ports bind to stand-in Services with no endpoints', async () => {
    const proxy = await local([proxyDoc({ outbound: { listen: '127.0.0.1:0', tcp: [{ listen: '127.0.0.1:0', service: 'db' }] } })])
    const prepared = prepareLocalOnly(proxy, 'cp')
    expect(prepared.resources.map((r) => r.kind)).toEqual(['Proxy'])
    expect(prepared.compiled.tcpOutbound).toEqual([{ listen: '127.0.0.1:0', service: 'default/db' }])
    expect(prepared.compiled.services).toEqual([expect.objectContaining({ name: 'db', endpoints: [], protocol: 'tcp' })])
  })

  it('the local file may hold only the Proxy, named as the workload', async () => {
    await expect(local([proxyDoc(), orders])).rejects.toThrow(
      'proxy.yaml: document 2 (Service "orders"): connected mode takes only the Proxy resource from this file; Service resources come from the control plane (meshctl apply)',
    )
    await expect(local([proxyDoc({ name: 'api' })])).rejects.toThrow(
      'proxy.yaml: document 1 (Proxy "api"): name: expected "web", the service this proxy joins the mesh as (--name), got "api"',
    )
    await expect(local([proxyDoc({ namespace: 'shop' })])).rejects.toThrow(
      'proxy.yaml: document 1 (Proxy "web"): namespace: expected "default", the namespace this proxy joins the mesh in (--namespace), got "shop"',
    )
    await expect(local([])).rejects.toThrow(/^proxy\.yaml: no Proxy resource/)
    await expect(local([proxyDoc({ workerThreads: 0 })])).rejects.toThrow(/^proxy\.yaml: document 1 \(Proxy "web"\): workerThreads: /)
  })

  it('the default Proxy: outbound 127.0.0.1:4140, admin 127.0.0.1:4191, no inbound', () => {
    const proxy = defaultLocalProxy({ name: 'web', namespace: 'shop' }).proxy
    expect(proxy).toMatchObject({ name: 'web', namespace: 'shop', inbound: [], outbound: { listen: '127.0.0.1:4140' }, admin: { listen: '127.0.0.1:4191' } })
  })
})
