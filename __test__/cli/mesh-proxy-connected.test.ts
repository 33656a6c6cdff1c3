/**
 * `mesh-proxy --control-plane ...` as a user runs it: the real process (bin/mesh-proxy.js,
 * compiled dist/) against a fake control plane and real HTTP apps. Flags and their one-line
 * errors, readiness from the first push, routing by pushes, NACKs, a control plane outage
 * and return, registration and heartbeats, SIGTERM deregistering before the drain.
 */
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { parseProxyArgs, UsageError } from '../../src/cli/args.js'
import type { RegisterRequest__Output } from '../../src/control/proto.js'
import { startHttpApp, type HttpApp, type SeenRequest } from '../support/apps.js'
import { FakeControlPlane } from '../support/fake-control-plane.js'
import { h1, seen } from '../support/http.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { freePorts, waitFor } from '../support/ports.js'
import { httpRouteDoc, proxyDoc, renderYaml, serviceDoc, type Doc } from '../support/resources.js'
import { CliProcess, cleanEnv, hasStackTrace, runCliWithEnv } from './cli-process.js'

function expectOneLineFailure(result: { code: number | null; stderr: string }, code: number): string {
  expect(result.code, result.stderr).toBe(code)
  expect(hasStackTrace(result.stderr)).toBe(false)
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  expect(lines, result.stderr).toHaveLength(1)
  return (lines[0] as string).replace(/^mesh-proxy: /, '')
}

describe('mesh-proxy connected-mode flags', () => {
  const base = ['--control-plane', '127.0.0.1:7443', '--name', 'web', '--token', 't0k3n']

  it('parses the connected-mode flags', () => {
    expect(
      parseProxyArgs(
        [...base, '--namespace=shop', '--config', 'proxy.yaml', '--advertise-address', '10.0.0.5', '--services', 'orders, payments.billing'],
        {},
      ),
    ).toEqual({
      kind: 'run',
      configFile: 'proxy.yaml',
      controlPlane: {
        address: '127.0.0.1:7443',
        name: 'web',
        namespace: 'shop',
        token: 't0k3n',
        advertiseAddress: '10.0.0.5',
        services: ['orders', 'payments.billing'],
      },
      watch: true,
    })
    expect(parseProxyArgs(['--control-plane', 'mesh-control.internal:7443', '--name', 'web'], { MESH_TOKEN: 'from-env' })).toMatchObject({
      controlPlane: { address: 'mesh-control.internal:7443', namespace: 'default', token: 'from-env', services: [] },
    })
    expect(parseProxyArgs([...base], { MESH_TOKEN: 'from-env' })).toMatchObject({ controlPlane: { token: 't0k3n' } })
    expect(parseProxyArgs(['--control-plane', '[::1]:7443', '--name', 'web', '--token=x'], {})).toMatchObject({
      controlPlane: { address: '[::1]:7443' },
    })
  })

  it('answers every mistake in one line', () => {
    const cases: [string[], string][] = [
      [['--control-plane', 'nowhere', '--name', 'web', '--token', 't'], '--control-plane: expected HOST:PORT, got "nowhere"'],
      [['--control-plane', '127.0.0.1:0', '--name', 'web', '--token', 't'], '--control-plane: expected HOST:PORT, got "127.0.0.1:0"'],
      [['--control-plane', '127.0.0.1:7443', '--name', 'Web_1', '--token', 't'], '--name: expected a DNS label (lower-case letters, digits and "-", at most 63 characters), got "Web_1"'],
      [['--control-plane', '127.0.0.1:7443', '--token', 't'], "connected mode needs --name SERVICE (the workload's service name)"],
      [['--control-plane', '127.0.0.1:7443', '--name', 'web'], 'connected mode needs a join token: --token TOKEN or the MESH_TOKEN environment variable'],
      [[...base, '--namespace', 'Shop'], '--namespace: expected a DNS label (lower-case letters, digits and "-", at most 63 characters), got "Shop"'],
      [[...base, '--token='], '--token: expected a join token (non-empty, no spaces)'],
      [[...base, '--advertise-address', 'myhost'], '--advertise-address: expected an IP address, got "myhost"'],
      [[...base, '--services', 'a,,b'], '--services: expected NAME or NAME.NAMESPACE (DNS labels), comma-separated, got ""'],
      [['--token', 't', '--config', 'a.yaml'], '--token needs --control-plane HOST:PORT (connected mode)'],
      [['--control-plane'], '--control-plane needs a value'],
    ]
    for (const [argv, message] of cases) expect(() => parseProxyArgs(argv, {}), argv.join(' ')).toThrow(new UsageError(message))
  })

  it('exits 2 with one line on bad flags, and takes the token from MESH_TOKEN', async () => {
    const env = cleanEnv()
    expect(expectOneLineFailure(await runCliWithEnv(['--control-plane', 'nowhere', '--name', 'web', '--token', 't'], env), 2)).toBe(
      '--control-plane: expected HOST:PORT, got "nowhere"',
    )
    expect(expectOneLineFailure(await runCliWithEnv(['--control-plane', '127.0.0.1:7443', '--name', 'web'], env), 2)).toBe(
      'connected mode needs a join token: --token TOKEN or the MESH_TOKEN environment variable',
    )
    // With MESH_TOKEN the flags are complete; the (missing) local file is then the problem, exit 1.
    const missing = path.join(makeTempDir('mesh-cli-'), 'missing.yaml')
    const result = await runCliWithEnv(['--control-plane', '127.0.0.1:7443', '--name', 'web', '--config', missing], cleanEnv({ MESH_TOKEN: 'tok' }))
    expect(expectOneLineFailure(result, 1)).toBe(`${missing}: cannot read config file: no such file`)
  })

  it('refuses a local file with more than the Proxy, naming the file and document', async () => {
    const [admin] = (await freePorts(1)) as [number]
    const file = path.join(makeTempDir('mesh-cli-'), 'proxy.yaml')
    fs.writeFileSync(file, renderYaml([{ ...proxyDoc({ adminPort: admin, outboundPort: 0 }), name: 'web' }, serviceDoc('orders', [8080])]))
    const result = await runCliWithEnv([...base, '--config', file], cleanEnv())
    expect(expectOneLineFailure(result, 1)).toBe(
      `${file}: document 2 (Service "orders"): connected mode takes only the Proxy resource from this file; Service resources come from the control plane (meshctl apply)`,
    )
  })

  it('--help describes connected mode and MESH_TOKEN', async () => {
    const result = await runCliWithEnv(['--help'], cleanEnv())
    expect(result.code).toBe(0)
    for (const flag of ['--control-plane HOST:PORT', '--name SERVICE', '--namespace NS', '--token TOKEN', 'MESH_TOKEN', '--advertise-address IP', '--services LIST']) {
      expect(result.stdout).toContain(flag)
    }
    expect(result.stdout).not.toContain('not available')
  })
})

describe('mesh-proxy connected to a control plane', () => {
  let appV1: HttpApp
  let appV2: HttpApp
  let plane: FakeControlPlane
  const running: CliProcess[] = []

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
    for (const proc of running.splice(0)) await proc[Symbol.asyncDispose]()
    await plane.close()
  })

  function mesh(backend: 'v1' | 'v2'): Doc[] {
    return [
      serviceDoc('orders', [appV1.port]),
      serviceDoc('orders-v1', [appV1.port]),
      serviceDoc('orders-v2', [appV2.port]),
      httpRouteDoc('orders-split', 'orders', [{ backendRefs: [{ name: `orders-${backend}` }] }]),
    ]
  }

  async function startProxy(extraArgs: string[] = []) {
    const [admin, outbound, inbound] = (await freePorts(3)) as [number, number, number]
    const file = path.join(makeTempDir('mesh-connected-'), 'proxy.yaml')
    const local = proxyDoc({ adminPort: admin, outboundPort: outbound, inbound: [{ port: inbound, forwardTo: appV1.address, protocol: 'http1' }] })
    fs.writeFileSync(file, renderYaml([local]))
    const proc = new CliProcess(['--control-plane', plane.address, '--name', 'e2e', '--config', file, ...extraArgs], {
      env: cleanEnv({ MESH_TOKEN: plane.token }),
    })
    running.push(proc)
    return { proc, admin, outbound, inbound, file }
  }

  const via = async (port: number) => seen(await h1({ port, host: 'orders', path: '/' })).instance

  it('is ready from the first push, routes by pushes, NACKs a bad one and keeps serving', async () => {
    plane.autoPush = false
    const { proc, admin, outbound, inbound } = await startProxy()
    await proc.stderrLine(/^mesh-proxy: waiting for control plane /)
    expect(proc.stderr).toMatch(new RegExp(`waiting for control plane ${plane.address} as default/e2e \\(proxy id \\S+\\); Proxy from \\S+proxy\\.yaml: outbound 127\\.0\\.0\\.1:${outbound}, inbound 127\\.0\\.0\\.1:${inbound} -> ${appV1.address}, admin 127\\.0\\.0\\.1:${admin}`))
    const stream = await plane.waitForStream()
    expect(stream.token).toBe(plane.token)
    expect((await adminGet(admin, '/ready')).status).toBe(503)

    expect(await stream.push({ resources: mesh('v1'), version: '7' })).toMatchObject({ type: 'ack', version: '7' })
    await proc.ready(admin)
    expect(await via(outbound)).toBe('v1')
    await proc.stderrLine(/^mesh-proxy: control-plane version 7 applied \(config version 2\)$/)
    await proc.stderrLine(new RegExp(`^mesh-proxy: connected to control plane ${plane.address} as default/e2e \\(proxy id ${stream.hello?.proxyId}\\)$`))
    const config = JSON.parse((await adminGet(admin, '/config')).body)
    expect(config).toMatchObject({ version: 2, source: `control-plane ${plane.address}`, controlPlane: { version: '7', connected: true } })

    // A route change shifts traffic.
    expect(await stream.push({ resources: mesh('v2'), version: '8' })).toMatchObject({ type: 'ack' })
    expect(await via(outbound)).toBe('v2')

    // A Service with an invalid field is NACKed with the validator's line; v2 keeps serving.
    const bad = mesh('v1').map((d) => (d.name === 'orders-v1' ? { ...d, loadBalancer: 'fastest' } : d))
    const nack = await stream.push({ resources: bad, version: '9' })
    expect(nack).toMatchObject({ type: 'nack', version: '9' })
    const error = nack.type === 'nack' ? nack.error : ''
    expect(error).toBe(
      'control-plane: document 3 (Service "orders-v1"): loadBalancer: expected one of ewma, round_robin, least_request, random, ring_hash; got "fastest"',
    )
    await proc.stderrLine(/^mesh-proxy: control-plane version 9 rejected: /)
    expect(proc.stderr).toContain(`mesh-proxy: control-plane version 9 rejected: ${error}; config version 3 stays in force`)
    expect(await via(outbound)).toBe('v2')
    expect((await adminGet(admin, '/ready')).status).toBe(200)
    expect(hasStackTrace(proc.stderr)).toBe(false)
    expect(plane.violations).toEqual([])
  })

  it('rides out a control plane outage and resyncs when it returns', async () => {
    plane.state = mesh('v1')
    const { proc, admin, outbound } = await startProxy()
    await proc.ready(admin)
    const first = await plane.waitForStream()
    await waitFor('the ACK', () => first.replies.length === 1)
    const acked = first.replies[0]?.version

    await plane.stop()
    await proc.stderrLine(new RegExp(`^mesh-proxy: disconnected from control plane ${plane.address}: .*; reconnecting in \\d+ms$`))
    // Bounded: 20 requests while the control plane is away, every one served.
    for (let i = 0; i < 20; i++) expect(await via(outbound)).toBe('v1')
    expect((await adminGet(admin, '/ready')).status).toBe(200)

    plane.state = mesh('v2')
    plane.nextVersion()
    const before = plane.streams.length
    await plane.restart()
    const again = await plane.waitForStream(before, 15_000)
    expect(again.hello?.lastAckedVersion).toBe(acked)
    expect(again.hello?.proxyId).toBe(first.hello?.proxyId)
    await waitFor('traffic on v2', async () => (await via(outbound)) === 'v2', { timeoutMs: 10_000 })
    expect(proc.stderr.match(/connected to control plane/g)?.length).toBeGreaterThanOrEqual(2)
  })

  it('registers its inbound port, heartbeats, re-registers after NOT_FOUND, and deregisters on SIGTERM before draining', async () => {
    plane.state = mesh('v1')
    const { proc, admin, inbound } = await startProxy(['--advertise-address', '127.0.0.1'])
    await proc.ready(admin)
    const register = await plane.waitForCall('Register')
    expect(register.token).toBe(plane.token)
    expect(register.request as RegisterRequest__Output).toMatchObject({
      service: 'e2e',
      namespace: 'default',
      endpoints: [{ address: '127.0.0.1', port: inbound, protocol: 'http1' }],
    })
    await proc.stderrLine(new RegExp(`^mesh-proxy: registered 127\\.0\\.0\\.1:${inbound} \\(http1\\) as default/e2e; lease ttl 1500ms$`))
    await plane.waitForCall('Heartbeat', 2, 5_000)

    plane.expireLeases()
    await plane.waitForCall('Register', 2, 5_000)
    await proc.stderrLine(/^mesh-proxy: heartbeat: the control plane no longer knows lease \S+: .*\(NOT_FOUND\); registering again$/)
    await waitFor('the new lease', () => plane.leases.size === 1)
    const leaseId = [...plane.leases.keys()][0]

    // A slow request in flight through the inbound listener when SIGTERM arrives.
    const arrived = new Promise<void>((resolve) => {
      const onRequest = (request: SeenRequest) => {
        if (!request.path.includes('delay=1200')) return
        appV1.events.off('request', onRequest)
        resolve()
      }
      appV1.events.on('request', onRequest)
    })
    const slow = h1({ port: inbound, path: '/?delay=1200' }).then((reply) => ({ reply, at: Date.now() }))
    await arrived
    proc.signal('SIGTERM')
    const exit = await proc.waitForExit(10_000)
    const { reply, at: answeredAt } = await slow
    expect(exit).toEqual({ code: 0, signal: null })
    expect(reply.status).toBe(200)
    const deregister = plane.calls('Deregister')
    expect(deregister.map((c) => c.request)).toEqual([{ leaseId }])
    // Withdrawn while the drain still had a request to finish.
    expect(deregister[0]?.at).toBeLessThan(answeredAt)
    expect(proc.stderr).toContain('mesh-proxy: SIGTERM: deregistering, then draining (up to 2s)')
    expect(proc.stderr).toContain(`mesh-proxy: deregistered 127.0.0.1:${inbound} (http1)`)
    expect(proc.stderr.trimEnd().split('\n').at(-1)).toBe('mesh-proxy: stopped')
  })

  it('without the control plane: not ready, retries, and still exits cleanly on SIGTERM', async () => {
    await plane.stop()
    const { proc, admin } = await startProxy()
    await proc.stderrLine(new RegExp(`^mesh-proxy: cannot reach control plane ${plane.address}: .*; retrying in \\d+ms$`))
    expect((await adminGet(admin, '/ready')).status).toBe(503)
    // Registration waits for a workload certificate, which mesh-control cannot give now.
    await proc.stderrLine(/^mesh-proxy: certificate request failed: .*; no certificate yet; retrying in /)
    expect(proc.stderr).not.toMatch(/registered/)
    proc.signal('SIGTERM')
    expect(await proc.waitForExit(10_000)).toEqual({ code: 0, signal: null })
  })
})
