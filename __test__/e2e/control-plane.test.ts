/**
 * The connected mesh end to end, as an operator runs it: a real `mesh-control`, real
 * `mesh-proxy --control-plane` processes for a client workload (web) and two server
 * workloads (orders-v1, orders-v2) that register their inbound ports, real HTTP apps,
 * and `meshctl` for every change. Asserts what users see: where requests land, how
 * fast a change is in force, what `meshctl check` says, which endpoints proxies get.
 *
 * The tests of the first describe run in order on one mesh (each leaves it in the state
 * the next one starts from), because starting five processes per test would dominate
 * the run time.
 */
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { CliProcess, cleanEnv } from '../cli/cli-process.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { ControlPlaneProcess } from '../support/control.js'
import { h1, type Reply } from '../support/http.js'
import { freePorts, sleep, waitFor } from '../support/ports.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { httpRouteDoc, renderYaml, type Doc } from '../support/resources.js'

const LEASE_TTL_MS = 3_000

interface Workload {
  name: string
  proc: CliProcess
  adminPort: number
  outboundPort: number
  inboundPort?: number
}

function service(name: string, extra: Doc = {}): Doc {
  return { apiVersion: 'mesh/v1', kind: 'Service', name, namespace: 'default', port: 80, protocol: 'http', endpoints: [], ...extra }
}

function ordersRoute(backend: string, extraMatch?: Doc): Doc {
  const rule: Doc = { backendRefs: [{ name: backend }] }
  if (extraMatch) rule.matches = [extraMatch]
  return httpRouteDoc('orders-split', 'orders', [rule as never])
}

const instance = (reply: Reply): string => String(reply.headers['x-instance'] ?? `status ${reply.status}`)

describe('a connected mesh: mesh-control, meshctl and three proxies', () => {
  const dir = makeTempDir('mesh-cp-e2e-')
  let control: ControlPlaneProcess
  let appV1: HttpApp
  let appV2: HttpApp
  let inventoryA: HttpApp
  let inventoryB: HttpApp
  const workloads = new Map<string, Workload>()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })

  async function meshctl(args: string[], expectCode = 0): Promise<string> {
    const result = await control.meshctl(args)
    expect(result.code, `meshctl ${args.join(' ')}: ${result.stderr}`).toBe(expectCode)
    return result.stdout
  }

  async function apply(name: string, docs: Doc[]): Promise<string> {
    const file = path.join(dir, `${name}.yaml`)
    fs.writeFileSync(file, renderYaml(docs))
    return meshctl(['apply', '-f', file])
  }

  async function startWorkload(name: string, forwardTo?: HttpApp): Promise<Workload> {
    const token = (await meshctl(['token', 'create', '--name', name])).trim()
    const [adminPort, outboundPort, inboundPort] = (await freePorts(3)) as [number, number, number]
    const local: Doc = {
      apiVersion: 'mesh/v1',
      kind: 'Proxy',
      name,
      namespace: 'default',
      outbound: { listen: `127.0.0.1:${outboundPort}` },
      admin: { listen: `127.0.0.1:${adminPort}` },
      drainTimeout: '1s',
    }
    if (forwardTo) local.inbound = [{ port: inboundPort, address: '127.0.0.1', forwardTo: forwardTo.address, protocol: 'http1', mtls: 'strict' }]
    const file = path.join(dir, `${name}-proxy.yaml`)
    fs.writeFileSync(file, renderYaml([local]))
    const proc = new CliProcess(['--config', file, '--control-plane', control.address, '--name', name], { env: cleanEnv({ MESH_TOKEN: token }) })
    await proc.ready(adminPort)
    const workload = { name, proc, adminPort, outboundPort, inboundPort: forwardTo ? inboundPort : undefined }
    workloads.set(name, workload)
    return workload
  }

  /** The endpoints of Service `name` in the config a proxy has in force. */
  async function endpointsSeenBy(workload: Workload, name: string): Promise<string[]> {
    const config = JSON.parse((await adminGet(workload.adminPort, '/config')).body) as { resources: Doc[] }
    const svc = config.resources.find((r) => r.kind === 'Service' && r.name === name) as { endpoints: { address: string }[] } | undefined
    return (svc?.endpoints ?? []).map((e) => e.address).sort()
  }

  async function configVersion(workload: Workload): Promise<number> {
    return (JSON.parse((await adminGet(workload.adminPort, '/config')).body) as { version: number }).version
  }

  const web = () => workloads.get('web') as Workload
  const get = (host: string, headers: http.OutgoingHttpHeaders = {}) => h1({ port: web().outboundPort, host, agent, headers, timeoutMs: 5_000 })

  async function tallyOf(host: string, count: number): Promise<Map<string, number>> {
    const counts = new Map<string, number>()
    for (let i = 0; i < count; i++) {
      const who = instance(await get(host))
      counts.set(who, (counts.get(who) ?? 0) + 1)
    }
    return counts
  }

  async function waitForInSync(proxies: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      `meshctl check: ${proxies} proxies connected and in sync`,
      async () => {
        const result = await control.meshctl(['check'])
        return result.code === 0 && result.stdout.includes(`ok    proxies connected: ${proxies}\n`) ? true : undefined
      },
      { timeoutMs, intervalMs: 200 },
    )
  }

  beforeAll(async () => {
    appV1 = await startHttpApp({ name: 'orders-v1' })
    appV2 = await startHttpApp({ name: 'orders-v2' })
    inventoryA = await startHttpApp({ name: 'inventory-a' })
    inventoryB = await startHttpApp({ name: 'inventory-b' })
    control = await ControlPlaneProcess.start({ leaseTtl: `${LEASE_TTL_MS}ms` })
    // Services of the server workloads have no static endpoints: their proxies register them.
    await apply('mesh', [service('orders'), service('orders-v1'), service('orders-v2'), ordersRoute('orders-v1')])
    await startWorkload('web')
    await startWorkload('orders-v1', appV1)
    await startWorkload('orders-v2', appV2)
    await waitFor('web to see both registered endpoints', async () =>
      (await endpointsSeenBy(web(), 'orders-v1')).length === 1 && (await endpointsSeenBy(web(), 'orders-v2')).length === 1 ? true : undefined,
    )
  }, 60_000)

  afterAll(async () => {
    for (const w of workloads.values()) await w.proc[Symbol.asyncDispose]()
    await control?.kill()
    agent.destroy()
    for (const app of [appV1, appV2, inventoryA, inventoryB]) await app?.close()
  })

  it('registers each proxy inbound port under its --name, and routes through the registered endpoints', async () => {
    const v1 = workloads.get('orders-v1') as Workload
    expect(await endpointsSeenBy(web(), 'orders-v1')).toEqual([`127.0.0.1:${v1.inboundPort}`])
    expect(await tallyOf('orders', 10)).toEqual(new Map([['orders-v1', 10]]))
    await waitForInSync(3)
    // Proxy to proxy is mTLS: the server side (strict) saw web's identity, the client side says tls.
    const inboundMetrics = (await adminGet(v1.adminPort, '/metrics')).body
    expect(inboundMetrics).toMatch(/request_total\{[^}]*direction="inbound"[^}]*client_id="spiffe:\/\/mesh\.local\/ns\/default\/sa\/web"/)
    expect((await adminGet(web().adminPort, '/metrics')).body).toMatch(/request_total\{[^}]*direction="outbound"[^}]*tls="true"/)
    // Each proxy holds a workload certificate for its own SPIFFE id (ready waits for it).
    for (const w of workloads.values()) {
      const config = JSON.parse((await adminGet(w.adminPort, '/config')).body) as { controlPlane: { identity: { spiffeId: string } | null } }
      expect(config.controlPlane.identity?.spiffeId).toBe(`spiffe://mesh.local/ns/default/sa/${w.name}`)
    }
  })

  it('shifts traffic within one second of `meshctl apply` of a route change', async () => {
    expect(await apply('to-v2', [ordersRoute('orders-v2')])).toContain('configured')
    const applied = Date.now()
    let firstV2: number | undefined
    while (Date.now() - applied < 3_000) {
      if (instance(await get('orders')) === 'orders-v2') {
        firstV2 = Date.now() - applied
        break
      }
      await sleep(10)
    }
    expect(firstV2, 'no request reached orders-v2 within 3 s').toBeDefined()
    expect(firstV2).toBeLessThan(1_000)
    expect(await tallyOf('orders', 10)).toEqual(new Map([['orders-v2', 10]]))
  })

  it('keeps a proxy on its old config when it NACKs a push, and meshctl check shows the error', async () => {
    const before = await configVersion(web())
    // Valid to the validator, too large for the engine's regex compiler: every proxy refuses it.
    const tooBig = { path: { type: 'RegularExpression', value: '/(a{1000}){1000}' } }
    await apply('bad', [ordersRoute('orders-v1', tooBig)])
    try {
      await expectNackedAndServing(before)
    } finally {
      // A good change clears it (also when an assertion failed, so later tests start clean).
      await apply('fixed', [ordersRoute('orders-v2')])
    }
    await waitForInSync(3)
  })

  async function expectNackedAndServing(before: number): Promise<void> {
    const check = await waitFor(
      'meshctl check to report the NACK',
      async () => {
        const result = await control.meshctl(['check'])
        return result.code === 1 && result.stdout.includes('NACK') ? result : undefined
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    )
    expect(check.stdout).toMatch(/^FAIL  proxies in sync: 3 of 3 not in sync$/m)
    expect(check.stdout).toMatch(/default\/web \(proxy [^)]+\): acked version \d+, pushed version \d+: NACK: control-plane: HTTPRoute "default\/orders-split": rules\[0\]\.matches\[0\]\.path\.value: regular expression too large/m)
    // The old route (to v2) still serves, at the same config version.
    expect(await configVersion(web())).toBe(before)
    expect(await tallyOf('orders', 5)).toEqual(new Map([['orders-v2', 5]]))
  }

  it('withholds an endpoint whose health check fails, and restores it when it passes again', async () => {
    const healthCheck = { path: '/healthz', interval: '100ms', timeout: '500ms', unhealthyThreshold: 2, healthyThreshold: 2 }
    await apply('inventory', [
      service('inventory', { endpoints: [{ address: inventoryA.address }, { address: inventoryB.address }], loadBalancer: 'round_robin', healthCheck }),
    ])
    await waitFor('web to route to both inventory instances', async () => ((await tallyOf('inventory', 4)).size === 2 ? true : undefined))

    inventoryB.forcedStatus = 500
    await waitFor('inventory-b withheld', async () =>
      (await endpointsSeenBy(web(), 'inventory')).join() === inventoryA.address ? true : undefined,
    )
    expect(await tallyOf('inventory', 10)).toEqual(new Map([['inventory-a', 10]]))

    inventoryB.forcedStatus = undefined
    await waitFor('inventory-b restored', async () => ((await endpointsSeenBy(web(), 'inventory')).length === 2 ? true : undefined))
    expect(await tallyOf('inventory', 10)).toEqual(new Map([['inventory-a', 5], ['inventory-b', 5]]))
  })

  it('serves with zero failed requests while mesh-control is killed -9 and restarted, then resyncs; the store survived', async () => {
    const failures: string[] = []
    let served = 0
    let stop = false
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const reply = await get('orders')
          if (reply.status === 200) served++
          else failures.push(`status ${reply.status}: ${reply.body.slice(0, 100)}`)
        } catch (err) {
          failures.push((err as Error).message)
        }
      }
    })
    await sleep(500)
    await control.kill()
    await sleep(1_000) // proxies see the control plane gone and retry with backoff
    const servedWhileAway = served
    control = await control.restart()
    await waitForInSync(3, 20_000)
    await sleep(300)
    stop = true
    await Promise.all(load)
    expect(failures).toEqual([])
    expect(served - servedWhileAway).toBeGreaterThan(0)
    expect(servedWhileAway).toBeGreaterThan(50)

    // Resources applied before the kill are still there, and a change after the restart is pushed.
    expect(await meshctl(['get', 'httproute', 'orders-split', '-o', 'json'])).toContain('"orders-v2"')
    await apply('back-to-v1', [ordersRoute('orders-v1')])
    await waitFor('traffic back on orders-v1', async () => (instance(await get('orders')) === 'orders-v1' ? true : undefined), { timeoutMs: 3_000 })
  })

  it('deregisters a proxy that exits (at once, not after its lease)', async () => {
    const v2 = workloads.get('orders-v2') as Workload
    expect(await endpointsSeenBy(web(), 'orders-v2')).toEqual([`127.0.0.1:${v2.inboundPort}`])
    const stopped = Date.now()
    v2.proc.signal('SIGTERM')
    await waitFor('orders-v2 endpoint withdrawn', async () => ((await endpointsSeenBy(web(), 'orders-v2')).length === 0 ? true : undefined), {
      timeoutMs: LEASE_TTL_MS,
    })
    expect(Date.now() - stopped).toBeLessThan(LEASE_TTL_MS)
    expect((await v2.proc.waitForExit(10_000)).code).toBe(0)
    expect(v2.proc.stderr).toMatch(/deregistered/)
    workloads.delete('orders-v2')
  })

  it('withdraws the endpoints of a proxy killed -9 once its lease lapses', async () => {
    const v1 = workloads.get('orders-v1') as Workload
    v1.proc.signal('SIGKILL')
    await v1.proc.waitForExit(5_000)
    const killed = Date.now()
    // Still there while the lease lives: a killed proxy says nothing on its way out.
    await sleep(LEASE_TTL_MS / 3)
    expect(await endpointsSeenBy(web(), 'orders-v1')).toEqual([`127.0.0.1:${v1.inboundPort}`])
    await waitFor('orders-v1 lease lapsed', async () => ((await endpointsSeenBy(web(), 'orders-v1')).length === 0 ? true : undefined), {
      timeoutMs: LEASE_TTL_MS + 5_000,
    })
    // The lease runs from the last heartbeat (every TTL/3), so it lapses 2/3 TTL to TTL after the kill.
    expect(Date.now() - killed).toBeGreaterThanOrEqual((LEASE_TTL_MS * 2) / 3 - 300)
    workloads.delete('orders-v1')
    await waitForInSync(1)
  })
})
