import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { compareVersions } from '../../src/control/proto.js'
import { probeEndpoint } from '../../src/controlplane/health/probe.js'
import { freePort } from '../support/ports.js'
import { WatchStream, endpoint, endpointAddresses, mustApply, registryCall, service, startHarness, token, type Harness, type Push } from './harness.js'

let h: Harness
let watcher: WatchStream | undefined
const servers: (http.Server | net.Server)[] = []

beforeEach(async () => {
  h = await startHarness()
})
afterEach(async () => {
  watcher?.close()
  watcher = undefined
  for (const server of servers.splice(0)) {
    await new Promise((resolve) => server.close(resolve))
    if (server instanceof http.Server) server.closeAllConnections()
  }
  await h.cleanup()
})

/** An HTTP app whose /healthz answers `state.status`. */
async function healthApp(): Promise<{ port: number; state: { status: number }; hits: () => number }> {
  const state = { status: 200 }
  let hits = 0
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') hits++
    res.writeHead(req.url === '/healthz' ? state.status : 404).end()
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as net.AddressInfo).port, state, hits: () => hits }
}

/** Follows the pushes of a `web` proxy, ACKing each, and answers the latest endpoints of `orders`. */
async function follow(): Promise<() => Promise<string[]>> {
  const stream = new WatchStream(h.control.address, await token(h, 'web'))
  watcher = stream
  stream.hello({ service: 'web' })
  let held = new Map<string, Push['bodies'] extends Map<string, infer V> ? V : never>()
  let last: Push | undefined
  return async () => {
    if (stream.endedStatus !== undefined) throw new Error(`watch ended: ${stream.endedStatus.details}`)
    if (last === undefined) {
      last = await stream.nextPush()
      held = new Map(last.bodies)
      stream.ack(last)
    }
    while (stream.pushes.length > 0) {
      last = stream.pushes.shift() as Push
      if (last.full) held = new Map()
      for (const key of last.removed) held.delete(`${key.kind}/${key.namespace}/${key.name}`)
      for (const [key, body] of last.bodies) held.set(key, body)
      stream.ack(last)
    }
    return endpointAddresses({ ...last, bodies: held }, 'orders')
  }
}

const check = (extra: Record<string, unknown> = {}) => ({
  interval: '100ms',
  timeout: '500ms',
  unhealthyThreshold: 2,
  healthyThreshold: 2,
  ...extra,
})

describe('health checks', () => {
  it('withholds an endpoint whose HTTP check fails and restores it when it passes again', async () => {
    const good = await healthApp()
    const flaky = await healthApp()
    await mustApply(h, [
      service('web'),
      service('orders', {
        endpoints: [{ address: `127.0.0.1:${good.port}` }, { address: `127.0.0.1:${flaky.port}` }],
        healthCheck: check({ path: '/healthz' }),
      }),
    ])
    const orders = await follow()
    const both = [`127.0.0.1:${good.port}`, `127.0.0.1:${flaky.port}`]
    expect(await orders()).toEqual(both)
    await expect.poll(() => flaky.hits(), { timeout: 5_000 }).toBeGreaterThan(1)

    const before = h.control.version
    flaky.state.status = 500
    await expect.poll(orders, { timeout: 5_000, interval: 50 }).toEqual([`127.0.0.1:${good.port}`])
    expect(compareVersions(h.control.version, before)).toBeGreaterThan(0)
    expect(h.logs).toContain(`health: default/orders 127.0.0.1:${flaky.port} unhealthy (2 consecutive failures: HTTP 500)`)

    flaky.state.status = 204
    await expect.poll(orders, { timeout: 5_000, interval: 50 }).toEqual(both)
    expect(h.logs).toContain(`health: default/orders 127.0.0.1:${flaky.port} healthy (2 consecutive successes)`)
    // Admin.Get still shows what the operator wrote, whatever the health.
    expect(good.hits()).toBeGreaterThan(2)
  })

  it('checks by TCP connect without a path, registered endpoints included, and stops checking removed ones', async () => {
    const listening = net.createServer((socket) => socket.destroy())
    servers.push(listening)
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve))
    const openPort = (listening.address() as net.AddressInfo).port
    const closedPort = await freePort()
    await mustApply(h, [
      service('web'),
      service('orders', { endpoints: [{ address: `127.0.0.1:${openPort}` }], healthCheck: check() }),
    ])
    const orders = await follow()
    expect(await orders()).toEqual([`127.0.0.1:${openPort}`])

    // A registered endpoint on a closed port is checked too, and withheld.
    const ordersToken = await token(h, 'orders')
    await registryCall(h, 'Register', { service: 'orders', proxyId: 'o-1', endpoints: [endpoint(closedPort)] }, ordersToken)
    await expect.poll(orders, { timeout: 5_000, interval: 50 }).toEqual([`127.0.0.1:${openPort}`])
    expect(h.logs).toContain(`health: default/orders 127.0.0.1:${closedPort} unhealthy (2 consecutive failures: connect ECONNREFUSED)`)

    // The port opens: restored.
    const late = net.createServer((socket) => socket.destroy())
    servers.push(late)
    await new Promise<void>((resolve) => late.listen(closedPort, '127.0.0.1', resolve))
    await expect.poll(orders, { timeout: 5_000, interval: 50 }).toEqual([`127.0.0.1:${openPort}`, `127.0.0.1:${closedPort}`])

    // Removing the health check stops the checks: no more transitions are logged after a close.
    await mustApply(h, [service('orders', { endpoints: [{ address: `127.0.0.1:${openPort}` }] })])
    await expect.poll(orders, { timeout: 5_000, interval: 50 }).toEqual([`127.0.0.1:${openPort}`, `127.0.0.1:${closedPort}`])
    await new Promise((resolve) => late.close(resolve))
    servers.splice(servers.indexOf(late), 1)
    const logged = h.logs.length
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(h.logs.slice(logged).filter((line) => line.startsWith('health:'))).toEqual([])
    expect(await orders()).toEqual([`127.0.0.1:${openPort}`, `127.0.0.1:${closedPort}`])
  })
})

describe('probe', () => {
  it('speaks HTTP/2 (prior knowledge) to http2 and grpc Services, and times out a silent endpoint', async () => {
    let status = 200
    const h2 = http2.createServer((req, res) => {
      res.writeHead(req.url === '/ready' ? status : 404).end()
    })
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve))
    const silent = net.createServer((socket) => socket.resume()) // accepts and reads, never answers
    servers.push(silent)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const address = `127.0.0.1:${(h2.address() as net.AddressInfo).port}`
      expect(await probeEndpoint({ address, path: '/ready', protocol: 'grpc', timeoutMs: 1000 })).toBeUndefined()
      status = 503
      expect(await probeEndpoint({ address, path: '/ready', protocol: 'http2', timeoutMs: 1000 })).toBe('HTTP 503')
      const silentAddress = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`
      expect(await probeEndpoint({ address: silentAddress, path: '/', protocol: 'http', timeoutMs: 200 })).toBe('timeout after 200ms')
      expect(await probeEndpoint({ address: silentAddress, protocol: 'tcp', timeoutMs: 200 })).toBeUndefined()
    } finally {
      await new Promise((resolve) => h2.close(resolve))
    }
  })
})
