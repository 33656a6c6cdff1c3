/**
 * Retries through a real mesh-proxy in front of apps that fail on purpose: a backend that
 * answers 503 to half its requests made (nearly) whole, request bodies replayed, POST left
 * alone unless configured, the budget capping extra load when every request fails, gRPC
 * UNAVAILABLE retried, and retry_total moving with every decision.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startFlakyApp, startFlakyGrpcApp, type FlakyApp, type FlakyGrpcApp } from '../support/flaky.js'
import { echoClient, unary, type EchoClient } from '../support/grpc.js'
import { h1, keepAliveAgent, runConcurrently } from '../support/http.js'
import { sum, type Sample } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

let flaky: FlakyApp
let down: FlakyApp
let posts: FlakyApp
let greeter: FlakyGrpcApp
let proxy: ProxyProcess
let outboundPort: number
const agent = keepAliveAgent(16)
const clients: EchoClient[] = []

function route(name: string, retry: Doc): Doc {
  return { apiVersion: 'mesh/v1', kind: 'HTTPRoute', name, parentRefs: [{ name }], rules: [{ retry }] }
}

beforeAll(async () => {
  flaky = await startFlakyApp('flaky', { kind: 'flaky', share: 0.5 })
  down = await startFlakyApp('down', { kind: 'failing', status: 503 })
  posts = await startFlakyApp('posts', { kind: 'flaky', share: 0.5 })
  greeter = await startFlakyGrpcApp('greeter', 0.5)
  const [adminPort, outbound] = (await freePorts(2)) as [number, number]
  outboundPort = outbound
  // Enough attempts and budget to make a 50 % failure rate whole: each request needs one
  // retry on average, so the budget allows 100 % extra load.
  const generous = { attempts: 10, backoff: '1ms', budget: 100, minRetriesPerSecond: 100 }
  proxy = await ProxyProcess.start(
    [
      proxyDoc({ adminPort, outboundPort }),
      serviceDoc('flaky', [flaky.port]),
      serviceDoc('down', [down.port]),
      serviceDoc('posts', [posts.port]),
      serviceDoc('greeter', [greeter.port], { protocol: 'grpc' }),
      route('flaky', generous),
      // The defaults' 20 %, with a reserve of 1 retry per second (10 per window).
      route('down', { attempts: 3, backoff: '0ms', minRetriesPerSecond: 1 }),
      {
        apiVersion: 'mesh/v1',
        kind: 'HTTPRoute',
        name: 'posts',
        parentRefs: [{ name: 'posts' }],
        rules: [
          { matches: [{ path: { value: '/unsafe' } }], retry: { ...generous, nonIdempotent: true } },
          { retry: generous },
        ],
      },
      route('greeter', generous),
    ],
    adminPort,
  )
  expect(proxy.stderr).not.toMatch(/not enforced/)
})

afterAll(async () => {
  agent.destroy()
  for (const c of clients) c.close()
  const exit = await proxy?.stop()
  await Promise.all([flaky, down, posts].map((a) => a?.close()))
  await greeter?.close()
  expect(exit?.code).toBe(0)
})

function retryTotal(metrics: Sample[], service: string, result: string): number {
  return sum(metrics, 'retry_total', { dst_service: `default/${service}`, result })
}

describe('retries', () => {
  it('make a backend that fails half its requests at least 99 % successful', async () => {
    const N = 1000
    const replies = await runConcurrently(N, 10, () => h1({ port: outboundPort, host: 'flaky', path: '/r', agent }))
    const ok = replies.filter((r) => r.status === 200).length
    expect(ok / N).toBeGreaterThanOrEqual(0.99)
    // Without retries about half would have failed: the app really did fail that often.
    expect(flaky.failures / flaky.hits).toBeGreaterThan(0.4)
    expect(flaky.hits - flaky.failures).toBe(ok)

    const metrics = await proxy.metrics()
    const retried = retryTotal(metrics, 'flaky', 'retried')
    // Every 503 the app sent was either retried or the end of its request.
    const gaveUp = retryTotal(metrics, 'flaky', 'attempts_exhausted') + retryTotal(metrics, 'flaky', 'budget_exhausted')
    expect(retried + gaveUp).toBe(flaky.failures)
    expect(gaveUp).toBe(N - ok)
    // The client saw one request and one response each.
    expect(sum(metrics, 'request_total', { dst_service: 'default/flaky' })).toBe(N)
    expect(sum(metrics, 'response_total', { dst_service: 'default/flaky', status_code: '200' })).toBe(ok)
  }, 60_000)

  it('cap the extra load with the budget when every request fails', async () => {
    const N = 500
    const replies = await runConcurrently(N, 10, () => h1({ port: outboundPort, host: 'down', path: '/d', agent }))
    expect(replies.every((r) => r.status === 503)).toBe(true)
    const metrics = await proxy.metrics()
    const retried = retryTotal(metrics, 'down', 'retried')
    // 20 % of 500 plus a reserve of 10; 3 attempts each would have been 1500 retries.
    expect(retried).toBeGreaterThan(0)
    expect(retried).toBeLessThanOrEqual(0.2 * N + 10 + 5)
    expect(down.hits).toBe(N + retried)
    expect(retryTotal(metrics, 'down', 'budget_exhausted')).toBeGreaterThan(N - 0.2 * N - 20)
  }, 60_000)

  it('replay request bodies, and leave POST alone unless the rule allows it', async () => {
    posts.reset()
    posts.mode = { kind: 'failing', status: 503 }
    // A POST on the default rule: not retried, whatever the failure.
    const reply = await h1({ port: outboundPort, host: 'posts', path: '/safe', method: 'POST', body: 'order #1', agent })
    expect(reply.status).toBe(503)
    expect(posts.hits).toBe(1)
    expect(retryTotal(await proxy.metrics(), 'posts', 'not_replayable')).toBe(1)

    // PUT with a body, and POST where the rule allows it: every attempt gets the same body.
    posts.reset()
    posts.mode = { kind: 'flaky', share: 0.5 }
    for (let i = 0; i < 20; i++) {
      const put = await h1({ port: outboundPort, host: 'posts', path: '/safe', method: 'PUT', body: `put-${i}`, agent })
      expect(put.status).toBe(200)
      expect(JSON.parse(put.body).body).toBe(`put-${i}`)
      const post = await h1({ port: outboundPort, host: 'posts', path: '/unsafe', method: 'POST', body: `post-${i}`, agent })
      expect(post.status).toBe(200)
      expect(JSON.parse(post.body).body).toBe(`post-${i}`)
    }
    for (const body of posts.bodies) expect(body).toMatch(/^(put|post)-\d+$/)
    expect(posts.hits).toBeGreaterThan(40)
  })

  it('retry gRPC calls answered UNAVAILABLE', async () => {
    const c = echoClient(outboundPort, 'greeter')
    clients.push(c)
    const results = await runConcurrently(200, 10, (i) => unary(c, `m-${i}`))
    const failed = results.filter((r) => r.error !== null)
    expect(failed.length).toBeLessThanOrEqual(2)
    results.forEach((r, i) => {
      if (r.error === null) expect(r.reply?.message).toBe(`m-${i}`)
    })
    expect(greeter.unavailable).toBeGreaterThan(40)
    const metrics = await proxy.metrics()
    expect(retryTotal(metrics, 'greeter', 'retried')).toBeGreaterThanOrEqual(greeter.unavailable - failed.length)
  })
})
