/**
 * Each load balancer, judged by where requests land: round_robin, random,
 * least_request (P2C), ewma (peak-EWMA P2C) and ring_hash (header and client address).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, keepAliveAgent, runConcurrently, seen, tally } from '../support/http.js'
import { freePorts } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

let trio: HttpApp[]
let fast: HttpApp
let slow: HttpApp
let proxy: ProxyProcess
let outboundPort: number
let adminPort: number
const agent = keepAliveAgent(16)

function docs(extra: Doc[] = []): Doc[] {
  const trioPorts = trio.map((a) => a.port)
  return [
    proxyDoc({ adminPort, outboundPort }),
    serviceDoc('rr', trioPorts, { loadBalancer: 'round_robin' }),
    serviceDoc('rand', trioPorts, { loadBalancer: 'random' }),
    serviceDoc('lr', [fast.port, slow.port], { loadBalancer: 'least_request' }),
    serviceDoc('peak', [fast.port, slow.port], { loadBalancer: 'ewma' }),
    serviceDoc('sticky', trioPorts, { loadBalancer: { type: 'ring_hash', hashHeader: 'x-user' } }),
    serviceDoc('sticky-ip', trioPorts, { loadBalancer: 'ring_hash' }),
    ...extra,
  ]
}

beforeAll(async () => {
  trio = await Promise.all(['e1', 'e2', 'e3'].map((name) => startHttpApp({ name })))
  ;[fast, slow] = await Promise.all([startHttpApp({ name: 'fast' }), startHttpApp({ name: 'slow', delayMs: 50 })])
  ;[adminPort, outboundPort] = (await freePorts(2)) as [number, number]
  proxy = await ProxyProcess.start(docs(), adminPort)
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await Promise.all([...(trio ?? []), fast, slow].map((a) => a?.close()))
  expect(exit?.code).toBe(0)
})

async function served(host: string, headers: Record<string, string> = {}): Promise<string> {
  const reply = await h1({ port: outboundPort, host, path: '/lb', headers, agent })
  expect(reply.status).toBe(200)
  return seen(reply).instance
}

async function sequential(host: string, count: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push(await served(host))
  return out
}

describe('round_robin', () => {
  let cycle: string[]

  it('spreads sequential requests exactly evenly over 3 endpoints, in a fixed cycle', async () => {
    const order = await sequential('rr', 300)
    expect(Object.fromEntries(tally(order))).toEqual({ e1: 100, e2: 100, e3: 100 })
    cycle = order.slice(0, 3)
    expect(new Set(cycle).size).toBe(3)
    order.forEach((instance, i) => expect(instance, `request ${i}`).toBe(cycle[i % 3]))
  })

  it('keeps its position across a config swap', async () => {
    const next = (instance: string): string => cycle[(cycle.indexOf(instance) + 1) % 3]!
    // Stop where the next pick is not the first endpoint, so a cursor that restarted
    // from the beginning would be caught.
    let last = await served('rr')
    while (next(last) === 'e1') last = await served('rr')

    const before = await proxy.version()
    proxy.writeConfig(docs([serviceDoc('unrelated', [fast.port])]))
    proxy.signal('SIGHUP')
    await proxy.waitForVersionAbove(before)
    expect(await served('rr')).toBe(next(last))
  })
})

describe('random', () => {
  it('spreads roughly evenly over 3 endpoints', async () => {
    const counts = tally(await sequential('rand', 600))
    // Each count is Binomial(600, 1/3): mean 200, sigma ~= 11.5; 5 sigma ~= 58.
    for (const name of ['e1', 'e2', 'e3']) {
      expect(counts.get(name) ?? 0, name).toBeGreaterThanOrEqual(200 - 58)
      expect(counts.get(name) ?? 0, name).toBeLessThanOrEqual(200 + 58)
    }
  })
})

describe.each([
  ['least_request', 'lr'],
  ['ewma', 'peak'],
])('%s', (_name, host) => {
  it('prefers an endpoint answering at once over one that takes 50 ms', async () => {
    const N = 400
    const order = await runConcurrently(N, 8, () => served(host))
    const counts = tally(order)
    const fastShare = (counts.get('fast') ?? 0) / N
    // Under 8-way concurrency the slow endpoint builds up in-flight requests and latency;
    // an even spread would give ~50 %, a load-aware balancer gives the fast one most.
    expect(fastShare, JSON.stringify(Object.fromEntries(counts))).toBeGreaterThan(2 / 3)
    expect((counts.get('fast') ?? 0) + (counts.get('slow') ?? 0)).toBe(N)
  })
})

describe('ring_hash', () => {
  it('sends the same header value to the same endpoint every time, and different values to more than one', async () => {
    const owner = new Map<string, string>()
    for (let round = 0; round < 5; round++) {
      for (let u = 0; u < 20; u++) {
        const user = `user-${u}`
        const instance = await served('sticky', { 'x-user': user })
        if (!owner.has(user)) owner.set(user, instance)
        expect(instance, `${user} in round ${round}`).toBe(owner.get(user))
      }
    }
    // 20 keys all on one of 3 endpoints happens with probability ~3 * 3^-20 for a working ring.
    expect(new Set(owner.values()).size).toBeGreaterThan(1)
  })

  it('hashes the client address when no header is configured', async () => {
    const order = await sequential('sticky-ip', 30)
    expect(new Set(order).size).toBe(1)
  })
})
