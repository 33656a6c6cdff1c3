/**
 * The registry lease against a fake control plane over real gRPC: Register with the
 * inbound endpoints, heartbeats at a third of the TTL, re-register on NOT_FOUND, retries
 * on UNAVAILABLE, re-register when the ports change, Deregister on stop (bounded).
 */
import * as grpc from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { ControlPlaneChannel } from '../../src/control/channel.js'
import type { HeartbeatRequest__Output, RegisterRequest__Output } from '../../src/control/proto.js'
import { Registration, type Lease } from '../../src/control/registration.js'
import { FakeControlPlane } from '../support/fake-control-plane.js'
import { waitFor } from '../support/ports.js'

let plane: FakeControlPlane
const cleanups: (() => void | Promise<void>)[] = []

beforeEach(async () => {
  plane = await FakeControlPlane.start({ leaseTtlMs: 600 })
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await plane.close()
})

function startRegistration(address = '127.0.0.1') {
  const channel = new ControlPlaneChannel({ target: plane.address, token: plane.token, backoff: { baseMs: 20, capMs: 100 } })
  const lines: string[] = []
  const leases: Lease[] = []
  const registration = new Registration({
    channel,
    service: 'web',
    namespace: 'shop',
    proxyId: 'host-7-beef',
    address: async () => address,
    backoff: { baseMs: 20, capMs: 100 },
    log: (line) => lines.push(line),
    onRegistered: (lease) => leases.push(lease),
  })
  cleanups.push(async () => {
    await registration.stop(500)
    channel.close()
  })
  return { registration, lines, leases }
}

const registerRequest = (i: number) => plane.calls('Register')[i]?.request as RegisterRequest__Output
const heartbeatLease = (i: number) => (plane.calls('Heartbeat')[i]?.request as HeartbeatRequest__Output).leaseId

describe('Registration', () => {
  it('registers the inbound endpoints with the token and heartbeats at a third of the TTL', async () => {
    const { registration, lines } = startRegistration('10.1.2.3')
    registration.setPorts([
      { port: 4143, protocol: 'http1', mtls: 'off' },
      { port: 4144, protocol: 'grpc', mtls: 'off' },
    ])
    await plane.waitForCall('Register')
    expect(plane.calls('Register')[0]?.token).toBe('test-token')
    expect(registerRequest(0)).toEqual({
      service: 'web',
      namespace: 'shop',
      proxyId: 'host-7-beef',
      endpoints: [
        { address: '10.1.2.3', port: 4143, protocol: 'http1', labels: {}, weight: 0, mtls: 'off' },
        { address: '10.1.2.3', port: 4144, protocol: 'grpc', labels: {}, weight: 0, mtls: 'off' },
      ],
    })
    await waitFor('a registered line', () => lines.find((l) => l.startsWith('registered ')))
    expect(lines[0]).toBe('registered 10.1.2.3:4143 (http1), 10.1.2.3:4144 (grpc) as shop/web; lease ttl 600ms')

    await plane.waitForCall('Heartbeat', 3, 5_000)
    const beats = plane.calls('Heartbeat').map((c) => c.at)
    const leaseId = registration.lease?.leaseId
    expect(plane.calls('Heartbeat').every((c) => (c.request as HeartbeatRequest__Output).leaseId === leaseId)).toBe(true)
    // About 200 ms apart (ttl/3): certainly not back to back.
    for (let i = 1; i < beats.length; i++) expect((beats[i] as number) - (beats[i - 1] as number)).toBeGreaterThanOrEqual(120)
    expect(plane.calls('Register')).toHaveLength(1)
  })

  it('registers again when a heartbeat answers NOT_FOUND', async () => {
    const { registration, lines, leases } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await plane.waitForCall('Heartbeat')
    const firstLease = registration.lease?.leaseId
    plane.expireLeases()
    await plane.waitForCall('Register', 2, 5_000)
    expect(registerRequest(1)).toEqual(registerRequest(0))
    await waitFor('a heartbeat on the new lease', () => {
      const calls = plane.calls('Heartbeat')
      const last = calls.at(-1)
      return last?.code === 0 && heartbeatLease(calls.length - 1) !== firstLease
    })
    expect(plane.calls('Heartbeat').some((c) => c.code === grpc.status.NOT_FOUND)).toBe(true)
    expect(lines).toContain(
      `heartbeat: the control plane no longer knows lease ${firstLease}: lease ${firstLease} expired or replaced (NOT_FOUND); registering again`,
    )
    expect(leases).toHaveLength(2)
    expect(plane.leases.size).toBe(1)
  })

  it('retries Register with backoff while the control plane is UNAVAILABLE', async () => {
    plane.failNext('Register', grpc.status.UNAVAILABLE, 3)
    const { registration, lines } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await plane.waitForCall('Register', 4, 5_000)
    await waitFor('a lease', () => registration.lease)
    expect(plane.calls('Register').map((c) => c.code)).toEqual([14, 14, 14, 0])
    expect(lines.filter((l) => /^register with the control plane failed: UNAVAILABLE scripted by the test \(UNAVAILABLE\); retrying in \d+ms$/.test(l))).toHaveLength(3)
  })

  it('a failed heartbeat is retried on the same lease, not re-registered', async () => {
    // A TTL with room to spare, so a busy machine cannot let the lease lapse for real.
    plane.leaseTtlMs = 3_000
    const { registration, lines } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await plane.waitForCall('Heartbeat')
    plane.failNext('Heartbeat', grpc.status.UNAVAILABLE, 2)
    await waitFor('a successful heartbeat after the failures', () => {
      const codes = plane.calls('Heartbeat').map((c) => c.code)
      return codes.filter((c) => c === 14).length === 2 && codes.at(-1) === 0
    }, { timeoutMs: 5_000 })
    expect(plane.calls('Register')).toHaveLength(1)
    expect(lines.filter((l) => l.startsWith('heartbeat failed: '))).toHaveLength(2)
    expect(registration.lease).toBeDefined()
  })

  it('registers again when the ports change, and deregisters when none are left', async () => {
    const { registration } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await waitFor('a lease', () => registration.lease)
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }]) // unchanged: nothing
    registration.setPorts([{ port: 5000, protocol: 'http2', mtls: 'off' }])
    await plane.waitForCall('Register', 2)
    expect(registerRequest(1).endpoints.map((e) => e.port)).toEqual([5000])
    await waitFor('the new lease', () => registration.lease?.endpoints[0]?.port === 5000)
    const leaseId = registration.lease?.leaseId
    registration.setPorts([])
    const deregister = await plane.waitForCall('Deregister')
    expect(deregister.request).toEqual({ leaseId })
    expect(plane.calls('Register')).toHaveLength(2)
  })

  it('stop() deregisters the lease and stops heartbeats', async () => {
    const { registration, lines } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await waitFor('a lease', () => registration.lease)
    const leaseId = registration.lease?.leaseId
    await registration.stop(1_000)
    expect(plane.calls('Deregister').map((c) => c.request)).toEqual([{ leaseId }])
    expect(plane.leases.size).toBe(0)
    expect(lines.at(-1)).toBe('deregistered 127.0.0.1:4143 (auto)')
    const beats = plane.calls('Heartbeat').length
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(plane.calls('Heartbeat')).toHaveLength(beats)
  })

  it('stop() is bounded when the control plane is gone', async () => {
    const { registration, lines } = startRegistration()
    registration.setPorts([{ port: 4143, protocol: 'auto', mtls: 'off' }])
    await waitFor('a lease', () => registration.lease)
    await plane.stop()
    const started = Date.now()
    await registration.stop(400)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(lines.at(-1)).toMatch(/^deregister failed: .*; the lease expires by its TTL$/)
  })
})
