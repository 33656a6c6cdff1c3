import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DiscoveryClient, type StatusResponse__Output } from '../../src/control/proto.js'
import { WatchStream, call, mustApply, service, startHarness, token, type Harness } from './harness.js'
import { waitFor } from '../support/ports.js'

const PROXIES = 1000
const SERVICES = 50
const CHANNELS = 10

let h: Harness
const clients: grpc.Client[] = []
const streams: WatchStream[] = []

beforeAll(async () => {
  h = await startHarness()
  const docs = Array.from({ length: SERVICES }, (_, i) => service(`svc-${i}`, { endpoints: [{ address: `127.0.0.1:${10_000 + i}` }] }))
  await mustApply(h, docs)
  for (let i = 0; i < CHANNELS; i++) {
    // A distinct option keeps grpc-js from sharing one connection between the clients.
    clients.push(new (DiscoveryClient())(h.control.address, grpc.credentials.createInsecure(), { 'test.channel': i }))
  }
})
afterAll(async () => {
  for (const stream of streams) stream.stream.cancel()
  for (const client of clients) client.close()
  await h.cleanup()
})

describe('1000 connected proxies', () => {
  it('all get their first push, then all get the push of one apply, and all show in Status in sync', { timeout: 60_000 }, async () => {
    const tokens = await Promise.all(Array.from({ length: SERVICES }, (_, i) => token(h, `svc-${i}`)))
    for (let i = 0; i < PROXIES; i++) {
      const serviceIndex = i % SERVICES
      const stream = new WatchStream(h.control.address, tokens[serviceIndex], clients[i % CHANNELS])
      stream.hello({ service: `svc-${serviceIndex}`, proxyId: `proxy-${i}` })
      streams.push(stream)
    }
    const firsts = await Promise.all(streams.map((stream) => stream.nextPush(30_000)))
    expect(firsts.every((push) => push.full && push.resources.length === SERVICES)).toBe(true)
    firsts.forEach((push, i) => streams[i]?.ack(push))
    await waitFor(
      'every proxy in sync',
      async () => {
        const status = await call<unknown, StatusResponse__Output>(h.admin, 'Status', {})
        return status.proxies.length === PROXIES && status.proxies.every((row) => row.inSync)
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )

    await mustApply(h, [service('svc-7', { endpoints: [{ address: '127.0.0.1:20007' }] })])
    const version = h.control.version
    const seconds = await Promise.all(streams.map((stream) => stream.nextPush(30_000)))
    for (const push of seconds) {
      expect(push.full).toBe(false)
      expect(push.version).toBe(version)
      expect(push.resources.map((r) => r.name)).toEqual(['svc-7'])
    }
    seconds.forEach((push, i) => streams[i]?.ack(push))
    await waitFor(
      'every proxy to ACK the apply',
      async () => {
        const status = await call<unknown, StatusResponse__Output>(h.admin, 'Status', {})
        return status.proxies.every((row) => row.inSync && row.ackedVersion === version)
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  })
})
