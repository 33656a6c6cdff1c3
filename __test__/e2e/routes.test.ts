/**
 * HTTPRoute matching (path Exact / PathPrefix / RegularExpression, headers, method,
 * Gateway API precedence) and weighted backendRefs, checked by which app answered
 * and by the proxy's own metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, keepAliveAgent, runConcurrently, seen } from '../support/http.js'
import { sum } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { httpRouteDoc, proxyDoc, serviceDoc } from '../support/resources.js'

let shopMain: HttpApp
let shopV2: HttpApp
let checkoutMain: HttpApp
let splitA: HttpApp
let splitB: HttpApp
let proxy: ProxyProcess
let outboundPort: number
const agent = keepAliveAgent(16)

const prefix = (value: string) => ({ path: { type: 'PathPrefix', value } })
const exact = (value: string) => ({ path: { type: 'Exact', value } })
const regex = (value: string) => ({ path: { type: 'RegularExpression', value } })

beforeAll(async () => {
  ;[shopMain, shopV2, checkoutMain, splitA, splitB] = await Promise.all(
    ['shop-main', 'shop-v2', 'checkout-main', 'split-a', 'split-b'].map((name) => startHttpApp({ name })),
  ) as [HttpApp, HttpApp, HttpApp, HttpApp, HttpApp]
  const [adminPort, outbound] = await freePorts(2)
  outboundPort = outbound!
  proxy = await ProxyProcess.start(
    [
      proxyDoc({ adminPort: adminPort!, outboundPort }),
      serviceDoc('shop', [shopMain.port]),
      serviceDoc('shop-v2', [shopV2.port]),
      serviceDoc('checkout', [checkoutMain.port]),
      serviceDoc('split-a', [splitA.port]),
      serviceDoc('split-b', [splitB.port]),
      httpRouteDoc('shop-rules', 'shop', [
        { matches: [exact('/exact')], backendRefs: [{ name: 'shop-v2' }] },
        { matches: [prefix('/api')], backendRefs: [{ name: 'shop-v2' }] },
        { matches: [regex('/items/[0-9]+')], backendRefs: [{ name: 'shop-v2' }] },
        { matches: [{ ...prefix('/hdr'), headers: [{ name: 'x-canary', value: '1' }] }], backendRefs: [{ name: 'shop-v2' }] },
        {
          matches: [{ ...prefix('/vip'), headers: [{ type: 'RegularExpression', name: 'x-user', value: 'vip-[0-9]+' }] }],
          backendRefs: [{ name: 'shop-v2' }],
        },
        { matches: [{ ...prefix('/m'), method: 'DELETE' }], backendRefs: [{ name: 'shop-v2' }] },
        { matches: [exact('/or-a'), exact('/or-b')], backendRefs: [{ name: 'shop-v2' }] },
      ]),
      // Listed least specific first: precedence must not depend on rule order.
      httpRouteDoc('shop-precedence', 'shop', [
        { matches: [prefix('/p')], backendRefs: [{ name: 'shop-v2' }] },
        { matches: [prefix('/p/deeper')], backendRefs: [{ name: 'shop' }] },
        { matches: [exact('/p/exact')], backendRefs: [{ name: 'shop' }] },
      ]),
      httpRouteDoc('checkout-split', 'checkout', [
        { backendRefs: [{ name: 'split-a', weight: 90 }, { name: 'split-b', weight: 10 }] },
      ]),
    ],
    adminPort!,
  )
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await Promise.all([shopMain, shopV2, checkoutMain, splitA, splitB].map((a) => a?.close()))
  expect(exit?.code).toBe(0)
})

async function servedBy(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<string> {
  const reply = await h1({ port: outboundPort, host: 'shop', path, agent, ...opts })
  expect(reply.status, `${opts.method ?? 'GET'} ${path}`).toBe(200)
  return seen(reply).instance
}

describe('HTTPRoute matches', () => {
  it.each([
    ['/exact', 'shop-v2'],
    ['/exact?q=1', 'shop-v2'],
    ['/exact/', 'shop-main'],
    ['/exactly', 'shop-main'],
  ])('path Exact: %s -> %s', async (path, expected) => {
    expect(await servedBy(path)).toBe(expected)
  })

  it.each([
    ['/api', 'shop-v2'],
    ['/api/', 'shop-v2'],
    ['/api/orders/7', 'shop-v2'],
    ['/apix', 'shop-main'],
    ['/', 'shop-main'],
  ])('path PathPrefix (element-wise): %s -> %s', async (path, expected) => {
    expect(await servedBy(path)).toBe(expected)
  })

  it.each([
    ['/items/42', 'shop-v2'],
    ['/items/abc', 'shop-main'],
    ['/items/42/more', 'shop-main'],
    ['/x/items/42', 'shop-main'],
  ])('path RegularExpression matches the whole path: %s -> %s', async (path, expected) => {
    expect(await servedBy(path)).toBe(expected)
  })

  it('header exact match', async () => {
    expect(await servedBy('/hdr', { headers: { 'x-canary': '1' } })).toBe('shop-v2')
    expect(await servedBy('/hdr', { headers: { 'X-Canary': '1' } })).toBe('shop-v2')
    expect(await servedBy('/hdr', { headers: { 'x-canary': '2' } })).toBe('shop-main')
    expect(await servedBy('/hdr')).toBe('shop-main')
  })

  it('header RegularExpression match', async () => {
    expect(await servedBy('/vip', { headers: { 'x-user': 'vip-123' } })).toBe('shop-v2')
    expect(await servedBy('/vip', { headers: { 'x-user': 'vip-x' } })).toBe('shop-main')
    expect(await servedBy('/vip', { headers: { 'x-user': 'novip-1' } })).toBe('shop-main')
  })

  it('method match', async () => {
    expect(await servedBy('/m', { method: 'DELETE' })).toBe('shop-v2')
    expect(await servedBy('/m', { method: 'GET' })).toBe('shop-main')
    expect(await servedBy('/m', { method: 'POST' })).toBe('shop-main')
  })

  it('any one of several matches selects the rule', async () => {
    expect(await servedBy('/or-a')).toBe('shop-v2')
    expect(await servedBy('/or-b')).toBe('shop-v2')
    expect(await servedBy('/or-c')).toBe('shop-main')
  })

  it('Gateway API precedence: Exact over prefix, longer prefix over shorter', async () => {
    expect(await servedBy('/p/exact')).toBe('shop-main')
    expect(await servedBy('/p/deeper/x')).toBe('shop-main')
    expect(await servedBy('/p/other')).toBe('shop-v2')
    expect(await servedBy('/p')).toBe('shop-v2')
  })

  it('labels metrics with the matched route, or "default" when none matched', async () => {
    const samples = await proxy.metrics()
    const base = { direction: 'outbound', authority: 'shop.default:80' }
    expect(sum(samples, 'response_total', { ...base, route: 'shop-rules', dst_service: 'default/shop-v2' })).toBeGreaterThan(0)
    expect(sum(samples, 'response_total', { ...base, route: 'shop-precedence', dst_service: 'default/shop' })).toBeGreaterThan(0)
    expect(sum(samples, 'response_total', { ...base, route: 'default', dst_service: 'default/shop' })).toBeGreaterThan(0)
    expect(sum(samples, 'response_total', { ...base, route: 'default', dst_service: 'default/shop-v2' })).toBe(0)
  })
})

describe('weighted backendRefs', () => {
  it('splits 90/10 over 2000 requests, and the metrics agree with what the apps saw', async () => {
    const N = 2000
    const samplesBefore = await proxy.metrics()
    const splitLabels = { direction: 'outbound', authority: 'checkout.default:80', route: 'checkout-split' }
    const metricBefore = {
      a: sum(samplesBefore, 'response_total', { ...splitLabels, dst_service: 'default/split-a' }),
      b: sum(samplesBefore, 'response_total', { ...splitLabels, dst_service: 'default/split-b' }),
    }
    for (const app of [splitA, splitB, checkoutMain]) app.resetHits()

    const statuses = await runConcurrently(N, 16, async (i) => (await h1({ port: outboundPort, host: 'checkout', path: `/pay/${i}`, agent })).status)
    expect(statuses.filter((s) => s !== 200)).toEqual([])

    expect(splitA.hits + splitB.hits).toBe(N)
    expect(checkoutMain.hits).toBe(0)
    // split-b is Binomial(n=2000, p=0.1): mean 200, sigma = sqrt(2000*0.1*0.9) ~= 13.4.
    // +/- 67 is 5 sigma: a correct 90/10 split falls outside with probability < 1e-6,
    // while an unweighted 50/50 split (1000) or an inverted one (1800) is far outside.
    expect(splitB.hits).toBeGreaterThanOrEqual(200 - 67)
    expect(splitB.hits).toBeLessThanOrEqual(200 + 67)

    // The proxy's counters must agree exactly with the apps' own counts.
    await proxy.waitForMetric('response_total', { ...splitLabels, dst_service: 'default/split-a' }, metricBefore.a + splitA.hits)
    const after = await proxy.metrics()
    expect(sum(after, 'response_total', { ...splitLabels, dst_service: 'default/split-a' }) - metricBefore.a).toBe(splitA.hits)
    expect(sum(after, 'response_total', { ...splitLabels, dst_service: 'default/split-b' }) - metricBefore.b).toBe(splitB.hits)
  })
})
