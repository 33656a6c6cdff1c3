/**
 * Circuit breaking and outlier ejection through a real mesh-proxy: a backend that times out
 * is ejected and traffic moves to the healthy one, the ejection ends and the endpoint comes
 * back, a Service over maxRequests answers 503 with a reason, and circuit_open and the
 * ejection counters show it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startFlakyApp, type FlakyApp } from '../support/flaky.js'
import { h1, keepAliveAgent, runConcurrently } from '../support/http.js'
import { sum } from '../support/metrics.js'
import { freePorts, waitFor } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc } from '../support/resources.js'

let timingOut: FlakyApp
let healthy: FlakyApp
let slow: FlakyApp
let proxy: ProxyProcess
let outboundPort: number
const agent = keepAliveAgent(64)

beforeAll(async () => {
  timingOut = await startFlakyApp('timing-out', { kind: 'hanging', ms: 5_000 })
  healthy = await startFlakyApp('healthy')
  slow = await startFlakyApp('slow', { kind: 'hanging', ms: 1_000 })
  const [adminPort, outbound] = (await freePorts(2)) as [number, number]
  outboundPort = outbound
  proxy = await ProxyProcess.start(
    [
      proxyDoc({ adminPort, outboundPort }),
      {
        ...serviceDoc('pair', [timingOut.port, healthy.port], { loadBalancer: 'round_robin' }),
        circuitBreaker: { consecutiveFailures: 2, ejection: '1s' },
      },
      {
        apiVersion: 'mesh/v1',
        kind: 'HTTPRoute',
        name: 'pair',
        parentRefs: [{ name: 'pair' }],
        rules: [{ timeouts: { backendRequest: '200ms' } }],
      },
      { ...serviceDoc('narrow', [slow.port]), circuitBreaker: { maxRequests: 5 } },
    ],
    adminPort,
  )
  expect(proxy.stderr).not.toMatch(/not enforced/)
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await Promise.all([timingOut, healthy, slow].map((a) => a?.close()))
  expect(exit?.code).toBe(0)
})

describe('outlier ejection', () => {
  it('ejects a backend that times out; traffic moves to the healthy one', async () => {
    const statuses: number[] = []
    for (let i = 0; i < 20; i++) statuses.push((await h1({ port: outboundPort, host: 'pair', path: '/p', agent })).status)
    // Round robin: requests 1 and 3 time out (two failures in a row), then it is out.
    expect(statuses.filter((s) => s === 504)).toHaveLength(2)
    expect(statuses.slice(3).every((s) => s === 200)).toBe(true)
    expect(timingOut.hits).toBe(2)
    expect(healthy.hits).toBe(18)

    const metrics = await proxy.metrics()
    const endpoint = { dst_service: 'default/pair', target_addr: timingOut.address }
    expect(sum(metrics, 'outlier_ejections_total', endpoint)).toBe(1)
    expect(sum(metrics, 'outlier_ejected', endpoint)).toBe(1)
    expect(sum(metrics, 'outlier_ejected', { dst_service: 'default/pair', target_addr: healthy.address })).toBe(0)
  })

  it('ends the ejection: the endpoint, recovered, gets traffic again', async () => {
    timingOut.mode = { kind: 'healthy' }
    await waitFor(
      'the ejected endpoint to serve again',
      async () => {
        const reply = await h1({ port: outboundPort, host: 'pair', path: '/p', agent })
        expect(reply.status).toBe(200)
        return timingOut.hits > 2
      },
      { timeoutMs: 5_000, intervalMs: 50 },
    )
    const metrics = await proxy.metrics()
    expect(sum(metrics, 'outlier_ejected', { dst_service: 'default/pair', target_addr: timingOut.address })).toBe(0)
    // Balanced again between both.
    const before = timingOut.hits
    for (let i = 0; i < 10; i++) await h1({ port: outboundPort, host: 'pair', path: '/p', agent })
    expect(timingOut.hits - before).toBe(5)
  })
})

describe('circuit breaking', () => {
  it('answers 503 max-requests beyond maxRequests in flight, with circuit_open while saturated', async () => {
    const burst = runConcurrently(20, 20, () => h1({ port: outboundPort, host: 'narrow', path: '/n', agent }))
    const open = await waitFor(
      'circuit_open{limit="requests"} to be 1',
      async () => sum(await proxy.metrics(), 'circuit_open', { dst_service: 'default/narrow', limit: 'requests' }) === 1,
      { timeoutMs: 3_000, intervalMs: 20 },
    )
    expect(open).toBe(true)
    const replies = await burst
    const refused = replies.filter((r) => r.status === 503)
    expect(replies.filter((r) => r.status === 200)).toHaveLength(5)
    expect(refused).toHaveLength(15)
    for (const r of refused) expect(r.headers['x-mesh-error']).toBe('max-requests')
    expect(slow.hits).toBe(5)

    const metrics = await proxy.metrics()
    expect(sum(metrics, 'circuit_breaker_overflow_total', { dst_service: 'default/narrow', limit: 'requests' })).toBe(15)
    expect(sum(metrics, 'circuit_open', { dst_service: 'default/narrow', limit: 'requests' })).toBe(0)
    expect(sum(metrics, 'response_total', { dst_service: 'default/narrow', status_code: '503' })).toBe(15)
  })
})
