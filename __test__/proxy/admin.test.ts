/** The admin server of an embedded MeshProxy, over real HTTP on loopback. */
import http from 'node:http'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { MeshProxy } from '../../src/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1 } from '../support/http.js'
import { metricTypes, parseMetrics, select, sum } from '../support/metrics.js'
import { adminGet } from '../support/proxy.js'
import { freePorts, waitFor } from '../support/ports.js'
import { proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

let app: HttpApp
let proxy: MeshProxy
let adminPort: number
let outboundPort: number
let inboundPort: number
let resources: Doc[]

function request(method: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: adminPort, method, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  app = await startHttpApp({ name: 'app' })
  ;[adminPort, outboundPort, inboundPort] = (await freePorts(3)) as [number, number, number]
  resources = [
    proxyDoc({ adminPort, outboundPort, inbound: [{ port: inboundPort, forwardTo: app.address }] }),
    serviceDoc('orders', [app.port]),
    // Accepted but not enforced in this version: shows up as a warning in /config.
    { ...serviceDoc('billing', [app.port]), healthCheck: { path: '/healthz' } },
  ]
  proxy = await MeshProxy.start({ resources, logger: null })
})

afterAll(async () => {
  await proxy?.close()
  await app?.close()
})

describe('admin server', () => {
  it('answers /live and /ready', async () => {
    expect(await adminGet(adminPort, '/live')).toMatchObject({ status: 200, body: 'live\n' })
    expect(await adminGet(adminPort, '/ready')).toMatchObject({ status: 200, body: 'ready\n' })
  })

  it('serves Prometheus text on /metrics with engine, config and process metrics', async () => {
    for (let i = 0; i < 4; i++) expect((await h1({ port: outboundPort, host: 'orders', path: '/x' })).status).toBe(200)
    expect((await h1({ port: outboundPort, host: 'orders', path: '/x?status=503' })).status).toBe(503)
    expect((await h1({ port: inboundPort, path: '/in' })).status).toBe(200)

    const res = await adminGet(adminPort, '/metrics')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    const types = metricTypes(res.body)
    expect(types.get('request_total')).toBe('counter')
    expect(types.get('response_latency_ms')).toBe('histogram')
    expect(types.get('tcp_open_connections')).toBe('gauge')
    expect(types.get('config_version')).toBe('gauge')
    expect(types.get('config_reload_total')).toBe('counter')
    expect(types.get('process_resident_memory_bytes')).toBe('gauge')

    const samples = parseMetrics(res.body)
    const outbound = { direction: 'outbound', dst_service: 'default/orders' }
    expect(sum(samples, 'request_total', outbound)).toBe(5)
    expect(sum(samples, 'response_total', { ...outbound, status_code: '200', classification: 'success' })).toBe(4)
    expect(sum(samples, 'response_total', { ...outbound, status_code: '503', classification: 'failure' })).toBe(1)
    expect(sum(samples, 'response_latency_ms_count', { ...outbound, status_code: '200' })).toBe(4)
    expect(sum(samples, 'response_latency_ms_bucket', { ...outbound, status_code: '200', le: '+Inf' })).toBe(4)
    expect(sum(samples, 'request_total', { direction: 'inbound' })).toBe(1)
    expect(sum(samples, 'config_version')).toBe(proxy.version)

    // Buckets are cumulative: never decreasing along le.
    const buckets = select(samples, 'response_latency_ms_bucket', { ...outbound, status_code: '200' }).map((s) => s.value)
    expect(buckets.length).toBeGreaterThan(20)
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]).toBeGreaterThanOrEqual(buckets[i - 1] as number)
  })

  it('shows the config in force on /config', async () => {
    const before = Date.now()
    const version = await proxy.apply(resources)
    const res = await adminGet(adminPort, '/config')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    const body = JSON.parse(res.body) as {
      version: number
      source: string
      appliedAt: string
      resources: Doc[]
      warnings: string[]
    }
    expect(body.version).toBe(version)
    expect(body.source).toBe('resources')
    expect(Date.parse(body.appliedAt)).toBeGreaterThanOrEqual(before - 1_000)
    expect(body.appliedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    // Normalised: defaults filled in.
    expect(body.resources.map((r) => `${r.kind}/${r.name}`)).toEqual(['Proxy/e2e', 'Service/orders', 'Service/billing'])
    expect(body.resources[1]).toMatchObject({ namespace: 'default', loadBalancer: { type: 'ewma' } })
    expect(body.warnings).toEqual([expect.stringMatching(/document 3 \(Service "billing"\): healthCheck: accepted but not enforced/)])
  })

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    expect((await adminGet(adminPort, '/nope')).status).toBe(404)
    expect((await adminGet(adminPort, '/')).status).toBe(404)
    const post = await request('POST', '/ready')
    expect(post.status).toBe(405)
    expect(post.headers.allow).toBe('GET, HEAD')
    expect((await request('DELETE', '/config')).status).toBe(405)
    const head = await request('HEAD', '/live')
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
    // A query string does not change the path.
    expect((await adminGet(adminPort, '/live?verbose=1')).status).toBe(200)
  })
})

describe('admin server while draining', () => {
  it('answers /ready with 503 during the drain and stops after it', async () => {
    const [admin, outbound] = (await freePorts(2)) as [number, number]
    const slowApp = await startHttpApp({ name: 'slow' })
    try {
      const drained = await MeshProxy.start({
        resources: [proxyDoc({ adminPort: admin, outboundPort: outbound }), serviceDoc('slow', [slowApp.port])],
        logger: null,
      })
      const arrived = new Promise((resolve) => slowApp.events.once('request', resolve))
      const inFlight = h1({ port: outbound, host: 'slow', path: '/?delay=800' })
      await arrived

      const closed = drained.close({ drainTimeoutMs: 5_000 })
      await waitFor('/ready to turn 503', async () => (await adminGet(admin, '/ready')).status === 503)
      expect((await adminGet(admin, '/live')).status).toBe(200)

      expect((await inFlight).status).toBe(200)
      await closed
      await expect(adminGet(admin, '/live')).rejects.toThrow(/ECONNREFUSED/)
    } finally {
      await slowApp.close()
    }
  })
})
