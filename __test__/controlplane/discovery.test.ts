import * as grpc from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { compareVersions, type StatusResponse__Output } from '../../src/control/proto.js'
import {
  WatchStream,
  call,
  httpRoute,
  mustApply,
  names,
  policy,
  service,
  startHarness,
  token,
  type Harness,
} from './harness.js'

let h: Harness
const streams: WatchStream[] = []
beforeEach(async () => {
  h = await startHarness()
})
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close()
  await h.cleanup()
})

async function watch(serviceName: string, hello: Record<string, unknown> = {}, namespace = 'default'): Promise<WatchStream> {
  const stream = new WatchStream(h.control.address, await token(h, serviceName, namespace))
  streams.push(stream)
  return stream.hello({ service: serviceName, namespace, ...hello })
}

async function status(): Promise<StatusResponse__Output> {
  return call(h.admin, 'Status', {})
}

const ep = (port: number) => ({ endpoints: [{ address: `127.0.0.1:${port}` }] })

describe('Discovery.Watch scope', () => {
  beforeEach(async () => {
    await mustApply(h, [
      service('web', ep(8000)),
      service('orders', ep(8001)),
      service('payments', ep(8002)),
      service('ledger', ep(8003)),
      service('unrelated', ep(8004)),
      httpRoute('orders-split', 'orders', ['payments']),
      httpRoute('payments-ledger', 'payments', ['ledger']),
      policy('web-policy', 'web'),
      policy('orders-policy', 'orders'),
    ])
  })

  it('pushes everything reachable when wants is empty, with own policies only', async () => {
    const stream = await watch('web')
    const push = await stream.nextPush()
    expect(push.full).toBe(true)
    expect(push.version).toBe(h.control.version)
    expect(names(push)).toEqual([
      'AuthorizationPolicy/default/web-policy',
      'HTTPRoute/default/orders-split',
      'HTTPRoute/default/payments-ledger',
      'Service/default/ledger',
      'Service/default/orders',
      'Service/default/payments',
      'Service/default/unrelated',
      'Service/default/web',
    ])
    expect(push.bodies.get('Service/default/orders')).toMatchObject({ endpoints: [{ address: '127.0.0.1:8001', weight: 1, labels: {} }] })
  })

  it('narrows to the wanted Services, their routes and backends transitively, plus its own Service', async () => {
    const stream = await watch('web', { wants: [{ kind: 'Service', name: 'orders' }] })
    const push = await stream.nextPush()
    expect(names(push)).toEqual([
      'AuthorizationPolicy/default/web-policy',
      'HTTPRoute/default/orders-split',
      'HTTPRoute/default/payments-ledger',
      'Service/default/ledger',
      'Service/default/orders',
      'Service/default/payments',
      'Service/default/web',
    ])
  })

  it('first push full, ACK shows in Status, a change in scope pushes a delta, a change out of scope does not', async () => {
    const stream = await watch('web', { wants: [{ name: 'orders' }], proxyId: 'web-1' })
    const first = await stream.nextPush()
    expect(first.full).toBe(true)
    let row = (await status()).proxies[0]
    expect(row).toMatchObject({ proxyId: 'web-1', service: 'web', namespace: 'default', lastReply: 'REPLY_STATE_PENDING', inSync: false })
    expect(row?.pushedVersion).toBe(first.version)
    expect(row?.peerAddress).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(row?.buildVersion).toBe('0.1.0-test')
    stream.ack(first)
    await expect.poll(async () => (await status()).proxies[0]?.inSync).toBe(true)
    row = (await status()).proxies[0]
    expect(row).toMatchObject({ ackedVersion: first.version, lastReply: 'REPLY_STATE_ACK', error: '', resourceCount: 7 })

    // Out of scope: no push, no resync needed.
    const before = h.control.version
    await mustApply(h, [service('unrelated', ep(9999))])
    expect(compareVersions(h.control.version, before)).toBeGreaterThan(0)
    await stream.noPush()
    expect((await status()).proxies[0]?.inSync).toBe(true)

    // In scope: a delta with just the changed Service.
    await mustApply(h, [service('ledger', ep(9003))])
    const second = await stream.nextPush()
    expect(second.full).toBe(false)
    expect(names(second)).toEqual(['Service/default/ledger'])
    expect(second.removed).toEqual([])
    expect(compareVersions(second.version, first.version)).toBeGreaterThan(0)
    expect(second.nonce).not.toBe(first.nonce)
    stream.ack(second)

    // A removal in scope is a delta with `removed`.
    await call(h.admin, 'Delete', { kind: 'AuthorizationPolicy', name: 'web-policy' })
    const third = await stream.nextPush()
    expect(third.full).toBe(false)
    expect(third.resources).toEqual([])
    expect(third.removed).toEqual([{ kind: 'AuthorizationPolicy', namespace: 'default', name: 'web-policy' }])
  })

  it('holds back changes while a push is outstanding and coalesces them into the next one', async () => {
    const stream = await watch('web', { wants: [{ name: 'orders' }] })
    const first = await stream.nextPush()
    await mustApply(h, [service('ledger', ep(9003))])
    await mustApply(h, [service('payments', ep(9002))])
    await stream.noPush(300)
    stream.ack(first)
    const next = await stream.nextPush()
    expect(names(next)).toEqual(['Service/default/ledger', 'Service/default/payments'])
    expect(next.version).toBe(h.control.version)
  })

  it('re-applying the same content pushes nothing; a change and its revert before the ACK push nothing', async () => {
    const stream = await watch('web', { wants: [{ name: 'orders' }] })
    const first = await stream.nextPush()
    await mustApply(h, [service('ledger', ep(9003))])
    await mustApply(h, [service('ledger', ep(8003))])
    stream.ack(first)
    await stream.noPush()
    expect((await status()).proxies[0]?.inSync).toBe(true)
  })
})

describe('Discovery.Watch NACK', () => {
  it('records the NACK in Status, pushes nothing until the scope changes, then a full push', async () => {
    await mustApply(h, [service('web', ep(8000)), service('orders', ep(8001))])
    const stream = await watch('web', { proxyId: 'web-nack' })
    const first = await stream.nextPush()
    stream.ack(first)
    await mustApply(h, [service('orders', ep(9001))])
    const second = await stream.nextPush()
    expect(second.full).toBe(false)
    stream.nack(second, 'control-plane: document 2 (Service "default/orders"): endpoints[0].address: in use\nsecond line')
    await expect.poll(async () => (await status()).proxies[0]?.lastReply).toBe('REPLY_STATE_NACK')
    const row = (await status()).proxies[0]
    expect(row).toMatchObject({
      proxyId: 'web-nack',
      inSync: false,
      ackedVersion: first.version,
      pushedVersion: second.version,
      error: 'control-plane: document 2 (Service "default/orders"): endpoints[0].address: in use',
    })
    expect(h.logs.some((line) => line.includes('rejected version') && line.includes('web-nack'))).toBe(true)
    await stream.noPush()

    await mustApply(h, [service('orders', ep(9101))])
    const third = await stream.nextPush()
    expect(third.full).toBe(true)
    expect(names(third)).toEqual(['Service/default/orders', 'Service/default/web'])
    stream.ack(third)
    await expect.poll(async () => (await status()).proxies[0]?.inSync).toBe(true)
    expect((await status()).proxies[0]?.error).toBe('')
  })
})

describe('Discovery.Watch refusals', () => {
  beforeEach(async () => {
    await mustApply(h, [service('web', ep(8000))])
  })

  it('UNAUTHENTICATED without a token or with an unknown one', async () => {
    const none = new WatchStream(h.control.address, undefined)
    streams.push(none)
    none.hello({ service: 'web' })
    expect((await none.ended).code).toBe(grpc.status.UNAUTHENTICATED)
    const unknown = new WatchStream(h.control.address, 'mesh_notARealToken')
    streams.push(unknown)
    unknown.hello({ service: 'web' })
    const status = await unknown.ended
    expect(status.code).toBe(grpc.status.UNAUTHENTICATED)
    expect(status.details).not.toContain('notARealToken')
  })

  it('PERMISSION_DENIED when the hello names another identity than the token', async () => {
    const stream = new WatchStream(h.control.address, await token(h, 'web'))
    streams.push(stream)
    stream.hello({ service: 'orders' })
    const status = await stream.ended
    expect(status.code).toBe(grpc.status.PERMISSION_DENIED)
    expect(status.details).toBe('join token admits default/web, not default/orders')
    const otherNamespace = new WatchStream(h.control.address, await token(h, 'web'))
    streams.push(otherNamespace)
    otherNamespace.hello({ service: 'web', namespace: 'shop' })
    expect((await otherNamespace.ended).code).toBe(grpc.status.PERMISSION_DENIED)
  })

  it('INVALID_ARGUMENT for an ack first, a second hello, and a wrong nonce', async () => {
    const ackFirst = new WatchStream(h.control.address, await token(h, 'web'))
    streams.push(ackFirst)
    ackFirst.stream.write({ ack: { version: '1', nonce: '1' } })
    const first = await ackFirst.ended
    expect(first.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(first.details).toBe('the first message of a Watch stream must be a hello')

    const twice = await watch('web')
    await twice.nextPush()
    twice.hello({ service: 'web' })
    expect((await twice.ended).code).toBe(grpc.status.INVALID_ARGUMENT)

    const wrongNonce = await watch('web', { proxyId: 'other' })
    const push = await wrongNonce.nextPush()
    wrongNonce.ack({ ...push, nonce: 'bogus' })
    const ended = await wrongNonce.ended
    expect(ended.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(ended.details).toContain('"bogus"')
    await expect.poll(async () => (await status()).proxies.length).toBe(0)
  })

  it('INVALID_ARGUMENT for a hello with a bad name or want', async () => {
    const stream = await watch('web', { wants: [{ kind: 'HTTPRoute', name: 'x' }] })
    const ended = await stream.ended
    expect(ended.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(ended.details).toBe('hello.wants[0].kind: expected "Service", got "HTTPRoute"')
  })
})

describe('Discovery.Watch rows', () => {
  it('replaces the row of a reconnecting proxy and ends its old stream', async () => {
    await mustApply(h, [service('web', ep(8000))])
    const old = await watch('web', { proxyId: 'web-7' })
    await old.nextPush()
    const fresh = await watch('web', { proxyId: 'web-7', lastAckedVersion: '3' })
    const push = await fresh.nextPush()
    expect(push.full).toBe(true)
    expect((await old.ended).code).toBe(grpc.status.ABORTED)
    const rows = (await status()).proxies
    expect(rows.map((row) => row.proxyId)).toEqual(['web-7'])
    expect(rows[0]?.ackedVersion).toBe('3')
  })

  it('drops the row when the stream is cancelled, and ends streams with UNAVAILABLE on close', async () => {
    await mustApply(h, [service('web', ep(8000))])
    const gone = await watch('web', { proxyId: 'a' })
    await gone.nextPush()
    const kept = await watch('web', { proxyId: 'b' })
    await kept.nextPush()
    gone.close()
    await expect.poll(async () => (await status()).proxies.map((row) => row.proxyId)).toEqual(['b'])
    await h.stop()
    expect((await kept.ended).code).toBe(grpc.status.UNAVAILABLE)
  })

  it('sorts rows by namespace, service, proxy id', async () => {
    await mustApply(h, [service('web', ep(8000)), service('api', { namespace: 'shop', ...ep(8001) })])
    const streamsInOrder = [await watch('web', { proxyId: 'z' }), await watch('web', { proxyId: 'a' }), await watch('api', { proxyId: 'm' }, 'shop')]
    for (const stream of streamsInOrder) await stream.nextPush()
    expect((await status()).proxies.map((row) => `${row.namespace}/${row.service}/${row.proxyId}`)).toEqual([
      'default/web/a',
      'default/web/z',
      'shop/api/m',
    ])
  })
})
