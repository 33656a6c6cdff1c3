/**
 * Opaque TCP through mesh-proxy: outbound `tcp` ports, inbound `protocol: tcp`, and
 * inbound `auto` falling back to opaque forwarding for non-HTTP clients and for
 * server-first protocols where the client says nothing until the server greets it.
 */
import { randomBytes } from 'node:crypto'
import type net from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startBannerServer, startTcpEchoServer, type TcpServer } from '../support/apps.js'
import { readUntil, tcpConnect } from '../support/http.js'
import { select, sum } from '../support/metrics.js'
import { freePorts, waitFor } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc } from '../support/resources.js'

const BANNER = '220 ready\r\n'

let echo: TcpServer
let banner: TcpServer
let proxy: ProxyProcess
const port = {
  admin: 0,
  outboundEcho: 0,
  outboundBanner: 0,
  inboundTcp: 0,
  inboundAutoEcho: 0,
  inboundAutoBanner: 0,
}
const sockets: net.Socket[] = []

beforeAll(async () => {
  ;[echo, banner] = await Promise.all([startTcpEchoServer(), startBannerServer(BANNER)])
  const ports = await freePorts(6)
  Object.keys(port).forEach((k, i) => (port[k as keyof typeof port] = ports[i]!))
  proxy = await ProxyProcess.start(
    [
      proxyDoc({
        adminPort: port.admin,
        tcp: [
          { port: port.outboundEcho, service: 'echo' },
          { port: port.outboundBanner, service: 'smtp' },
        ],
        inbound: [
          { port: port.inboundTcp, forwardTo: echo.address, protocol: 'tcp' },
          { port: port.inboundAutoEcho, forwardTo: echo.address, protocol: 'auto' },
          { port: port.inboundAutoBanner, forwardTo: banner.address, protocol: 'auto' },
        ],
      }),
      serviceDoc('echo', [echo.port], { protocol: 'tcp', port: 7 }),
      serviceDoc('smtp', [banner.port], { protocol: 'tcp', port: 25 }),
    ],
    port.admin,
  )
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  const exit = await proxy?.stop()
  await Promise.all([echo?.close(), banner?.close()])
  expect(exit?.code).toBe(0)
})

async function connect(p: number): Promise<net.Socket> {
  const s = await tcpConnect(p)
  sockets.push(s)
  return s
}

async function roundTrip(p: number, payload: Buffer): Promise<Buffer> {
  const s = await connect(p)
  try {
    const answer = readUntil(s, (b) => b.length >= payload.length)
    s.write(payload)
    return await answer
  } finally {
    s.destroy()
  }
}

describe('outbound tcp port', () => {
  it('round-trips 256 KiB of random bytes to the Service and moves the tcp_* metrics', async () => {
    const labels = { direction: 'outbound', dst_service: 'default/echo' }
    const before = await proxy.metrics()
    const payload = randomBytes(256 * 1024)
    expect((await roundTrip(port.outboundEcho, payload)).equals(payload)).toBe(true)

    await proxy.waitForMetric('tcp_close_total', labels, sum(before, 'tcp_close_total', labels) + 1)
    const after = await proxy.metrics()
    expect(sum(after, 'tcp_open_total', labels) - sum(before, 'tcp_open_total', labels)).toBe(1)
    expect(sum(after, 'tcp_read_bytes_total', labels) - sum(before, 'tcp_read_bytes_total', labels)).toBe(payload.length)
    expect(sum(after, 'tcp_write_bytes_total', labels) - sum(before, 'tcp_write_bytes_total', labels)).toBe(payload.length)
    expect(sum(after, 'tcp_open_connections', labels)).toBe(0)
    const series = select(after, 'tcp_open_total', labels)
    expect(series.map((s) => s.labels.target_addr)).toContain(echo.address)
    expect(series.every((s) => s.labels.tls === 'false')).toBe(true)
  })

  it('shows open connections in tcp_open_connections while they are open', async () => {
    const labels = { direction: 'outbound', dst_service: 'default/echo' }
    const held = await Promise.all([1, 2, 3].map(() => connect(port.outboundEcho)))
    // Make sure each is through to the server before looking at the gauge.
    await Promise.all(held.map(async (s, i) => {
      const answer = readUntil(s, (b) => b.toString() === `ping${i}`)
      s.write(`ping${i}`)
      await answer
    }))
    await proxy.waitForMetric('tcp_open_connections', labels, 3)
    for (const s of held) s.destroy()
    await waitFor('tcp_open_connections back to 0', async () => sum(await proxy.metrics(), 'tcp_open_connections', labels) === 0)
  })

  it('carries many connections in parallel without mixing their bytes', async () => {
    const payloads = Array.from({ length: 20 }, () => randomBytes(16 * 1024))
    const answers = await Promise.all(payloads.map((p) => roundTrip(port.outboundEcho, p)))
    answers.forEach((a, i) => expect(a.equals(payloads[i]!), `connection ${i}`).toBe(true))
  })

  it('passes a half-close through: the client ends, the server finishes and ends', async () => {
    const s = await connect(port.outboundEcho)
    const ended = new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      s.on('end', () => resolve(Buffer.concat(chunks)))
      s.on('error', reject)
    })
    s.end('last words')
    expect((await ended).toString()).toBe('last words')
  })

  it('delivers a server-first banner to a client that sends nothing', async () => {
    const s = await connect(port.outboundBanner)
    expect((await readUntil(s, (b) => b.toString().endsWith('\r\n'))).toString()).toBe(BANNER)
    s.destroy()
  })
})

describe('inbound', () => {
  it('protocol tcp forwards bytes both ways', async () => {
    const payload = randomBytes(64 * 1024)
    expect((await roundTrip(port.inboundTcp, payload)).equals(payload)).toBe(true)
    await proxy.waitForMetric('tcp_open_total', { direction: 'inbound' }, 1)
  })

  it('protocol auto forwards a client-first non-HTTP protocol as opaque TCP', async () => {
    const payload = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00]), randomBytes(4096)])
    expect((await roundTrip(port.inboundAutoEcho, payload)).equals(payload)).toBe(true)
  })

  it('protocol auto does not stall a server-first protocol: the banner arrives unprompted', async () => {
    const s = await connect(port.inboundAutoBanner)
    // Detection gives up after detectTimeout (default 1 s) and falls back to opaque TCP;
    // 5 s is a generous bound, not a speed requirement.
    const greeting = await readUntil(s, (b) => b.toString().endsWith('\r\n'), 5_000)
    expect(greeting.toString()).toBe(BANNER)
    // The conversation continues as plain TCP afterwards.
    const reply = readUntil(s, (b) => b.toString().endsWith('\n'))
    s.write('HELO mesh\n')
    expect((await reply).toString()).toBe('250 HELO mesh\n')
    s.destroy()
  })
})
