/**
 * The `mesh-proxy` process and its signals: SIGHUP and file changes reload (a bad file is
 * rejected and the config in force stays), SIGTERM drains in-flight requests and exits 0.
 */
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, seen } from '../support/http.js'
import { parseMetrics, sum } from '../support/metrics.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { freePorts, waitFor } from '../support/ports.js'
import { proxyDoc, renderYaml, serviceDoc, type Doc } from '../support/resources.js'
import { CliProcess, hasStackTrace } from './cli-process.js'

let v1: HttpApp
let v2: HttpApp

beforeAll(async () => {
  v1 = await startHttpApp({ name: 'v1' })
  v2 = await startHttpApp({ name: 'v2' })
})

afterAll(async () => {
  await v1?.close()
  await v2?.close()
})

async function setup(extraProxy: Doc = {}) {
  const [admin, outbound] = (await freePorts(2)) as [number, number]
  const file = path.join(makeTempDir('mesh-signals-'), 'mesh.yaml')
  const config = (app: HttpApp) =>
    renderYaml([proxyDoc({ adminPort: admin, outboundPort: outbound, extra: extraProxy }), serviceDoc('orders', [app.port])])
  fs.writeFileSync(file, config(v1))
  const version = async () => (JSON.parse((await adminGet(admin, '/config')).body) as { version: number }).version
  const reloads = async (result: string) => sum(parseMetrics((await adminGet(admin, '/metrics')).body), 'config_reload_total', { result })
  const served = async () => seen(await h1({ port: outbound, host: 'orders' })).instance
  return { admin, outbound, file, config, version, reloads, served }
}

describe('reload', () => {
  it('re-reads the file on SIGHUP; a bad file is rejected and the version stays', async () => {
    const t = await setup()
    await using proxy = new CliProcess(['--config', t.file, '--no-watch'])
    await proxy.ready(t.admin)
    expect(await t.version()).toBe(1)

    fs.writeFileSync(t.file, t.config(v2))
    proxy.signal('SIGHUP')
    await waitFor('version 2 after SIGHUP', async () => (await t.version()) === 2)
    expect(await t.served()).toBe('v2')
    await proxy.stderrLine(/reload of .*: config version 2 in force$/)

    fs.writeFileSync(t.file, t.config(v1).replace('kind: Service', 'kind: Servce'))
    proxy.signal('SIGHUP')
    const line = await proxy.stderrLine(/rejected/)
    expect(line).toMatch(
      new RegExp(`^mesh-proxy: reload of ${t.file} rejected: ${t.file}: document 2\\b.*Servce.*; version 2 stays in force$`),
    )
    expect(await t.version()).toBe(2)
    expect(await t.served()).toBe('v2')
    expect(await t.reloads('failure')).toBe(1)
    expect(await t.reloads('success')).toBe(1)
    expect((await adminGet(t.admin, '/ready')).status).toBe(200)
    expect(hasStackTrace(proxy.stderr)).toBe(false)
  })

  it('reloads when the file changes, including a rename over it', async () => {
    const t = await setup()
    await using proxy = new CliProcess(['--config', t.file])
    await proxy.ready(t.admin)

    const tmp = `${t.file}.tmp`
    fs.writeFileSync(tmp, t.config(v2))
    fs.renameSync(tmp, t.file)
    await waitFor('version 2 after the file was replaced', async () => (await t.version()) === 2)
    expect(await t.served()).toBe('v2')

    fs.writeFileSync(t.file, 'apiVersion: mesh/v1\nkind: Proxy\n  name: broken\n')
    const line = await proxy.stderrLine(/rejected/)
    expect(line).toMatch(new RegExp(`^mesh-proxy: reload of ${t.file} rejected: ${t.file}:\\d+:\\d+: YAML syntax error: .*; version 2 stays in force$`))
    expect(await t.reloads('failure')).toBe(1)
    expect(await t.served()).toBe('v2')

    fs.writeFileSync(t.file, t.config(v1))
    await waitFor('version 3 once the file is good again', async () => (await t.version()) === 3)
    expect(await t.served()).toBe('v1')
  })
})

describe('shutdown', () => {
  it('drains an in-flight request on SIGTERM and exits 0', async () => {
    const t = await setup({ drainTimeout: '5s' })
    const proxy = new CliProcess(['--config', t.file])
    await proxy.ready(t.admin)

    const arrived = new Promise((resolve) => v1.events.once('request', resolve))
    const inFlight = h1({ port: t.outbound, host: 'orders', path: '/slow?delay=1000' })
    await arrived
    proxy.signal('SIGTERM')

    const reply = await inFlight
    expect(reply.status).toBe(200)
    expect(seen(reply).path).toBe('/slow?delay=1000')
    expect(await proxy.waitForExit()).toEqual({ code: 0, signal: null })
    expect(proxy.stderr).toContain('mesh-proxy: SIGTERM: draining (up to 5s)')
    expect(hasStackTrace(proxy.stderr)).toBe(false)
  })

  it('stops accepting new connections while draining', async () => {
    const t = await setup({ drainTimeout: '5s' })
    const proxy = new CliProcess(['--config', t.file])
    await proxy.ready(t.admin)

    const arrived = new Promise((resolve) => v1.events.once('request', resolve))
    const inFlight = h1({ port: t.outbound, host: 'orders', path: '/?delay=1500' })
    await arrived
    proxy.signal('SIGINT')
    await proxy.stderrLine(/SIGINT: draining/)
    await waitFor('/ready to answer 503', async () => (await adminGet(t.admin, '/ready')).status === 503)
    await expect(h1({ port: t.outbound, host: 'orders', timeoutMs: 2_000 })).rejects.toThrow()

    expect((await inFlight).status).toBe(200)
    expect(await proxy.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('exits at once with 1 on a second signal', async () => {
    const t = await setup({ drainTimeout: '30s' })
    const proxy = new CliProcess(['--config', t.file])
    await proxy.ready(t.admin)

    const arrived = new Promise((resolve) => v1.events.once('request', resolve))
    const inFlight = h1({ port: t.outbound, host: 'orders', path: '/?delay=20000' }).catch((e: unknown) => e)
    await arrived
    proxy.signal('SIGTERM')
    await proxy.stderrLine(/draining \(up to 30s\)/)
    proxy.signal('SIGTERM')
    expect(await proxy.waitForExit(5_000)).toEqual({ code: 1, signal: null })
    expect(await inFlight).toBeInstanceOf(Error)
  })
})
