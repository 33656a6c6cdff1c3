import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { compareVersions, durationToMs, type RegisterResponse__Output } from '../../src/control/proto.js'
import { MeshControl, MeshControlError } from '../../src/controlplane/index.js'
import {
  WatchStream,
  callError,
  endpoint,
  endpointAddresses,
  mustApply,
  registryCall,
  service,
  startHarness,
  token,
  type Harness,
  type Push,
} from './harness.js'

const TTL_MS = 1_000

let h: Harness
const streams: WatchStream[] = []
beforeEach(async () => {
  h = await startHarness({ leaseTtlMs: TTL_MS })
})
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close()
  await h.cleanup()
})

/** A proxy of `web` watching everything, ACKing each push; returns a reader of the latest push. */
async function observer(harness: Harness): Promise<{ latest(): Promise<Push>; stream: WatchStream }> {
  const stream = new WatchStream(harness.control.address, await token(harness, 'web'))
  streams.push(stream)
  stream.hello({ service: 'web', proxyId: 'observer' })
  let latest: Push | undefined
  return {
    stream,
    async latest() {
      // Take and ACK (once each) whatever arrived, keeping the newest state.
      if (latest === undefined) {
        latest = await stream.nextPush()
        stream.ack(latest)
      }
      if (stream.endedStatus !== undefined) throw new Error(`watch ended: ${stream.endedStatus.details}`)
      while (stream.pushes.length > 0) {
        latest = applyPush(latest, stream.pushes.shift() as Push)
        stream.ack(latest)
      }
      return latest
    },
  }
}

function applyPush(held: Push, push: Push): Push {
  if (push.full) return push
  const bodies = new Map(held.bodies)
  for (const key of push.removed) bodies.delete(`${key.kind}/${key.namespace}/${key.name}`)
  for (const [key, body] of push.bodies) bodies.set(key, body)
  return { ...push, bodies }
}

async function register(harness: Harness, tokenValue: string, ports: number[], proxyId = 'orders-1'): Promise<RegisterResponse__Output> {
  return registryCall(harness, 'Register', { service: 'orders', proxyId, endpoints: ports.map((port) => endpoint(port)) }, tokenValue)
}

async function addressesSeen(watcher: { latest(): Promise<Push> }, want: string[]): Promise<void> {
  await expect
    .poll(async () => endpointAddresses(await watcher.latest(), 'orders'), { timeout: 5_000, interval: 50 })
    .toEqual(want)
}

describe('Registry', () => {
  beforeEach(async () => {
    await mustApply(h, [service('web'), service('orders', { endpoints: [{ address: '127.0.0.1:8000' }] })])
  })

  it('register adds endpoints to pushes, deregister withdraws them at once', async () => {
    const watcher = await observer(h)
    await addressesSeen(watcher, ['127.0.0.1:8000'])
    const ordersToken = await token(h, 'orders')
    const before = h.control.version
    const lease = await registryCall<RegisterResponse__Output>(
      h,
      'Register',
      { service: 'orders', proxyId: 'orders-1', endpoints: [endpoint(4143, { labels: { zone: 'a' }, weight: 3 })] },
      ordersToken,
    )
    expect(lease.leaseId).toMatch(/^lease_[A-Za-z0-9_-]{22}$/)
    expect(durationToMs(lease.ttl)).toBe(TTL_MS)
    expect(compareVersions(h.control.version, before)).toBeGreaterThan(0)
    await addressesSeen(watcher, ['127.0.0.1:8000', '127.0.0.1:4143'])
    const body = (await watcher.latest()).bodies.get('Service/default/orders') as { endpoints: unknown[] }
    expect(body.endpoints[1]).toEqual({ address: '127.0.0.1:4143', weight: 3, labels: { zone: 'a' } })

    await registryCall(h, 'Deregister', { leaseId: lease.leaseId }, ordersToken)
    await addressesSeen(watcher, ['127.0.0.1:8000'])
    // Idempotent, and a heartbeat of the withdrawn lease is NOT_FOUND.
    await registryCall(h, 'Deregister', { leaseId: lease.leaseId }, ordersToken)
    const heartbeat = await callError(registryCall(h, 'Heartbeat', { leaseId: lease.leaseId }, ordersToken))
    expect(heartbeat.code).toBe(grpc.status.NOT_FOUND)
    expect(h.logs.some((line) => line.startsWith('registry: default/orders proxy "orders-1" deregistered'))).toBe(true)
  })

  it('pushes endpoints of mTLS ports with the workload SPIFFE id, and plaintext ports without one', async () => {
    const watcher = await observer(h)
    const ordersToken = await token(h, 'orders')
    await registryCall<RegisterResponse__Output>(
      h,
      'Register',
      { service: 'orders', proxyId: 'orders-1', endpoints: [endpoint(4143, { mtls: 'strict' }), endpoint(4144, { mtls: 'off' })] },
      ordersToken,
    )
    await addressesSeen(watcher, ['127.0.0.1:8000', '127.0.0.1:4143', '127.0.0.1:4144'])
    const body = (await watcher.latest()).bodies.get('Service/default/orders') as { endpoints: unknown[] }
    expect(body.endpoints.slice(1)).toEqual([
      { address: '127.0.0.1:4143', weight: 1, labels: {}, identity: 'spiffe://mesh.local/ns/default/sa/orders' },
      { address: '127.0.0.1:4144', weight: 1, labels: {} },
    ])
    const bad = await callError(
      registryCall(h, 'Register', { service: 'orders', proxyId: 'orders-2', endpoints: [endpoint(4145, { mtls: 'on' })] }, ordersToken),
    )
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(bad.details).toBe('endpoints[0].mtls: expected one of strict, permissive, off; got "on"')
  })

  it('keeps a lease alive with heartbeats and expires it without them', async () => {
    const watcher = await observer(h)
    const ordersToken = await token(h, 'orders')
    const lease = await register(h, ordersToken, [4143])
    await addressesSeen(watcher, ['127.0.0.1:8000', '127.0.0.1:4143'])
    // Heartbeats over two TTLs keep it.
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, TTL_MS / 3))
      const renewed = await registryCall<{ ttl: { seconds: string; nanos: number } }>(h, 'Heartbeat', { leaseId: lease.leaseId }, ordersToken)
      expect(durationToMs(renewed.ttl)).toBe(TTL_MS)
    }
    expect(endpointAddresses(await watcher.latest(), 'orders')).toEqual(['127.0.0.1:8000', '127.0.0.1:4143'])
    // Silence: withdrawn within about one TTL.
    await addressesSeen(watcher, ['127.0.0.1:8000'])
    const late = await callError(registryCall(h, 'Heartbeat', { leaseId: lease.leaseId }, ordersToken))
    expect(late.code).toBe(grpc.status.NOT_FOUND)
    expect(late.details).toContain('register again')
    expect(h.logs.some((line) => line.includes('lease expired'))).toBe(true)
  })

  it('one lease per proxy: registering again replaces the endpoints and invalidates the old lease', async () => {
    const watcher = await observer(h)
    const ordersToken = await token(h, 'orders')
    const first = await register(h, ordersToken, [4143])
    const second = await register(h, ordersToken, [4144])
    await register(h, ordersToken, [4145], 'orders-2')
    await addressesSeen(watcher, ['127.0.0.1:8000', '127.0.0.1:4144', '127.0.0.1:4145'])
    expect((await callError(registryCall(h, 'Heartbeat', { leaseId: first.leaseId }, ordersToken))).code).toBe(grpc.status.NOT_FOUND)
    await registryCall(h, 'Heartbeat', { leaseId: second.leaseId }, ordersToken)
  })

  it('keeps endpoints of a Service that does not exist yet until it is applied', async () => {
    const watcher = await observer(h)
    await watcher.latest()
    const paymentsToken = await token(h, 'payments')
    await registryCall(h, 'Register', { service: 'payments', proxyId: 'p-1', endpoints: [endpoint(5000)] }, paymentsToken)
    await mustApply(h, [service('payments')])
    await expect
      .poll(async () => {
        const push = await watcher.latest()
        return push.bodies.has('Service/default/payments') ? endpointAddresses(push, 'payments') : []
      })
      .toEqual(['127.0.0.1:5000'])
  })

  it('refuses bad tokens, other identities and invalid endpoints with the status the proto names', async () => {
    const ordersToken = await token(h, 'orders')
    const none = await callError(registryCall(h, 'Register', { service: 'orders', proxyId: 'x', endpoints: [] }))
    expect(none.code).toBe(grpc.status.UNAUTHENTICATED)
    const unknown = await callError(registryCall(h, 'Register', { service: 'orders', proxyId: 'x', endpoints: [] }, 'mesh_nope'))
    expect(unknown.code).toBe(grpc.status.UNAUTHENTICATED)
    const other = await callError(registryCall(h, 'Register', { service: 'web', proxyId: 'x', endpoints: [] }, ordersToken))
    expect(other.code).toBe(grpc.status.PERMISSION_DENIED)
    expect(other.details).toBe('join token admits default/orders, not default/web')

    const invalid = async (endpoints: unknown[]) =>
      (await callError(registryCall(h, 'Register', { service: 'orders', proxyId: 'x', endpoints }, ordersToken))).details
    expect(await invalid([endpoint(4143), endpoint(0)])).toBe('endpoints[1].port: expected 1-65535, got 0')
    expect(await invalid([endpoint(4143, { address: 'localhost' })])).toBe(
      'endpoints[0].address: expected an IP address without port or brackets, got "localhost"',
    )
    expect(await invalid([endpoint(4143, { address: '0.0.0.0' })])).toMatch(/^endpoints\[0\]\.address: expected a reachable IP address/)
    expect(await invalid([endpoint(4143, { protocol: 'h3' })])).toBe(
      'endpoints[0].protocol: expected one of auto, http1, http2, grpc, tcp; got "h3"',
    )
    expect(await invalid([endpoint(4143), endpoint(4143)])).toBe('endpoints[1].address: 127.0.0.1:4143 is a duplicate of endpoints[0]')
    expect(await invalid([endpoint(4143, { weight: 2_000_000 })])).toMatch(/^endpoints\[0\]\.weight: /)
    expect(await invalid([endpoint(4143, { labels: { zone: '' } })])).toMatch(/^endpoints\[0\]\.labels\.zone: /)

    // A heartbeat with another service's token is refused, not renewed.
    const lease = await register(h, ordersToken, [4143])
    const webToken = await token(h, 'web')
    expect((await callError(registryCall(h, 'Heartbeat', { leaseId: lease.leaseId }, webToken))).code).toBe(grpc.status.PERMISSION_DENIED)
    expect((await callError(registryCall(h, 'Deregister', { leaseId: lease.leaseId }, webToken))).code).toBe(grpc.status.PERMISSION_DENIED)
  })
})

describe('restart', () => {
  it('keeps resources, leases (with the old lease ids) and a version that never goes backwards', async () => {
    await mustApply(h, [service('web'), service('orders', { endpoints: [{ address: '127.0.0.1:8000' }] })])
    const ordersToken = await token(h, 'orders')
    const lease = await register(h, ordersToken, [4143])
    const versionBefore = h.control.version
    const leasesFile = JSON.parse(readFileSync(join(h.dataDir, 'leases.json'), 'utf8')) as { leases: { id: string }[] }
    expect(leasesFile.leases.map((l) => l.id)).toEqual([lease.leaseId])

    h = await h.restart()
    expect(compareVersions(h.control.version, versionBefore)).toBeGreaterThan(0)
    const watcher = await observer(h)
    await addressesSeen(watcher, ['127.0.0.1:8000', '127.0.0.1:4143'])
    // The old lease id still heartbeats (with a fresh TTL), and the old token still works.
    await registryCall(h, 'Heartbeat', { leaseId: lease.leaseId }, ordersToken)
    // Without heartbeats it lapses as usual.
    await addressesSeen(watcher, ['127.0.0.1:8000'])
    // The expiry is written to leases.json too (after the push; poll for it).
    await expect.poll(() => JSON.parse(readFileSync(join(h.dataDir, 'leases.json'), 'utf8')).leases).toEqual([])
  })

  it('refuses a corrupt leases.json with one line naming the file', async () => {
    await h.stop()
    writeFileSync(join(h.dataDir, 'leases.json'), '{"format": "something-else"}')
    const err = await MeshControl.start({ listen: '127.0.0.1:0', dataDir: h.dataDir, logger: null }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(MeshControlError)
    expect((err as Error).message).toMatch(/leases\.json: corrupt lease file \(expected format "mesh-control-leases\/v1"\)/)
  })
})
