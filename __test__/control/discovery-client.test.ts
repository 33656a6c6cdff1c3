/**
 * The Discovery client against a fake control plane over real gRPC: the Hello, ACK/NACK
 * echoing version and nonce, deltas against the last ACKed state (not a NACKed one),
 * reconnects with last_acked_version, and the token on every stream.
 */
import * as grpc from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { ConfigError } from '../../src/config/index.js'
import { ControlPlaneChannel } from '../../src/control/channel.js'
import { DiscoveryClient, type PushToApply, type StreamEnded } from '../../src/control/discovery-client.js'
import { buildVersion } from '../../src/control/identity.js'
import { FakeControlPlane } from '../support/fake-control-plane.js'
import { waitFor } from '../support/ports.js'
import { serviceDoc } from '../support/resources.js'

let plane: FakeControlPlane
const cleanups: (() => void | Promise<void>)[] = []

beforeEach(async () => {
  plane = await FakeControlPlane.start()
})

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await plane.close()
})

interface Harness {
  client: DiscoveryClient
  applied: PushToApply[]
  ended: StreamEnded[]
  connects: number
  /** Set to make the next applies fail with this error. */
  reject: Error | undefined
  /** WatchResponse.authority_id of every push, in order. */
  authorities: string[]
}

function startClient(token = plane.token): Harness {
  const channel = new ControlPlaneChannel({ target: plane.address, token, backoff: { baseMs: 20, capMs: 100 } })
  const harness: Harness = { applied: [], ended: [], connects: 0, reject: undefined, authorities: [], client: undefined as never }
  harness.client = new DiscoveryClient({
    channel,
    backoff: { baseMs: 20, capMs: 100 },
    hello: async () => ({
      service: 'web',
      namespace: 'default',
      proxyId: 'host-1-abc',
      endpoints: [{ address: '127.0.0.1', port: 4143, protocol: 'http1' }],
      buildVersion: buildVersion(),
      wants: [{ kind: 'Service', namespace: 'default', name: 'orders' }],
    }),
    apply: async (push) => {
      if (harness.reject) throw harness.reject
      harness.applied.push(push)
    },
    onConnected: () => harness.connects++,
    onAuthority: (authorityId) => harness.authorities.push(authorityId),
    onStreamEnded: (ended) => harness.ended.push(ended),
  })
  harness.client.start()
  cleanups.push(() => {
    harness.client.stop()
    channel.close()
  })
  return harness
}

const keys = (push: PushToApply | undefined) => [...(push?.state.keys() ?? [])]

describe('DiscoveryClient', () => {
  it('says hello with its identity, build version, wants and last_acked_version 0', async () => {
    startClient()
    const stream = await plane.waitForStream()
    expect(stream.token).toBe('test-token')
    expect(stream.hello).toEqual({
      service: 'web',
      namespace: 'default',
      proxyId: 'host-1-abc',
      endpoints: [{ address: '127.0.0.1', port: 4143, protocol: 'http1', labels: {}, weight: 0, mtls: '' }],
      buildVersion: buildVersion(),
      wants: [{ kind: 'Service', namespace: 'default', name: 'orders' }],
      lastAckedVersion: '0',
      authorityId: '',
    })
    expect(buildVersion()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('hands on the authority id of every push, ACKed or NACKed', async () => {
    const h = startClient()
    const stream = await plane.waitForStream()
    expect(await stream.push({ resources: [serviceDoc('orders', [9001])], authorityId: 'a'.repeat(64) })).toMatchObject({ type: 'ack' })
    h.reject = new ConfigError(['control-plane: document 1 (Service "x"): port: bad'])
    expect(await stream.push({ resources: [serviceDoc('x', [1])], authorityId: 'b'.repeat(64) })).toMatchObject({ type: 'nack' })
    expect(await stream.push({ resources: [serviceDoc('x', [1])], authorityId: '' })).toMatchObject({ type: 'nack' })
    expect(h.authorities).toEqual(['a'.repeat(64), 'b'.repeat(64), ''])
  })

  it('ACKs an applied push and NACKs a rejected one, echoing version and nonce', async () => {
    const h = startClient()
    const stream = await plane.waitForStream()

    const ack = await stream.push({ resources: [serviceDoc('orders', [9001])], version: '7' })
    expect(ack).toEqual({ type: 'ack', version: '7', nonce: stream.sent[0]?.nonce })
    expect(h.applied).toHaveLength(1)
    expect(h.applied[0]).toMatchObject({ version: '7', full: true })
    expect(keys(h.applied[0])).toEqual(['Service/default/orders'])
    expect(h.connects).toBe(1)

    h.reject = new ConfigError(['control-plane: document 1 (Service "x"): port: bad', 'second problem', 'third'])
    const nack = await stream.push({ resources: [serviceDoc('x', [1])], version: '8' })
    expect(nack).toEqual({
      type: 'nack',
      version: '8',
      nonce: stream.sent[1]?.nonce,
      error: 'control-plane: document 1 (Service "x"): port: bad (and 2 more)',
    })
    expect(h.client.lastAckedVersion).toBe('7')
    expect(plane.violations).toEqual([])
  })

  it('applies a delta against the last ACKed state, not the NACKed push', async () => {
    const h = startClient()
    const stream = await plane.waitForStream()
    await stream.push({ resources: [serviceDoc('orders', [9001]), serviceDoc('payments', [9002])], version: '1' })

    h.reject = new Error('engine says no\nsecond line')
    const nack = await stream.push({ resources: [serviceDoc('broken', [1])], version: '2' })
    expect(nack).toMatchObject({ type: 'nack', error: 'engine says no' })

    h.reject = undefined
    await stream.push({ full: false, resources: [serviceDoc('carts', [9003])], removed: [{ kind: 'Service', namespace: 'default', name: 'payments' }], version: '3' })
    expect(keys(h.applied.at(-1))).toEqual(['Service/default/carts', 'Service/default/orders'])
    expect([...h.client.held.keys()]).toEqual(['Service/default/carts', 'Service/default/orders'])
  })

  it('NACKs a push whose version does not increase within the stream', async () => {
    startClient()
    const stream = await plane.waitForStream()
    await stream.push({ resources: [], version: '5' })
    const reply = await stream.push({ resources: [], version: '5' })
    expect(reply).toMatchObject({ type: 'nack', error: 'control-plane: push version 5 is not above version 5 pushed before on this stream' })
  })

  it('reconnects after the stream breaks, with last_acked_version, and accepts a lower version on the new stream', async () => {
    const h = startClient()
    const first = await plane.waitForStream()
    await first.push({ resources: [serviceDoc('orders', [9001])], version: '41' })

    plane.dropStreams(grpc.status.UNAVAILABLE, 'restarting')
    const second = await plane.waitForStream(1)
    expect(second.hello?.lastAckedVersion).toBe('41')
    expect(second.hello?.proxyId).toBe('host-1-abc')
    expect(h.ended[0]).toMatchObject({ reason: 'restarting (UNAVAILABLE)', wasConnected: true })
    expect(h.ended[0]?.retryInMs).toBeLessThanOrEqual(20)

    // A restored store may start lower: a full push replaces regardless of its version.
    const reply = await second.push({ resources: [serviceDoc('payments', [9002])], version: '3' })
    expect(reply.type).toBe('ack')
    expect(keys(h.applied.at(-1))).toEqual(['Service/default/payments'])
    expect(h.connects).toBe(2)
  })

  it('an empty delta after a reconnect confirms the held state', async () => {
    const h = startClient()
    const first = await plane.waitForStream()
    await first.push({ resources: [serviceDoc('orders', [9001])], version: '10' })
    plane.dropStreams()
    const second = await plane.waitForStream(1)
    expect(await second.push({ full: false, version: '12' })).toMatchObject({ type: 'ack', version: '12' })
    expect(keys(h.applied.at(-1))).toEqual(['Service/default/orders'])
    expect(h.client.lastAckedVersion).toBe('12')
  })

  it('keeps retrying while the control plane is down, with growing delays, and comes back', async () => {
    const h = startClient()
    await plane.waitForStream()
    await plane.stop()
    await waitFor('three failed attempts', () => h.ended.length >= 3, { timeoutMs: 5_000 })
    expect(h.ended.slice(1).every((e) => !e.wasConnected)).toBe(true)
    expect(h.ended.slice(1).some((e) => /UNAVAILABLE/.test(e.reason))).toBe(true)
    await plane.restart()
    const stream = await plane.waitForStream(1)
    expect(await stream.push({ resources: [] })).toMatchObject({ type: 'ack' })
  })

  it('sends the token, and is refused without the right one', async () => {
    const h = startClient('wrong-token')
    await waitFor('a refused stream', () => h.ended.length >= 1, { timeoutMs: 5_000 })
    expect(h.ended[0]?.reason).toBe('missing or unknown join token (UNAUTHENTICATED)')
    expect(plane.streams[0]?.token).toBe('wrong-token')
    expect(h.applied).toEqual([])
  })

  it('stop() ends the stream and does not reconnect', async () => {
    const h = startClient()
    const stream = await plane.waitForStream()
    h.client.stop()
    await waitFor('the server to see the stream end', () => stream.ended, { timeoutMs: 5_000 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(plane.streams).toHaveLength(1)
    expect(h.ended).toEqual([])
  })
})
