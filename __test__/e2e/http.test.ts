/**
 * HTTP through mesh-proxy as a user sees it: outbound routing by Host / :authority,
 * absolute-form and CONNECT (HTTP_PROXY clients), passthrough, HTTP/2 prior knowledge,
 * inbound protocol detection, error statuses for timeouts and unreachable backends,
 * and the admin endpoints.
 */
import { execFile, execFileSync } from 'node:child_process'
import http from 'node:http'
import net from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, h2Connect, keepAliveAgent, readUntil, seen, type H2Client } from '../support/http.js'
import { metricTypes, parseMetrics, select, sum } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { adminGet, ProxyProcess } from '../support/proxy.js'
import { httpRouteDoc, proxyDoc, serviceDoc } from '../support/resources.js'

const LINKERD_BUCKETS_MS = ['1', '2', '3', '4', '5', '10', '20', '30', '40', '50', '100', '200', '300', '400', '500', '1000', '+Inf']

let orders: HttpApp
let users: HttpApp
let h2App: HttpApp
let inboundApp: HttpApp
let proxy: ProxyProcess
let adminPort: number
let outboundPort: number
let inboundPort: number
let deadPort: number
const agent = keepAliveAgent(4)

beforeAll(async () => {
  ;[orders, users, h2App, inboundApp] = await Promise.all([
    startHttpApp({ name: 'orders-1' }),
    startHttpApp({ name: 'users-1' }),
    startHttpApp({ name: 'h2-1', protocols: 'h2c' }),
    startHttpApp({ name: 'inbound-1', protocols: 'both' }),
  ])
  // deadPort: a port nobody listens on (connect is refused -> 502).
  ;[adminPort, outboundPort, inboundPort, deadPort] = (await freePorts(4)) as [number, number, number, number]
  proxy = await ProxyProcess.start(
    [
      proxyDoc({
        adminPort,
        outboundPort,
        inbound: [{ port: inboundPort, forwardTo: inboundApp.address, protocol: 'auto' }],
      }),
      serviceDoc('orders', [orders.port]),
      serviceDoc('users', [users.port]),
      serviceDoc('api-h2', [h2App.port], { protocol: 'http2' }),
      serviceDoc('dead', [deadPort]),
      serviceDoc('empty', []),
      serviceDoc('pay', [users.port], { port: 8080 }),
      serviceDoc('slow', [orders.port]),
      httpRouteDoc('slow-timeouts', 'slow', [
        { matches: [{ path: { type: 'PathPrefix', value: '/backend-timeout' } }], timeouts: { backendRequest: '200ms' } },
        { matches: [{ path: { type: 'PathPrefix', value: '/request-timeout' } }], timeouts: { request: '300ms' } },
      ]),
    ],
    adminPort,
  )
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await Promise.all([orders, users, h2App, inboundApp].map((a) => a?.close()))
  expect(exit?.code).toBe(0)
})

describe('outbound HTTP/1.1', () => {
  it('routes by Host header to the named Service', async () => {
    const a = await h1({ port: outboundPort, host: 'orders', path: '/api/items?x=1', agent })
    expect(a.status).toBe(200)
    expect(seen(a)).toMatchObject({ instance: 'orders-1', method: 'GET', path: '/api/items?x=1', httpVersion: '1.1' })
    expect(a.headers['x-instance']).toBe('orders-1')

    const b = await h1({ port: outboundPort, host: 'users', path: '/profile', method: 'POST', body: 'hello', agent })
    expect(b.status).toBe(200)
    expect(seen(b)).toMatchObject({ instance: 'users-1', method: 'POST', path: '/profile', body: 'hello' })
  })

  it('accepts every spelling of a service authority, case-insensitively', async () => {
    for (const host of ['orders.default', 'orders.default.svc', 'orders.default.svc.cluster.local', 'orders:80', 'ORDERS.Default:80']) {
      const reply = await h1({ port: outboundPort, host, path: '/spelling', agent })
      expect(reply.status, `Host: ${host}`).toBe(200)
      expect(seen(reply).instance, `Host: ${host}`).toBe('orders-1')
    }
  })

  it('matches the Service port: pay:8080 is the Service, pay:80 is not', async () => {
    const reply = await h1({ port: outboundPort, host: 'pay:8080', path: '/pay', agent })
    expect(reply.status).toBe(200)
    expect(seen(reply).instance).toBe('users-1')
    const wrongPort = await h1({ port: outboundPort, host: 'pay', path: '/pay', agent })
    expect(wrongPort.status).not.toBe(200)
  })

  it('streams a 1 MiB request body to the app intact', async () => {
    const body = 'abcdefghijklmnop'.repeat(65_536)
    const reply = await h1({ port: outboundPort, host: 'orders', path: '/upload', method: 'PUT', body, agent })
    expect(reply.status).toBe(200)
    expect(seen(reply).body).toBe(body)
  })

  it('routes each request on one keep-alive connection by its own Host', async () => {
    const single = keepAliveAgent(1)
    try {
      const hosts = ['orders', 'users', 'orders', 'users', 'users', 'orders']
      const served: string[] = []
      for (const host of hosts) served.push(seen(await h1({ port: outboundPort, host, path: '/same-conn', agent: single })).instance)
      expect(served).toEqual(hosts.map((h) => `${h}-1`))
    } finally {
      single.destroy()
    }
  })

  it('serves absolute-form requests (HTTP_PROXY clients) and forwards them in origin-form', async () => {
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: outboundPort, path: 'http://orders/api?q=abs', agent: false }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end()
    })
    expect(reply.status).toBe(200)
    const info = JSON.parse(reply.body) as { instance: string; path: string }
    expect(info.instance).toBe('orders-1')
    expect(info.path).toBe('/api?q=abs')
  })

  it.skipIf(!hasCurl())('works as curl -x proxy', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${outboundPort}`, 'http://users/via-curl'], (err, stdout, stderr) =>
        err ? reject(new Error(`curl failed: ${stderr || err.message}`)) : resolve(stdout),
      ),
    )
    expect(JSON.parse(out)).toMatchObject({ instance: 'users-1', path: '/via-curl' })
  })

  it('tunnels CONNECT orders:80 and routes the HTTP inside it to the Service', async () => {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: outboundPort, method: 'CONNECT', path: 'orders:80', agent: false })
      req.on('connect', (res, sock) => {
        if (res.statusCode !== 200) reject(new Error(`CONNECT answered ${res.statusCode}`))
        else resolve(sock)
      })
      req.on('error', reject)
      req.end()
    })
    try {
      socket.write('GET /tunneled HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n')
      const raw = (await readUntil(socket, (b) => /\r\n\r\n[\s\S]*\}$/.test(b.toString('utf8')))).toString('utf8')
      expect(raw).toMatch(/^HTTP\/1\.1 200/)
      expect(raw).toContain('"instance":"orders-1"')
      expect(raw).toContain('"path":"/tunneled"')
    } finally {
      socket.destroy()
    }
  })

  it('passes requests for hosts that are not a Service straight to host:port', async () => {
    const reply = await h1({ port: outboundPort, host: users.address, path: '/passthrough', agent })
    expect(reply.status).toBe(200)
    expect(seen(reply)).toMatchObject({ instance: 'users-1', path: '/passthrough' })
  })
})

describe('HTTP/2 (h2c prior knowledge)', () => {
  let client: H2Client
  beforeAll(async () => {
    client = await h2Connect(outboundPort)
  })
  afterAll(async () => {
    await client?.close()
  })

  it('routes by :authority to an http2 Service, multiplexing many streams on one connection', async () => {
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.request({ authority: 'api-h2', path: `/stream/${i}`, method: 'POST', body: `body-${i}` })),
    )
    replies.forEach((reply, i) => {
      expect(reply.status).toBe(200)
      expect(seen(reply)).toMatchObject({ instance: 'h2-1', httpVersion: '2.0', path: `/stream/${i}`, body: `body-${i}` })
    })
  })

  it('translates an h2 client to an HTTP/1.1 Service', async () => {
    const reply = await client.request({ authority: 'orders', path: '/from-h2' })
    expect(reply.status).toBe(200)
    expect(seen(reply)).toMatchObject({ instance: 'orders-1', httpVersion: '1.1', path: '/from-h2' })
  })
})

describe('upstream connection pools', () => {
  it('reuses HTTP/1.1 keep-alive connections to an endpoint', async () => {
    const before = users.connections
    for (let i = 0; i < 50; i++) {
      const reply = await h1({ port: outboundPort, host: 'users', path: `/pooled/${i}`, agent })
      expect(reply.status).toBe(200)
    }
    // Sequential requests need one upstream connection; a proxy without a pool would open 50.
    expect(users.connections - before).toBeLessThanOrEqual(2)
  })

  it('multiplexes concurrent requests over one HTTP/2 connection to an http2 endpoint', async () => {
    const client = await h2Connect(outboundPort)
    try {
      const before = h2App.connections
      const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => client.request({ authority: 'api-h2', path: `/mux/${i}` })))
      expect(replies.every((r) => r.status === 200)).toBe(true)
      expect(h2App.connections - before).toBeLessThanOrEqual(1)
    } finally {
      await client.close()
    }
  })
})

describe('inbound protocol auto', () => {
  it('detects an HTTP/1.1 client', async () => {
    const reply = await h1({ port: inboundPort, host: 'web', path: '/in-h1' })
    expect(reply.status).toBe(200)
    expect(seen(reply)).toMatchObject({ instance: 'inbound-1', path: '/in-h1' })
  })

  it('detects an HTTP/2 prior-knowledge client', async () => {
    const client = await h2Connect(inboundPort)
    try {
      const replies = await Promise.all([1, 2, 3].map((i) => client.request({ authority: 'web', path: `/in-h2/${i}` })))
      for (const [i, reply] of replies.entries()) {
        expect(reply.status).toBe(200)
        expect(seen(reply)).toMatchObject({ instance: 'inbound-1', path: `/in-h2/${i + 1}` })
      }
    } finally {
      await client.close()
    }
  })

  it('counts inbound requests under direction="inbound"', async () => {
    await proxy.waitForMetric('request_total', { direction: 'inbound' }, 4)
    const samples = select(await proxy.metrics(), 'response_total', { direction: 'inbound', status_code: '200' })
    expect(samples.length).toBeGreaterThan(0)
    expect(samples.every((s) => s.labels.classification === 'success')).toBe(true)
  })
})

describe('timeouts and unreachable backends', () => {
  it('answers 504 when timeouts.backendRequest is exceeded', async () => {
    const reply = await h1({ port: outboundPort, host: 'slow', path: '/backend-timeout?delay=3000' })
    expect(reply.status).toBe(504)
  })

  it('answers 504 when timeouts.request is exceeded', async () => {
    const reply = await h1({ port: outboundPort, host: 'slow', path: '/request-timeout?delay=3000' })
    expect(reply.status).toBe(504)
  })

  it('keeps serving a rule with a timeout when the backend is quick enough', async () => {
    const reply = await h1({ port: outboundPort, host: 'slow', path: '/backend-timeout?delay=10' })
    expect(reply.status).toBe(200)
  })

  it('answers 502 when the endpoint refuses connections', async () => {
    const reply = await h1({ port: outboundPort, host: 'dead', path: '/x' })
    expect(reply.status).toBe(502)
  })

  it('answers 503 when the Service has no endpoints', async () => {
    const reply = await h1({ port: outboundPort, host: 'empty', path: '/x' })
    expect(reply.status).toBe(503)
  })

  it('reports each error status as a failure in response_total', async () => {
    const fail = { direction: 'outbound', classification: 'failure' }
    await proxy.waitForMetric('response_total', { ...fail, dst_service: 'default/slow', route: 'slow-timeouts', status_code: '504' }, 2)
    await proxy.waitForMetric('response_total', { ...fail, dst_service: 'default/dead', status_code: '502' }, 1)
    await proxy.waitForMetric('response_total', { ...fail, dst_service: 'default/empty', status_code: '503' }, 1)
    const samples = await proxy.metrics()
    expect(sum(samples, 'response_total', { dst_service: 'default/slow', status_code: '200', classification: 'success' })).toBeGreaterThanOrEqual(1)
    expect(sum(samples, 'request_total', { dst_service: 'default/dead' })).toBeGreaterThanOrEqual(1)
  })
})

describe('admin endpoints', () => {
  it('/ready and /live answer 200', async () => {
    expect((await adminGet(adminPort, '/ready')).status).toBe(200)
    expect((await adminGet(adminPort, '/live')).status).toBe(200)
  })

  it('/metrics uses the Linkerd metric names, types and labels', async () => {
    const res = await adminGet(adminPort, '/metrics')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    const types = metricTypes(res.body)
    expect(types.get('request_total')).toBe('counter')
    expect(types.get('response_total')).toBe('counter')
    expect(types.get('response_latency_ms')).toBe('histogram')
    expect(types.get('config_version')).toBe('gauge')
    for (const name of ['tcp_open_total', 'tcp_open_connections', 'tcp_close_total', 'tcp_read_bytes_total', 'tcp_write_bytes_total', 'config_reload_total']) {
      expect(types.has(name), `# TYPE ${name}`).toBe(true)
    }

    const samples = parseMetrics(res.body)
    const ordersLabels = { direction: 'outbound', authority: 'orders.default:80', dst_service: 'default/orders', route: 'default', tls: 'false' }
    expect(sum(samples, 'request_total', ordersLabels)).toBeGreaterThanOrEqual(5)
    const ok = select(samples, 'response_total', { ...ordersLabels, status_code: '200', classification: 'success' })
    expect(ok).toHaveLength(1)
    expect(ok[0]!.value).toBeGreaterThanOrEqual(5)

    const buckets = select(samples, 'response_latency_ms_bucket', { ...ordersLabels, status_code: '200', classification: 'success' })
    const les = buckets.map((b) => b.labels.le)
    for (const le of LINKERD_BUCKETS_MS) expect(les, `bucket le="${le}"`).toContain(le)
    const inf = buckets.find((b) => b.labels.le === '+Inf')!
    expect(inf.value).toBe(sum(samples, 'response_latency_ms_count', { ...ordersLabels, status_code: '200', classification: 'success' }))
    // Cumulative buckets never decrease.
    const ordered = LINKERD_BUCKETS_MS.map((le) => buckets.find((b) => b.labels.le === le)!.value)
    for (let i = 1; i < ordered.length; i++) expect(ordered[i]!).toBeGreaterThanOrEqual(ordered[i - 1]!)
  })

  it('/config shows the config in force, its version and source; config_version agrees', async () => {
    const view = await proxy.config()
    expect(view.version).toBeGreaterThanOrEqual(1)
    expect(view.source).toContain(proxy.configPath)
    expect(Number.isNaN(Date.parse(view.appliedAt))).toBe(false)
    const kinds = view.resources.map((r) => `${String(r.kind)}/${String(r.name)}`)
    expect(kinds).toEqual(expect.arrayContaining(['Proxy/e2e', 'Service/orders', 'Service/api-h2', 'HTTPRoute/slow-timeouts']))
    expect(sum(await proxy.metrics(), 'config_version')).toBe(view.version)
  })

  it('answers 404 for an unknown admin path', async () => {
    expect((await adminGet(adminPort, '/nope')).status).toBe(404)
  })
})

function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
