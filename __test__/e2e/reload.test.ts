/**
 * Reloading the config file: an in-place write, a replace-by-rename, SIGHUP; a bad file
 * is rejected with one clear stderr line and a failure metric while the old config keeps
 * serving; and 20 route swaps under continuous keep-alive load lose no request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, keepAliveAgent, seen } from '../support/http.js'
import { sum } from '../support/metrics.js'
import { freePorts, sleep, waitFor } from '../support/ports.js'
import { ProxyProcess } from '../support/proxy.js'
import { httpRouteDoc, proxyDoc, renderYaml, serviceDoc, type Doc, type RuleSpec } from '../support/resources.js'

let blue: HttpApp
let green: HttpApp
let proxy: ProxyProcess
let adminPort: number
let outboundPort: number
const agent = keepAliveAgent(16)

/** Service `web` routed wholly to `target`, plus optional extra rules. */
function docs(target: 'blue' | 'green', extraRules: RuleSpec[] = [], ports = { adminPort, outboundPort }): Doc[] {
  return [
    proxyDoc(ports),
    serviceDoc('blue', [blue.port]),
    serviceDoc('green', [green.port]),
    serviceDoc('web', [blue.port]),
    httpRouteDoc('web-route', 'web', [...extraRules, { backendRefs: [{ name: target }] }]),
  ]
}

async function servedBy(path = '/', port = outboundPort): Promise<string> {
  const reply = await h1({ port, host: 'web', path, agent })
  expect(reply.status, reply.body).toBe(200)
  return seen(reply).instance
}

async function reloads(result: 'success' | 'failure', p = proxy): Promise<number> {
  return sum(await p.metrics(), 'config_reload_total', { result })
}

beforeAll(async () => {
  ;[blue, green] = await Promise.all([startHttpApp({ name: 'blue' }), startHttpApp({ name: 'green' })])
  ;[adminPort, outboundPort] = (await freePorts(2)) as [number, number]
  proxy = await ProxyProcess.start(docs('blue'), adminPort)
})

afterAll(async () => {
  agent.destroy()
  const exit = await proxy?.stop()
  await Promise.all([blue?.close(), green?.close()])
  expect(exit?.code).toBe(0)
})

describe('reload with a good file', () => {
  it('picks up an in-place write of the file', async () => {
    expect(await servedBy()).toBe('blue')
    const before = await proxy.version()
    const successes = await reloads('success')
    proxy.writeConfig(docs('green'))
    const after = await proxy.waitForVersionAbove(before)
    expect(await servedBy()).toBe('green')
    expect(sum(await proxy.metrics(), 'config_version')).toBe(after)
    expect(await reloads('success')).toBeGreaterThan(successes)
    const route = (await proxy.config()).resources.find((r) => r.kind === 'HTTPRoute') as { rules: RuleSpec[] }
    expect(route.rules.at(-1)!.backendRefs).toEqual([expect.objectContaining({ name: 'green' })])
  })

  it('picks up a file replaced by rename (editors, ConfigMap updates)', async () => {
    const before = await proxy.version()
    // (Each write in this file differs from the config in force: an unchanged file is not a reload.)
    proxy.replaceConfig(docs('green', [{ matches: [{ path: { type: 'PathPrefix', value: '/renamed' } }], backendRefs: [{ name: 'blue' }] }]))
    await proxy.waitForVersionAbove(before)
    expect(await servedBy('/renamed/x')).toBe('blue')
    expect(await servedBy('/old')).toBe('green')
    // And the watch still works after the rename.
    const next = await proxy.version()
    proxy.writeConfig(docs('blue'))
    await proxy.waitForVersionAbove(next)
    expect(await servedBy()).toBe('blue')
  })
})

describe('reload with a bad file', () => {
  // Document 2 is Service "blue"; its endpoint address is not HOST:PORT.
  function badDocs(): string {
    const d = docs('green')
    ;(d[1] as { endpoints: { address: string }[] }).endpoints[0]!.address = 'localhost'
    return renderYaml(d)
  }

  async function expectRejected(write: () => void, expectedLine: RegExp): Promise<void> {
    const version = await proxy.version()
    const failures = await reloads('failure')
    const servedBefore = await servedBy()
    const stderrMark = proxy.stderr.length
    write()
    await proxy.waitForMetric('config_reload_total', { result: 'failure' }, failures + 1)

    const newLines = proxy.stderr.slice(stderrMark).split('\n').filter((l) => l.trim() !== '')
    expect(newLines.some((l) => expectedLine.test(l)), `stderr since the write:\n${newLines.join('\n')}`).toBe(true)
    // One line per error: no stack trace, no multi-line dump.
    expect(newLines.filter((l) => /^\s+at /.test(l) || /^\s/.test(l))).toEqual([])

    expect(await proxy.version()).toBe(version)
    expect(sum(await proxy.metrics(), 'config_version')).toBe(version)
    // The config in force before the bad write keeps serving.
    expect(await servedBy()).toBe(servedBefore)
  }

  it('rejects an invalid field on file change, names file, document and field, keeps serving', async () => {
    await expectRejected(
      () => proxy.writeConfig(badDocs()),
      /mesh\.yaml: document 2 \(Service "blue"\): endpoints\[0\]\.address: .*localhost/,
    )
  })

  it('rejects a YAML syntax error with the file name and keeps serving', async () => {
    await expectRejected(() => proxy.writeConfig(`${renderYaml(docs('green'))}---\nkind: [unclosed\n`), /mesh\.yaml/)
  })

  it('rejects a route to an unknown Service', async () => {
    const d = docs('blue')
    ;(d[4] as { rules: RuleSpec[] }).rules[0]!.backendRefs = [{ name: 'nope' }]
    await expectRejected(() => proxy.writeConfig(renderYaml(d)), /mesh\.yaml: document 5 \(HTTPRoute "web-route"\): rules\[0\]\.backendRefs\[0\].*nope/)
  })

  it('recovers when the file is fixed', async () => {
    const v = await proxy.version()
    proxy.writeConfig(docs('green'))
    await proxy.waitForVersionAbove(v)
    expect(await servedBy()).toBe('green')
  })
})

describe('SIGHUP (a proxy started with --no-watch, so only the signal can reload)', () => {
  let quiet: ProxyProcess
  let ports: { adminPort: number; outboundPort: number }

  beforeAll(async () => {
    const [a, o] = (await freePorts(2)) as [number, number]
    ports = { adminPort: a, outboundPort: o }
    quiet = await ProxyProcess.start(docs('blue', [], ports), a, { args: ['--no-watch'] })
  })
  afterAll(async () => {
    const exit = await quiet?.stop()
    expect(exit?.code).toBe(0)
  })

  it('re-reads the file on SIGHUP, and only then', async () => {
    const before = await quiet.version()
    quiet.writeConfig(docs('blue', [{ matches: [{ path: { type: 'PathPrefix', value: '/new' } }], backendRefs: [{ name: 'green' }] }], ports))
    // Without the watch the change alone must not be applied.
    await sleep(500)
    expect(await quiet.version()).toBe(before)
    expect(await servedBy('/new/thing', ports.outboundPort)).toBe('blue')

    quiet.signal('SIGHUP')
    await quiet.waitForVersionAbove(before)
    expect(await servedBy('/new/thing', ports.outboundPort)).toBe('green')
    expect(await servedBy('/old', ports.outboundPort)).toBe('blue')
  })

  it('rejects a bad file on SIGHUP with one stderr line and a failure count, and keeps serving', async () => {
    const version = await quiet.version()
    const failures = await reloads('failure', quiet)
    const stderrMark = quiet.stderr.length
    const bad = docs('green', [], ports)
    ;(bad[1] as { endpoints: { address: string }[] }).endpoints[0]!.address = 'localhost'
    quiet.writeConfig(renderYaml(bad))
    quiet.signal('SIGHUP')
    await quiet.waitForMetric('config_reload_total', { result: 'failure' }, failures + 1)
    expect(await reloads('failure', quiet)).toBe(failures + 1)

    const newLines = quiet.stderr.slice(stderrMark).split('\n').filter((l) => l.trim() !== '')
    expect(newLines).toHaveLength(1)
    expect(newLines[0]).toMatch(/mesh\.yaml: document 2 \(Service "blue"\): endpoints\[0\]\.address: expected HOST:PORT, got "localhost"/)
    expect(await quiet.version()).toBe(version)
    expect(await servedBy('/new/thing', ports.outboundPort)).toBe('green')
  })
})

describe('route swaps under load', () => {
  it('swaps the route 20 times under continuous keep-alive load without failing a request', { timeout: 90_000 }, async () => {
    const SWAPS = 20
    // Load: 8 concurrent keep-alive clients, bounded by count and by time in case a swap hangs.
    const MAX_REQUESTS = 200_000
    const deadline = Date.now() + 60_000
    let stop = false
    let sent = 0
    const failures: string[] = []
    const servedCounts = new Map<string, number>()
    const worker = async (): Promise<void> => {
      while (!stop && sent < MAX_REQUESTS && Date.now() < deadline) {
        sent++
        try {
          const reply = await h1({ port: outboundPort, host: 'web', path: '/load', agent })
          if (reply.status !== 200) failures.push(`status ${reply.status}: ${reply.body.slice(0, 200)}`)
          else {
            const instance = seen(reply).instance
            servedCounts.set(instance, (servedCounts.get(instance) ?? 0) + 1)
          }
        } catch (error) {
          failures.push(`error: ${(error as Error).message}`)
        }
      }
    }
    const load = Array.from({ length: 8 }, worker)

    try {
      await waitFor('load to start', () => sent > 50)
      for (let i = 1; i <= SWAPS; i++) {
        const target = i % 2 === 1 ? 'blue' : 'green'
        const before = await proxy.version()
        const sentBefore = sent
        proxy.writeConfig(docs(target, [{ matches: [{ path: { type: 'Exact', value: `/swap-${i}` } }], backendRefs: [{ name: target }] }]))
        await proxy.waitForVersionAbove(before)
        // A request issued after /config shows the new version uses the new routes.
        expect(await servedBy(`/swap-${i}`), `swap ${i}`).toBe(target)
        expect(await servedBy('/after'), `swap ${i}`).toBe(target)
        // Let some load run against this version before the next swap.
        await waitFor(`load during swap ${i}`, () => sent > sentBefore + 20)
      }
    } finally {
      stop = true
      await Promise.all(load)
    }
    expect(failures).toEqual([])
    expect(servedCounts.get('blue') ?? 0).toBeGreaterThan(0)
    expect(servedCounts.get('green') ?? 0).toBeGreaterThan(0)
    expect(proxy.stderr).not.toMatch(/panick/i)
  })
})
