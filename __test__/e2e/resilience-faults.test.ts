/**
 * Fault injection per HTTPRoute rule through a real mesh-proxy: delayed and aborted shares
 * within statistical tolerance over 2000 requests, counted in the metrics, and gRPC calls
 * aborted with the gRPC mapping of the configured status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { echoClient, startGrpcApp, unary, type EchoClient, type GrpcApp } from '../support/grpc.js'
import { h1, keepAliveAgent, runConcurrently, seen } from '../support/http.js'
import { sum } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

const DELAY_MS = 200
let app: HttpApp
let grpcApp: GrpcApp
let proxy: ProxyProcess
let outboundPort: number
const agent = keepAliveAgent(32)
const clients: EchoClient[] = []

function route(name: string, parent: string, rule: Doc): Doc {
  return { apiVersion: 'mesh/v1', kind: 'HTTPRoute', name, parentRefs: [{ name: parent }], rules: [rule] }
}

beforeAll(async () => {
  app = await startHttpApp({ name: 'app' })
  grpcApp = await startGrpcApp('grpc-1')
  const [adminPort, outbound] = (await freePorts(2)) as [number, number]
  outboundPort = outbound
  proxy = await ProxyProcess.start(
    [
      proxyDoc({ adminPort, outboundPort }),
      serviceDoc('chaos', [app.port]),
      serviceDoc('calm', [app.port]),
      serviceDoc('greeter', [grpcApp.port], { protocol: 'grpc' }),
      route('chaos', 'chaos', { faults: { delay: { percent: 20, fixed: `${DELAY_MS}ms` }, abort: { percent: 10, status: 503 } } }),
      route('greeter-chaos', 'greeter', { faults: { abort: { percent: 100, status: 404 } } }),
    ],
    adminPort,
  )
})

afterAll(async () => {
  agent.destroy()
  for (const c of clients) c.close()
  const exit = await proxy?.stop()
  await Promise.all([app?.close(), grpcApp?.close()])
  expect(exit?.code).toBe(0)
})

describe('fault injection', () => {
  it('delays and aborts the configured shares of 2000 requests, independently', async () => {
    const N = 2000
    const outcomes = await runConcurrently(N, 20, async () => {
      const started = performance.now()
      const reply = await h1({ port: outboundPort, host: 'chaos', path: '/f', agent })
      return { reply, elapsed: performance.now() - started }
    })
    const aborted = outcomes.filter((o) => o.reply.status === 503)
    for (const { reply } of aborted) expect(reply.headers['x-mesh-error']).toBe('fault-abort')
    for (const { reply } of outcomes.filter((o) => o.reply.status !== 503)) {
      expect(reply.status).toBe(200)
      expect(seen(reply).instance).toBe('app')
    }
    const delayed = outcomes.filter((o) => o.elapsed >= DELAY_MS)
    // Binomial(2000, 0.10): sigma 13.4; Binomial(2000, 0.20): sigma 17.9. Five sigmas each.
    expect(aborted.length).toBeGreaterThanOrEqual(200 - 67)
    expect(aborted.length).toBeLessThanOrEqual(200 + 67)
    expect(delayed.length).toBeGreaterThanOrEqual(400 - 90)
    expect(delayed.length).toBeLessThanOrEqual(400 + 90)
    // Independent draws: about 2 % are both delayed and aborted (sigma 6.3).
    const both = aborted.filter((o) => o.elapsed >= DELAY_MS).length
    expect(both).toBeGreaterThanOrEqual(40 - 32)
    expect(both).toBeLessThanOrEqual(40 + 32)

    const metrics = await proxy.metrics()
    const match = { direction: 'outbound', dst_service: 'default/chaos', route: 'chaos' }
    expect(sum(metrics, 'request_total', match)).toBe(N)
    expect(sum(metrics, 'response_total', { ...match, status_code: '503', classification: 'failure' })).toBe(aborted.length)
    expect(sum(metrics, 'response_total', { ...match, status_code: '200' })).toBe(N - aborted.length)
    // Latency includes the injected delay.
    const slow =
      sum(metrics, 'response_latency_ms_count', match) - sum(metrics, 'response_latency_ms_bucket', { ...match, le: '100' })
    expect(slow).toBeGreaterThanOrEqual(delayed.length - 5)
  }, 60_000)

  it('leaves a Service without faults alone', async () => {
    for (let i = 0; i < 50; i++) {
      const reply = await h1({ port: outboundPort, host: 'calm', path: '/ok', agent })
      expect(reply.status).toBe(200)
    }
  })

  it('aborts gRPC calls with a trailers-only status: the gRPC mapping of the HTTP status', async () => {
    const c = echoClient(outboundPort, 'greeter')
    clients.push(c)
    for (let i = 0; i < 5; i++) {
      const { error, reply } = await unary(c, `hello-${i}`)
      expect(reply).toBeUndefined()
      expect(error?.code).toBe(12) // UNIMPLEMENTED, the mapping of 404
      expect(error?.details).toBe('fault injected: HTTP 404')
    }
    const metrics = await proxy.metrics()
    expect(
      sum(metrics, 'response_total', { dst_service: 'default/greeter', route: 'greeter-chaos', status_code: '200', classification: 'failure' }),
    ).toBe(5)
  })
})
