/**
 * MeshProxy embedded in this process: start, apply, close, asyncDispose, and that a
 * rejected config (bad resources, a port in use) changes nothing.
 */
import net from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ConfigError, MeshProxy, type MeshProxyEvent } from '../../src/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, seen } from '../support/http.js'
import { parseMetrics, sum } from '../support/metrics.js'
import { adminGet } from '../support/proxy.js'
import { freePorts } from '../support/ports.js'
import { httpRouteDoc, proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

let appV1: HttpApp
let appV2: HttpApp

beforeAll(async () => {
  appV1 = await startHttpApp({ name: 'v1' })
  appV2 = await startHttpApp({ name: 'v2' })
})

afterAll(async () => {
  await appV1?.close()
  await appV2?.close()
})

interface Ports {
  admin: number
  outbound: number
  inbound: number
}

async function ports(): Promise<Ports> {
  const [admin, outbound, inbound] = (await freePorts(3)) as [number, number, number]
  return { admin, outbound, inbound }
}

function docs(p: Ports, backend: 'v1' | 'v2' = 'v1'): Doc[] {
  return [
    proxyDoc({ adminPort: p.admin, outboundPort: p.outbound, inbound: [{ port: p.inbound, forwardTo: appV1.address }] }),
    serviceDoc('orders-v1', [appV1.port]),
    serviceDoc('orders-v2', [appV2.port]),
    serviceDoc('orders', [appV1.port]),
    httpRouteDoc('orders-split', 'orders', [{ backendRefs: [{ name: `orders-${backend}` }] }]),
  ]
}

/** Collects log lines and events instead of writing to stderr. */
function recorder() {
  const lines: string[] = []
  const events: MeshProxyEvent[] = []
  return { lines, events, logger: (line: string) => lines.push(line), onEvent: (e: MeshProxyEvent) => events.push(e) }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

describe('MeshProxy lifecycle', () => {
  it('starts from resources, serves both directions, and closes', async () => {
    const p = await ports()
    const rec = recorder()
    const proxy = await MeshProxy.start({ resources: docs(p), logger: rec.logger, onEvent: rec.onEvent })
    try {
      expect(proxy.version).toBe(1)
      expect(proxy.running).toBe(true)
      expect(proxy.listeners).toEqual({ inbound: [`127.0.0.1:${p.inbound}`], outbound: `127.0.0.1:${p.outbound}`, tcp: [] })
      expect(proxy.adminAddress).toBe(`127.0.0.1:${p.admin}`)
      expect(proxy.drainTimeoutMs).toBe(2_000) // the Proxy's drainTimeout
      expect(rec.events).toContainEqual({ type: 'applied', trigger: 'start', version: 1, source: 'resources' })

      const out = await h1({ port: p.outbound, host: 'orders', path: '/a' })
      expect(out.status).toBe(200)
      expect(seen(out).instance).toBe('v1')
      const inb = await h1({ port: p.inbound, path: '/b' })
      expect(inb.status).toBe(200)
      expect(seen(inb).path).toBe('/b')
    } finally {
      await proxy.close()
    }
    expect(proxy.running).toBe(false)
    // Everything it listened on is released.
    expect(await canListen(p.outbound)).toBe(true)
    expect(await canListen(p.inbound)).toBe(true)
    expect(await canListen(p.admin)).toBe(true)
  })

  it('applies a new config and keeps the old one when a config is rejected', async () => {
    const p = await ports()
    const rec = recorder()
    await using proxy = await MeshProxy.start({ resources: docs(p), logger: rec.logger, onEvent: rec.onEvent })

    expect(await proxy.apply(docs(p, 'v2'))).toBe(2)
    expect(proxy.version).toBe(2)
    expect(seen(await h1({ port: p.outbound, host: 'orders' })).instance).toBe('v2')

    // A reference to a Service that does not exist: rejected by validation.
    const bad = docs(p, 'v1')
    bad[4] = httpRouteDoc('orders-split', 'orders', [{ backendRefs: [{ name: 'nope' }] }])
    const error = await proxy.apply(bad).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toMatch(/^resources: document 5 \(HTTPRoute "orders-split"\): .*nope/)
    expect(proxy.version).toBe(2)
    expect(seen(await h1({ port: p.outbound, host: 'orders' })).instance).toBe('v2')

    // YAML text goes through the same path and names its source.
    await expect(proxy.apply('kind: [', { source: 'inline.yaml' })).rejects.toThrow(/^inline\.yaml:1:\d+: YAML syntax error/)
    expect(proxy.version).toBe(2)

    expect(rec.events.filter((e) => e.type === 'rejected').map((e) => e.type === 'rejected' && e.trigger)).toEqual(['apply', 'apply'])
    const metrics = parseMetrics((await adminGet(p.admin, '/metrics')).body)
    expect(sum(metrics, 'config_reload_total', { result: 'success' })).toBe(1)
    expect(sum(metrics, 'config_reload_total', { result: 'failure' })).toBe(2)
    expect(sum(metrics, 'config_version')).toBe(2)
  })

  it('keeps the config in force when a new listener cannot bind', async () => {
    const p = await ports()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const taken = (blocker.address() as net.AddressInfo).port
    try {
      await using proxy = await MeshProxy.start({ resources: docs(p), logger: null })
      const moved = docs({ ...p, outbound: taken })
      await expect(proxy.apply(moved)).rejects.toThrow(new RegExp(`^resources: .*cannot listen on 127\\.0\\.0\\.1:${taken}`))
      expect(proxy.version).toBe(1)
      expect(proxy.listeners.outbound).toBe(`127.0.0.1:${p.outbound}`)
      expect((await h1({ port: p.outbound, host: 'orders' })).status).toBe(200)
    } finally {
      blocker.close()
    }
  })

  it('disposes with await using and refuses use after close', async () => {
    const p = await ports()
    let escaped: MeshProxy | undefined
    {
      await using proxy = await MeshProxy.start({ resources: docs(p), logger: null })
      escaped = proxy
      expect((await adminGet(p.admin, '/ready')).status).toBe(200)
    }
    expect(escaped.running).toBe(false)
    expect(await canListen(p.admin)).toBe(true)
    expect(await canListen(p.outbound)).toBe(true)
    await expect(escaped.apply(docs(p))).rejects.toThrow('cannot apply to a closed MeshProxy; start a new one')
    expect(() => escaped.listeners).toThrow(/closed MeshProxy/)
    // Idempotent: closing again resolves at once.
    await escaped.close()
    expect(await escaped.reload()).toMatchObject({ ok: false, error: 'the proxy is closed' })
  })

  it('rejects a bad config at start and leaves nothing running', async () => {
    const p = await ports()
    const bad = docs(p)
    bad[1] = { ...serviceDoc('orders-v1', [appV1.port]), endpoints: [{ address: 'localhost' }] }
    const error = await MeshProxy.start({ resources: bad, logger: null }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).message).toBe(
      'resources: document 2 (Service "orders-v1"): endpoints[0].address: expected HOST:PORT, got "localhost"',
    )
    expect(await canListen(p.admin)).toBe(true)
    expect(await canListen(p.outbound)).toBe(true)
  })

  it('fails to start when the admin port is taken, releasing the data-plane listeners', async () => {
    const p = await ports()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(p.admin, '127.0.0.1', resolve))
    try {
      await expect(MeshProxy.start({ resources: docs(p), logger: null })).rejects.toThrow(
        `resources: admin.listen: cannot listen on 127.0.0.1:${p.admin}: address already in use`,
      )
      expect(await canListen(p.outbound)).toBe(true)
      expect(await canListen(p.inbound)).toBe(true)
    } finally {
      blocker.close()
    }
  })

  it('runs without an admin server when adminListen is off', async () => {
    const p = await ports()
    await using proxy = await MeshProxy.start({ resources: docs(p), adminListen: 'off', logger: null })
    expect(proxy.adminAddress).toBeUndefined()
    expect(await canListen(p.admin)).toBe(true)
    expect((await h1({ port: p.outbound, host: 'orders' })).status).toBe(200)
  })

  it('warns that workerThreads and admin.listen need a restart, and applies the rest', async () => {
    const p = await ports()
    const rec = recorder()
    await using proxy = await MeshProxy.start({ resources: docs(p), logger: rec.logger, onEvent: rec.onEvent })
    const next = docs(p, 'v2')
    Object.assign(next[0] as Doc, { workerThreads: 2, admin: { listen: '127.0.0.1:1' } })
    expect(await proxy.apply(next)).toBe(2)
    expect(rec.lines).toContain(
      'resources: Proxy "e2e": workerThreads changed from 1 to 2; takes effect after a restart',
    )
    expect(rec.lines).toContain(
      `resources: Proxy "e2e": admin.listen changed from 127.0.0.1:${p.admin} to 127.0.0.1:1; takes effect after a restart`,
    )
    expect(proxy.adminAddress).toBe(`127.0.0.1:${p.admin}`)
    expect(seen(await h1({ port: p.outbound, host: 'orders' })).instance).toBe('v2')
  })

  it('gives two embedded proxies their own engines and metrics', async () => {
    const [pa, pb] = [await ports(), await ports()]
    await using a = await MeshProxy.start({ resources: docs(pa), logger: null })
    await using b = await MeshProxy.start({ resources: docs(pb, 'v2'), logger: null })
    await b.apply(docs(pb, 'v1'))
    for (let i = 0; i < 3; i++) expect((await h1({ port: pa.outbound, host: 'orders' })).status).toBe(200)

    const ma = parseMetrics((await adminGet(pa.admin, '/metrics')).body)
    const mb = parseMetrics((await adminGet(pb.admin, '/metrics')).body)
    expect(sum(ma, 'config_version')).toBe(1)
    expect(sum(mb, 'config_version')).toBe(2)
    expect(sum(ma, 'request_total', { direction: 'outbound' })).toBe(3)
    expect(sum(mb, 'request_total', { direction: 'outbound' })).toBe(0)
    // Process metrics come from each proxy's own registry, so both have them.
    expect(sum(ma, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(sum(mb, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
  })

  it('checks its options', async () => {
    await expect(MeshProxy.start({})).rejects.toThrow('MeshProxy.start needs exactly one of configFile, config or resources')
    await expect(MeshProxy.start({ config: '', resources: [] })).rejects.toThrow(/exactly one/)
    await expect(MeshProxy.start({ resources: [], workerThreads: 0 })).rejects.toThrow(/workerThreads/)
  })
})
