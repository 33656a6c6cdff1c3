/**
 * gRPC through mesh-proxy with a real @grpc/grpc-js client and server: unary and
 * bidirectional streaming, trailers (grpc-status and custom metadata), non-OK statuses
 * classified as failures, over the outbound listener and inbound grpc / auto listeners.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { echoClient, grpc, startGrpcApp, TRAILER_KEY, unary, type EchoClient, type EchoReply, type GrpcApp } from '../support/grpc.js'
import { sum } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc } from '../support/resources.js'

let app: GrpcApp
let proxy: ProxyProcess
let outboundPort: number
let inboundGrpcPort: number
let inboundAutoPort: number
const clients: EchoClient[] = []

function client(port: number, authority?: string): EchoClient {
  const c = echoClient(port, authority)
  clients.push(c)
  return c
}

beforeAll(async () => {
  app = await startGrpcApp('grpc-1')
  const [adminPort, ...rest] = await freePorts(4)
  ;[outboundPort, inboundGrpcPort, inboundAutoPort] = rest as [number, number, number]
  proxy = await ProxyProcess.start(
    [
      proxyDoc({
        adminPort: adminPort!,
        outboundPort,
        inbound: [
          { port: inboundGrpcPort, forwardTo: app.address, protocol: 'grpc' },
          { port: inboundAutoPort, forwardTo: app.address, protocol: 'auto' },
        ],
      }),
      serviceDoc('greeter', [app.port], { protocol: 'grpc' }),
    ],
    adminPort!,
  )
})

afterAll(async () => {
  for (const c of clients) c.close()
  const exit = await proxy?.stop()
  await app?.close()
  expect(exit?.code).toBe(0)
})

/** Sends `count` messages one at a time, each only after the previous answer arrived. */
async function pingPong(c: EchoClient, count: number): Promise<{ replies: EchoReply[]; status: grpc.StatusObject }> {
  const call = c.Chat(new grpc.Metadata(), { deadline: Date.now() + 15_000 })
  const replies: EchoReply[] = []
  const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve))
  call.on('error', () => {}) // surfaced through 'status'
  const iterator = call[Symbol.asyncIterator]()
  for (let i = 0; i < count; i++) {
    call.write({ message: `m${i}` })
    const next = await iterator.next()
    if (next.done) throw new Error(`stream ended after ${i} replies`)
    replies.push(next.value as EchoReply)
  }
  call.end()
  // Drain until the server ends the stream.
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) replies.push(next.value as EchoReply)
  return { replies, status: await status }
}

describe('gRPC through the outbound listener (authority = service name)', () => {
  it('unary call succeeds and carries the trailers', async () => {
    const result = await unary(client(outboundPort, 'greeter'), 'hello')
    expect(result.error).toBeNull()
    expect(result.reply).toMatchObject({ message: 'hello', instance: 'grpc-1' })
    expect(result.reply!.authority).toMatch(/^greeter/i)
    expect(result.trailers?.get(TRAILER_KEY)).toEqual(['grpc-1'])
  })

  it('a non-OK status arrives with its message and trailers, and is counted as a failure', async () => {
    const before = await proxy.metrics()
    const labels = { direction: 'outbound', dst_service: 'default/greeter' }
    const failuresBefore = sum(before, 'response_total', { ...labels, classification: 'failure' })

    const result = await unary(client(outboundPort, 'greeter'), `fail:${grpc.status.NOT_FOUND}`)
    expect(result.error?.code).toBe(grpc.status.NOT_FOUND)
    expect(result.error?.details).toBe('asked to fail with 5')
    expect(result.trailers?.get(TRAILER_KEY)).toEqual(['grpc-1'])

    // gRPC errors travel in an HTTP 200 response; Linkerd classifies by grpc-status.
    await proxy.waitForMetric('response_total', { ...labels, classification: 'failure' }, failuresBefore + 1)
    const after = await proxy.metrics()
    expect(sum(after, 'response_total', { ...labels, classification: 'failure', status_code: '200' })).toBeGreaterThanOrEqual(1)
    expect(sum(after, 'response_total', { ...labels, classification: 'success' })).toBeGreaterThanOrEqual(1)
  })

  it('many concurrent unary calls multiplex over one channel', async () => {
    const c = client(outboundPort, 'greeter')
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => unary(c, `n${i}`)))
    results.forEach((r, i) => {
      expect(r.error).toBeNull()
      expect(r.reply?.message).toBe(`n${i}`)
    })
  })

  it('a large message crosses HTTP/2 flow-control windows intact', async () => {
    const big = 'x'.repeat(300_000) + 'end'
    const result = await unary(client(outboundPort, 'greeter'), big)
    expect(result.error).toBeNull()
    expect(result.reply?.message).toBe(big)
  })

  it('bidirectional streaming: each message is answered before the next is sent, then OK trailers', async () => {
    const { replies, status } = await pingPong(client(outboundPort, 'greeter'), 10)
    expect(replies.map((r) => r.message)).toEqual(Array.from({ length: 10 }, (_, i) => `echo:m${i}`))
    expect(status.code).toBe(grpc.status.OK)
    expect(status.metadata.get(TRAILER_KEY)).toEqual(['grpc-1'])
  })
})

describe('gRPC through inbound listeners', () => {
  it.each([
    ['grpc', () => inboundGrpcPort],
    ['auto', () => inboundAutoPort],
  ])('protocol %s: unary and bidirectional streaming', async (_protocol, port) => {
    const c = client(port())
    const result = await unary(c, 'inbound')
    expect(result.error).toBeNull()
    expect(result.reply).toMatchObject({ message: 'inbound', instance: 'grpc-1' })
    expect(result.trailers?.get(TRAILER_KEY)).toEqual(['grpc-1'])

    const { replies, status } = await pingPong(c, 5)
    expect(replies.map((r) => r.message)).toEqual(['echo:m0', 'echo:m1', 'echo:m2', 'echo:m3', 'echo:m4'])
    expect(status.code).toBe(grpc.status.OK)
  })

  it('counts inbound gRPC failures by grpc-status', async () => {
    const result = await unary(client(inboundGrpcPort), `fail:${grpc.status.UNAVAILABLE}`)
    expect(result.error?.code).toBe(grpc.status.UNAVAILABLE)
    await proxy.waitForMetric('response_total', { direction: 'inbound', classification: 'failure' }, 1)
  })
})
