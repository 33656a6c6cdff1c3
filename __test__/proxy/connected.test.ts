/**
 * MeshProxy in connected mode, embedded in this process, against a fake control plane
 * (real gRPC) and real HTTP apps: readiness from the first push, routing from pushes,
 * NACKs that keep the old config, riding out a control plane outage, registration with
 * heartbeats and re-registration, deregistration on close, and the local Proxy file.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import * as grpc from '@grpc/grpc-js'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { ConfigError, MeshProxy, type MeshProxyEvent, type MeshProxyOptions } from '../../src/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { FakeControlPlane } from '../support/fake-control-plane.js'
import { h1, seen } from '../support/http.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { freePorts, sleep, waitFor } from '../support/ports.js'
import { httpRouteDoc, proxyDoc, renderYaml, serviceDoc, type Doc } from '../support/resources.js'

let appV1: HttpApp
let appV2: HttpApp
let plane: FakeControlPlane
const proxies: MeshProxy[] = []

beforeAll(async () => {
  appV1 = await startHttpApp({ name: 'v1' })
  appV2 = await startHttpApp({ name: 'v2' })
})

afterAll(async () => {
  await appV1?.close()
  await appV2?.close()
})

beforeEach(async () => {
  plane = await FakeControlPlane.start({ leaseTtlMs: 1_500 })
})

afterEach(async () => {
  for (const proxy of proxies.splice(0)) await proxy.close({ drainTimeoutMs: 0 })
  await plane.close()
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

/** The local Proxy of service `e2e` (the name proxyDoc uses). */
function localProxy(p: Ports, inboundPort: number = p.inbound): Doc {
  return proxyDoc({ adminPort: p.admin, outboundPort: p.outbound, inbound: [{ port: inboundPort, forwardTo: appV1.address, protocol: 'http1' }] })
}

/** Mesh state: Service `orders` routed to orders-v1 or orders-v2. */
function mesh(backend: 'v1' | 'v2'): Doc[] {
  return [
    serviceDoc('orders', [appV1.port]),
    serviceDoc('orders-v1', [appV1.port]),
    serviceDoc('orders-v2', [appV2.port]),
    httpRouteDoc('orders-split', 'orders', [{ backendRefs: [{ name: `orders-${backend}` }] }]),
  ]
}

function recorder() {
  const lines: string[] = []
  const events: MeshProxyEvent[] = []
  return { lines, events, logger: (line: string) => lines.push(line), onEvent: (e: MeshProxyEvent) => events.push(e) }
}

async function startConnected(p: Ports, options: Partial<MeshProxyOptions> = {}, controlPlane: Partial<NonNullable<MeshProxyOptions['controlPlane']>> = {}) {
  const rec = recorder()
  const proxy = await MeshProxy.start({
    resources: [localProxy(p)],
    logger: rec.logger,
    onEvent: rec.onEvent,
    ...options,
    controlPlane: {
      address: plane.address,
      name: 'e2e',
      token: plane.token,
      backoff: { baseMs: 50, capMs: 200 },
      ...controlPlane,
    },
  })
  proxies.push(proxy)
  return { proxy, ...rec }
}

async function instanceVia(outboundPort: number, host = 'orders'): Promise<string> {
  const reply = await h1({ port: outboundPort, host, path: '/' })
  return seen(reply).instance
}

const ready = async (p: Ports) => (await adminGet(p.admin, '/ready')).status

describe('MeshProxy connected mode', () => {
  it('binds at start, is ready from the first push on, and routes by it', async () => {
    plane.autoPush = false
    const p = await ports()
    const { proxy, lines, events } = await startConnected(p)

    // Ports are bound before anything is pushed.
    expect(proxy.listeners.outbound).toBe(`127.0.0.1:${p.outbound}`)
    expect(proxy.listeners.inbound).toEqual([`127.0.0.1:${p.inbound}`])
    expect(await ready(p)).toBe(503)
    const before = JSON.parse((await adminGet(p.admin, '/config')).body)
    expect(before).toMatchObject({
      version: 1,
      source: `control-plane ${plane.address}`,
      controlPlane: { address: plane.address, service: 'e2e', namespace: 'default', connected: false, version: null },
    })

    const stream = await plane.waitForStream()
    expect(stream.hello).toMatchObject({ service: 'e2e', namespace: 'default', lastAckedVersion: '0', proxyId: proxy.proxyId })
    expect(proxy.proxyId).toMatch(new RegExp(`^[A-Za-z0-9.-]+-${process.pid}-[0-9a-f]{8}$`))
    expect(await ready(p)).toBe(503)

    const reply = await stream.push({ resources: mesh('v1'), version: '7' })
    expect(reply).toMatchObject({ type: 'ack', version: '7' })
    expect(await ready(p)).toBe(200)
    expect(await instanceVia(p.outbound)).toBe('v1')
    expect(proxy.version).toBe(2)
    expect(proxy.controlPlaneVersion).toBe('7')
    expect(lines).toContain('control-plane version 7 applied (config version 2)')
    expect(lines.some((l) => l.startsWith(`connected to control plane ${plane.address} as default/e2e (proxy id ${proxy.proxyId})`))).toBe(true)
    expect(events).toContainEqual({ type: 'connected', controlPlane: plane.address, proxyId: proxy.proxyId })
    expect(events).toContainEqual({ type: 'applied', trigger: 'control-plane', version: 2, source: `control-plane ${plane.address}`, controlPlaneVersion: '7' })

    const after = JSON.parse((await adminGet(p.admin, '/config')).body)
    expect(after).toMatchObject({ version: 2, source: `control-plane ${plane.address}`, controlPlane: { connected: true, version: '7' } })
    expect(after.resources.map((r: Doc) => `${r.kind}/${r.name}`)).toEqual([
      'HTTPRoute/orders-split',
      'Service/orders',
      'Service/orders-v1',
      'Service/orders-v2',
      'Proxy/e2e',
    ])
  })

  it('a route change push shifts traffic; an unchanged push leaves the engine alone', async () => {
    const p = await ports()
    plane.state = mesh('v1')
    const { proxy, lines } = await startConnected(p)
    await waitFor('ready', async () => (await ready(p)) === 200)
    expect(await instanceVia(p.outbound)).toBe('v1')

    const [reply] = await plane.publish(mesh('v2'))
    expect(reply?.type).toBe('ack')
    expect(await instanceVia(p.outbound)).toBe('v2')
    const version = proxy.version

    const [same] = await plane.publish(mesh('v2'))
    expect(same).toMatchObject({ type: 'ack' })
    expect(proxy.version).toBe(version)
    expect(lines).toContain(`control-plane version ${same?.version}: no change for this proxy; config version ${version} stays in force`)
  })

  it('a bad push is NACKed with the error and the old config keeps serving', async () => {
    const p = await ports()
    plane.state = mesh('v1')
    const { proxy, lines, events } = await startConnected(p)
    await waitFor('ready', async () => (await ready(p)) === 200)
    const version = proxy.version

    const bad = [...mesh('v2'), httpRouteDoc('broken', 'orders', [{ backendRefs: [{ name: 'nope' }] }]), serviceDoc('weird', [appV1.port], { port: 0 })]
    const [reply] = await plane.publish(bad)
    expect(reply).toMatchObject({ type: 'nack' })
    const error = reply?.type === 'nack' ? reply.error : ''
    expect(error).toBe('control-plane: document 1 (HTTPRoute "broken"): rules[0].backendRefs[0].name: unknown Service "default/nope" (and 1 more)')
    expect(proxy.version).toBe(version)
    expect(await instanceVia(p.outbound)).toBe('v1')
    expect(await ready(p)).toBe(200)
    expect(lines).toContain(`control-plane version ${reply?.version} rejected: ${error}; config version ${version} stays in force`)
    const rejected = events.find((e) => e.type === 'rejected')
    expect(rejected).toMatchObject({ trigger: 'control-plane', controlPlaneVersion: reply?.version, version })
    expect(rejected?.type === 'rejected' && rejected.errors).toHaveLength(2)

    // The next good push applies in full.
    const [good] = await plane.publish(mesh('v2'))
    expect(good?.type).toBe('ack')
    expect(await instanceVia(p.outbound)).toBe('v2')
  })

  it('an engine refusal is a NACK too', async () => {
    const p = await ports()
    plane.autoPush = false
    const { proxy } = await startConnected(p)
    const stream = await plane.waitForStream()
    await stream.push({ resources: mesh('v1') })
    // Valid to the resource validator (JavaScript's regex parser), too large for the engine's.
    const huge = httpRouteDoc('huge', 'orders-v1', [{ matches: [{ path: { type: 'RegularExpression', value: '/(a{1000}){1000}' } }] }])
    const reply = await stream.push({ resources: [...mesh('v1'), huge] })
    expect(reply).toMatchObject({ type: 'nack' })
    expect(reply.type === 'nack' && reply.error).toMatch(/^control-plane: HTTPRoute "default\/huge": rules\[0\]\.matches\[0\]\.path\.value: regular expression too large/)
    expect(proxy.version).toBe(2)
    expect(await instanceVia(p.outbound)).toBe('v1')
  })

  it('keeps serving while the control plane is away, then reconnects and resyncs', async () => {
    const p = await ports()
    plane.state = mesh('v1')
    const { proxy, events, lines } = await startConnected(p)
    await waitFor('ready', async () => (await ready(p)) === 200)
    const acked = proxy.controlPlaneVersion

    await plane.stop()
    await waitFor('a disconnected event', () => events.some((e) => e.type === 'disconnected'))
    for (let i = 0; i < 5; i++) expect(await instanceVia(p.outbound)).toBe('v1')
    expect(await ready(p)).toBe(200)
    expect(lines.some((l) => new RegExp(`^disconnected from control plane ${plane.address}: .*; reconnecting in \\d+ms$`).test(l))).toBe(true)
    expect(JSON.parse((await adminGet(p.admin, '/config')).body).controlPlane).toMatchObject({ connected: false, version: acked })

    // Meanwhile the mesh changed; on return the new stream says what it runs and gets the new state.
    plane.state = mesh('v2')
    plane.nextVersion()
    const streamsBefore = plane.streams.length
    await plane.restart()
    const stream = await plane.waitForStream(streamsBefore)
    expect(stream.hello?.lastAckedVersion).toBe(acked)
    await waitFor('traffic on v2', async () => (await instanceVia(p.outbound)) === 'v2')
    expect(proxy.controlPlaneVersion).not.toBe(acked)
    expect(await ready(p)).toBe(200)
  })

  it('registers the bound inbound port with the local address, heartbeats, and re-registers after NOT_FOUND', async () => {
    const p = await ports()
    const { proxy, events } = await startConnected(p, { resources: [localProxy(p, 0)] })
    const boundPort = Number(proxy.listeners.inbound[0]?.split(':')[1])
    expect(boundPort).toBeGreaterThan(0)

    const register = await plane.waitForCall('Register')
    expect(register.token).toBe(plane.token)
    expect(register.request).toEqual({
      service: 'e2e',
      namespace: 'default',
      proxyId: proxy.proxyId,
      endpoints: [{ address: '127.0.0.1', port: boundPort, protocol: 'http1', labels: {}, weight: 0, mtls: 'off' }],
    })
    await waitFor('the registered event', () => events.find((e) => e.type === 'registered'))
    expect(events).toContainEqual({ type: 'registered', controlPlane: plane.address, endpoints: [`127.0.0.1:${boundPort}`], ttlMs: 1_500 })

    await plane.waitForCall('Heartbeat', 2, 5_000)
    plane.expireLeases()
    await plane.waitForCall('Register', 2, 5_000)
    expect(plane.calls('Register')[1]?.request).toEqual(register.request)
    await waitFor('a lease again', () => plane.leases.size === 1)
    const stream = await plane.waitForStream()
    expect(stream.hello?.endpoints).toEqual([{ address: '127.0.0.1', port: boundPort, protocol: 'http1', labels: {}, weight: 0, mtls: 'off' }])

    // Pushes keep the ephemeral port bound (listeners are reconciled by configured address).
    expect(await stream.push({ resources: mesh('v1') })).toMatchObject({ type: 'ack' })
    expect(await stream.push({ resources: mesh('v2') })).toMatchObject({ type: 'ack' })
    expect(proxy.listeners.inbound).toEqual([`127.0.0.1:${boundPort}`])
    expect(plane.calls('Register')).toHaveLength(2)
  })

  it('registers the advertise address and asks for the wanted Services', async () => {
    const p = await ports()
    const { proxy } = await startConnected(p, {}, { advertiseAddress: '10.20.30.40', services: ['orders', 'payments.shop'], namespace: 'default' })
    const register = await plane.waitForCall('Register')
    expect(register.request).toMatchObject({ endpoints: [{ address: '10.20.30.40', port: p.inbound, protocol: 'http1' }] })
    const stream = await plane.waitForStream()
    expect(stream.hello?.wants).toEqual([
      { kind: 'Service', namespace: 'default', name: 'orders' },
      { kind: 'Service', namespace: 'shop', name: 'payments' },
    ])
    expect(proxy.proxyId).toBe(stream.hello?.proxyId)
  })

  it('close() deregisters before draining, and stops talking to the control plane', async () => {
    const p = await ports()
    plane.state = mesh('v1')
    const { proxy, lines } = await startConnected(p)
    await waitFor('a lease', () => plane.leases.size === 1)
    const leaseId = [...plane.leases.keys()][0]
    await proxy.close({ drainTimeoutMs: 0 })
    expect(plane.calls('Deregister').map((c) => c.request)).toEqual([{ leaseId }])
    expect(plane.leases.size).toBe(0)
    expect(lines).toContain(`deregistered 127.0.0.1:${p.inbound} (http1)`)
    const calls = plane.registryCalls.length
    await waitFor('the stream to end', () => plane.openStreams.length === 0)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(plane.registryCalls).toHaveLength(calls)
  })

  it('close() does not wait long for an absent control plane', async () => {
    const p = await ports()
    const { proxy } = await startConnected(p, {}, { deregisterTimeoutMs: 300 })
    await waitFor('a lease', () => plane.leases.size === 1)
    await plane.stop()
    const started = Date.now()
    await proxy.close({ drainTimeoutMs: 0 })
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('a change of the local Proxy file is recombined with the pushed resources and re-registered', async () => {
    const p = await ports()
    const [inbound2] = (await freePorts(1)) as [number]
    const file = path.join(makeTempDir('mesh-connected-'), 'proxy.yaml')
    fs.writeFileSync(file, renderYaml([localProxy(p)]))
    plane.state = mesh('v1')
    const { proxy, lines } = await startConnected(p, { resources: undefined, configFile: file, watch: false })
    await waitFor('ready', async () => (await ready(p)) === 200)
    await plane.waitForCall('Register')
    const version = proxy.version

    fs.writeFileSync(file, renderYaml([localProxy(p, inbound2)]))
    const result = await proxy.reload()
    expect(result).toEqual({ ok: true, version: version + 1, changed: true })
    expect(proxy.listeners.inbound).toEqual([`127.0.0.1:${inbound2}`])
    expect(await instanceVia(p.outbound)).toBe('v1') // the pushed routes are still there
    await plane.waitForCall('Register', 2)
    expect(plane.calls('Register')[1]?.request).toMatchObject({ endpoints: [{ port: inbound2 }] })
    expect(lines).toContain(`reload of ${file}: config version ${version + 1} in force`)

    // A file that names another service is rejected; the config in force stays.
    fs.writeFileSync(file, renderYaml([{ ...localProxy(p, inbound2), name: 'other' }]))
    const bad = await proxy.reload()
    expect(bad).toMatchObject({ ok: false, version: version + 1 })
    expect(bad.ok === false && bad.error).toBe(
      `${file}: document 1 (Proxy "other"): name: expected "e2e", the service this proxy joins the mesh as (--name), got "other"`,
    )
  })

  it('refuses apply() in connected mode', async () => {
    const p = await ports()
    const { proxy } = await startConnected(p)
    await expect(proxy.apply(mesh('v1'))).rejects.toThrow('apply() is not available in connected mode: resources come from the control plane (meshctl apply)')
  })

  it('refuses a local file with other kinds, a foreign name, or a port in use, in one line', async () => {
    const p = await ports()
    const start = (resources: Doc[]) =>
      MeshProxy.start({ resources, source: 'proxy.yaml', logger: null, controlPlane: { address: plane.address, name: 'e2e', token: 't' } })
    await expect(start([localProxy(p), serviceDoc('orders', [1])])).rejects.toThrow(
      'proxy.yaml: document 2 (Service "orders"): connected mode takes only the Proxy resource from this file; Service resources come from the control plane (meshctl apply)',
    )
    await expect(start([{ ...localProxy(p), namespace: 'shop' }])).rejects.toThrow(/^proxy\.yaml: document 1 \(Proxy "e2e"\): namespace: expected "default"/)

    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(p.outbound, '127.0.0.1', resolve))
    try {
      const err = await start([localProxy(p)]).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as Error).message).toMatch(new RegExp(`^proxy\\.yaml: outbound\\.listen: .*127\\.0\\.0\\.1:${p.outbound}`))
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
    // Nothing was registered by the proxies that failed to start.
    expect(plane.calls('Register')).toEqual([])
  })

  it('checks its options', async () => {
    const start = (cp: Partial<NonNullable<MeshProxyOptions['controlPlane']>>) =>
      MeshProxy.start({ logger: null, controlPlane: { address: '127.0.0.1:7443', name: 'web', token: 't', ...cp } })
    await expect(start({ address: 'nope' })).rejects.toThrow('controlPlane.address: expected HOST:PORT, got "nope"')
    await expect(start({ name: 'Web_1' })).rejects.toThrow(/^controlPlane\.name: expected a DNS label/)
    await expect(start({ token: '' })).rejects.toThrow('controlPlane.token: expected a join token (non-empty, no spaces)')
    await expect(start({ advertiseAddress: 'host.local' })).rejects.toThrow('controlPlane.advertiseAddress: expected an IP address, got "host.local"')
    await expect(start({ services: ['a.b.c'] })).rejects.toThrow('controlPlane.services[0]: expected NAME or NAME.NAMESPACE (DNS labels), got "a.b.c"')
    await expect(MeshProxy.start({ logger: null, config: '', resources: [], controlPlane: { address: '127.0.0.1:7443', name: 'web', token: 't' } })).rejects.toThrow(
      'MeshProxy.start takes at most one of configFile, config or resources with controlPlane',
    )
  })

  it('keeps /ready 503 and retries while the token is refused', async () => {
    const p = await ports()
    plane.state = mesh('v1')
    const { lines } = await startConnected(p, {}, { token: 'wrong' })
    await waitFor('two refusals', () => lines.filter((l) => l.includes('UNAUTHENTICATED')).length >= 2)
    expect(lines.some((l) => /^cannot reach control plane .*: missing or unknown join token \(UNAUTHENTICATED\); retrying in \d+ms$/.test(l))).toBe(true)
    expect(await ready(p)).toBe(503)
    expect(plane.calls('Register').every((c) => c.code === grpc.status.UNAUTHENTICATED)).toBe(true)
  })
})

describe('MeshProxy connected mode: workload identity', () => {
  it('is not ready without a workload certificate, however long mesh-control refuses one', async () => {
    plane.certifyFailure = grpc.status.UNAVAILABLE
    plane.state = mesh('v1')
    const p = await ports()
    const { proxy, lines } = await startConnected(p)
    await waitFor('a push applied', () => proxy.controlPlaneVersion !== undefined)
    await waitFor('two refused Certify calls', () => plane.certifyCalls.filter((c) => c.code === grpc.status.UNAVAILABLE).length >= 2)
    expect(await ready(p)).toBe(503)
    expect(lines.some((l) => /^certificate request failed: .*UNAVAILABLE.*; no certificate yet; retrying in /.test(l))).toBe(true)
    // Clients reach registered endpoints over mTLS: nothing is registered before a certificate.
    expect(plane.calls('Register')).toEqual([])

    plane.certifyFailure = undefined
    await waitFor('ready once certified', async () => ((await ready(p)) === 200 ? true : undefined))
    await plane.waitForCall('Register')
  })

  it('holds a certificate for its SPIFFE id, renews it at about 70 % of its life, and never shows the key', async () => {
    plane.certificateTtlSeconds = 2 // with the CA's 30 s backdating, renewals come every second
    plane.state = mesh('v1')
    const p = await ports()
    const { proxy, lines, events } = await startConnected(p)
    await waitFor('ready', async () => ((await ready(p)) === 200 ? true : undefined))
    await waitFor('three certificates installed', () => events.filter((e) => e.type === 'certified').length >= 3, { timeoutMs: 8_000 })
    expect(plane.certifyCalls.every((c) => c.service === 'e2e' && c.namespace === 'default')).toBe(true)

    const certified = events.filter((e): e is Extract<MeshProxyEvent, { type: 'certified' }> => e.type === 'certified')
    expect(certified.length).toBeGreaterThanOrEqual(3)
    expect(new Set(certified.map((e) => e.spiffeId))).toEqual(new Set(['spiffe://mesh.local/ns/default/sa/e2e']))
    const view = JSON.parse((await adminGet(p.admin, '/config')).body) as { controlPlane: { identity: { spiffeId: string; serial: string } } }
    expect(view.controlPlane.identity.spiffeId).toBe('spiffe://mesh.local/ns/default/sa/e2e')
    expect(view.controlPlane.identity.serial).toMatch(/^[0-9a-f]+$/)
    expect(lines.filter((l) => l.startsWith('certificate for spiffe://mesh.local/ns/default/sa/e2e valid until ')).length).toBeGreaterThanOrEqual(3)
    // Renewals swap the certificate without a pause in readiness or traffic.
    expect(await ready(p)).toBe(200)
    expect(await instanceVia(p.outbound)).toBe('v1')

    // The key lives in the engine binding: nothing JS can see or log holds it.
    const visible = [JSON.stringify(view), JSON.stringify(proxy.config), JSON.stringify(events), lines.join('\n')].join('\n')
    expect(visible).not.toMatch(/PRIVATE KEY/)
  })

  it('renews at once when a push announces another authority, installs the new chain and bundle, and keeps its certificate when that fails', async () => {
    plane.state = mesh('v1')
    const p = await ports()
    const { proxy, lines } = await startConnected(p)
    await waitFor('ready', async () => ((await ready(p)) === 200 ? true : undefined))
    const first = await identityView(p)
    const oldCa = plane.authority
    expect(first).toMatchObject({ authorityId: plane.authorityId, issuer: oldCa.certificate.subject })
    expect(plane.certifyCalls.at(-1)).toMatchObject({ proxyId: proxy.proxyId, code: grpc.status.OK })
    const certifyCount = () => plane.certifyCalls.length

    // The same authority announced again (any push carries it): nothing to do. The
    // certificate lives an hour, so only an announcement can bring a renewal here.
    let calls = certifyCount()
    await plane.publish(mesh('v2'))
    await sleep(1_500)
    expect(certifyCount()).toBe(calls)

    // Step 1 of a rotation: the next root joins the bundle. The push says so; the proxy
    // renews within the jitter bound, and trusts both roots from then on.
    const nextCa = FakeControlPlane.newAuthority()
    plane.trustBundlePem = oldCa.rootsPem + nextCa.rootsPem
    const added = plane.authorityId
    expect(added).not.toBe(first.authorityId)
    await plane.publish(mesh('v1'))
    const renewed = await waitFor('a certificate under the new authority', async () => {
      const view = await identityView(p)
      return view.authorityId === added ? view : undefined
    }, { timeoutMs: 5_000 })
    expect(renewed.serial).not.toBe(first.serial)
    expect(renewed.issuer).toBe(oldCa.certificate.subject)
    const announced = new RegExp(
      `^control plane authority changed from ${first.authorityId.slice(0, 12)} to ${added.slice(0, 12)}: ` +
        `renewing the certificate in \\d+ms \\(the certificate in force serves until then\\)$`,
    )
    expect(lines.filter((l) => announced.test(l)), lines.join('\n')).toHaveLength(1)
    expect(certifyCount()).toBe(calls + 1)

    // Step 2: the next root signs. The new chain verifies against the bundle that came with it.
    plane.authority = nextCa
    plane.trustBundlePem = nextCa.rootsPem + oldCa.rootsPem
    calls = certifyCount()
    await plane.publish(mesh('v2'))
    const signedByNext = await waitFor('a certificate of the next root', async () => {
      const view = await identityView(p)
      return view.issuer === nextCa.certificate.subject ? view : undefined
    }, { timeoutMs: 5_000 })
    expect(signedByNext.authorityId).toBe(plane.authorityId)
    expect(certifyCount()).toBe(calls + 1)

    // Step 3 while mesh-control refuses: the certificate in force stays, traffic flows,
    // and the proxy retries until it gets one (the announcement arrives on a reconnect).
    plane.certifyFailure = grpc.status.UNAVAILABLE
    plane.trustBundlePem = nextCa.rootsPem
    const finalId = plane.authorityId
    plane.dropStreams()
    await waitFor('two refused Certify calls', () => plane.certifyCalls.filter((c) => c.code === grpc.status.UNAVAILABLE).length >= 2, { timeoutMs: 5_000 })
    expect(await identityView(p)).toEqual(signedByNext)
    expect(await ready(p)).toBe(200)
    expect(await instanceVia(p.outbound)).toBe('v2')
    expect(lines.some((l) => /^certificate request failed: .*UNAVAILABLE.*; the certificate in force is valid until \S+; retrying in /.test(l))).toBe(true)
    plane.certifyFailure = undefined
    const final = await waitFor('a certificate under the final authority', async () => {
      const view = await identityView(p)
      return view.authorityId === finalId ? view : undefined
    }, { timeoutMs: 5_000 })
    expect(final.issuer).toBe(nextCa.certificate.subject)
    // Every Certify named this proxy, so mesh-control can tell who renewed.
    expect(new Set(plane.certifyCalls.map((c) => c.proxyId))).toEqual(new Set([proxy.proxyId]))
  })
})

interface IdentityView {
  spiffeId: string
  serial: string
  notAfter: string
  issuer: string
  authorityId: string
}

async function identityView(p: Ports): Promise<IdentityView> {
  const view = JSON.parse((await adminGet(p.admin, '/config')).body) as { controlPlane: { identity: IdentityView } }
  return view.controlPlane.identity
}
