/**
 * Local rate limits through a real mesh-proxy: an HTTPRoute rule's token bucket and an
 * inbound port's hold under a burst of concurrent requests, refuse the excess with 429 and
 * Retry-After, count it, and admit again once the bucket has refilled.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, keepAliveAgent, runConcurrently, seen, type Reply } from '../support/http.js'
import { sum } from '../support/metrics.js'
import { freePorts, sleep } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc } from '../support/resources.js'

let app: HttpApp
let proxy: ProxyProcess
let outboundPort: number
let inboundPort: number
const agent = keepAliveAgent(100)

const RULE = { requestsPerSecond: 5, burst: 20 }
const INBOUND = { requestsPerSecond: 2, burst: 5 }

beforeAll(async () => {
  app = await startHttpApp({ name: 'app' })
  const [adminPort, outbound, inbound] = (await freePorts(3)) as [number, number, number]
  outboundPort = outbound
  inboundPort = inbound
  const proxyResource = proxyDoc({ adminPort, outboundPort, inbound: [{ port: inboundPort, forwardTo: app.address }] })
  ;(proxyResource.inbound as Record<string, unknown>[])[0]!.rateLimit = INBOUND
  proxy = await ProxyProcess.start(
    [
      proxyResource,
      serviceDoc('limited', [app.port]),
      serviceDoc('open', [app.port]),
      {
        apiVersion: 'mesh/v1',
        kind: 'HTTPRoute',
        name: 'limited',
        parentRefs: [{ name: 'limited' }],
        rules: [{ matches: [{ path: { value: '/api' } }], rateLimit: RULE }],
      },
    ],
    adminPort,
  )
  expect(proxy.stderr).not.toMatch(/not enforced/)
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await app?.close()
  expect(exit?.code).toBe(0)
})

/** Fires `count` requests at once; returns the replies and how long the burst took in seconds. */
async function burst(count: number, send: () => Promise<Reply>): Promise<{ replies: Reply[]; seconds: number }> {
  const started = performance.now()
  const replies = await runConcurrently(count, count, send)
  return { replies, seconds: (performance.now() - started) / 1000 }
}

function expectLimited(replies: Reply[], limit: { requestsPerSecond: number; burst: number }, seconds: number): number {
  const admitted = replies.filter((r) => r.status === 200)
  const refused = replies.filter((r) => r.status === 429)
  expect(admitted.length + refused.length).toBe(replies.length)
  // The whole bucket, plus whatever refilled while the burst was in flight.
  expect(admitted.length).toBeGreaterThanOrEqual(limit.burst)
  expect(admitted.length).toBeLessThanOrEqual(limit.burst + Math.ceil(limit.requestsPerSecond * seconds) + 1)
  for (const reply of refused) {
    expect(reply.headers['x-mesh-error']).toBe('rate-limited')
    const retryAfter = Number(reply.headers['retry-after'])
    expect(Number.isInteger(retryAfter)).toBe(true)
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(1 / limit.requestsPerSecond))
  }
  for (const reply of admitted) expect(seen(reply).instance).toBe('app')
  return refused.length
}

describe('rate limit of an HTTPRoute rule', () => {
  it('admits the burst and refuses the rest of 100 concurrent requests with 429 and Retry-After', async () => {
    const before = await proxy.metrics()
    const { replies, seconds } = await burst(100, () => h1({ port: outboundPort, host: 'limited', path: '/api/x', agent }))
    const refused = expectLimited(replies, RULE, seconds)
    expect(refused).toBeGreaterThan(0)

    const after = await proxy.metrics()
    const match = { dst_service: 'default/limited', route: 'limited', status_code: '429' }
    expect(sum(after, 'response_total', match) - sum(before, 'response_total', match)).toBe(refused)
  })

  it('only limits the rule it is on', async () => {
    const other = await runConcurrently(40, 40, () => h1({ port: outboundPort, host: 'limited', path: '/other', agent }))
    expect(other.every((r) => r.status === 200)).toBe(true)
    const open = await runConcurrently(40, 40, () => h1({ port: outboundPort, host: 'open', path: '/api/x', agent }))
    expect(open.every((r) => r.status === 200)).toBe(true)
  })

  it('admits again after Retry-After', async () => {
    let refused: Reply | undefined
    for (let i = 0; i < 50 && refused === undefined; i++) {
      const reply = await h1({ port: outboundPort, host: 'limited', path: '/api/x', agent })
      if (reply.status === 429) refused = reply
    }
    expect(refused).toBeDefined()
    await sleep(Number(refused!.headers['retry-after']) * 1000)
    expect((await h1({ port: outboundPort, host: 'limited', path: '/api/x', agent })).status).toBe(200)
  })
})

describe('rate limit of an inbound port', () => {
  it('holds under a burst of 30 concurrent requests', async () => {
    const { replies, seconds } = await burst(30, () => h1({ port: inboundPort, host: 'web', path: '/in', agent }))
    const refused = expectLimited(replies, INBOUND, seconds)
    const metrics = await proxy.metrics()
    expect(sum(metrics, 'response_total', { direction: 'inbound', status_code: '429' })).toBe(refused)
  })
})
