/** MeshProxy started from a file: reload() and the file watch, with good and bad files. */
import fs from 'node:fs'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { MeshProxy, type MeshProxyEvent } from '../../src/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, seen } from '../support/http.js'
import { parseMetrics, sum } from '../support/metrics.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { freePorts, sleep, waitFor } from '../support/ports.js'
import { proxyDoc, renderYaml, serviceDoc } from '../support/resources.js'

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

async function setup(watch: boolean) {
  const [admin, outbound] = (await freePorts(2)) as [number, number]
  const file = path.join(makeTempDir('mesh-reload-'), 'mesh.yaml')
  const config = (app: HttpApp) => renderYaml([proxyDoc({ adminPort: admin, outboundPort: outbound }), serviceDoc('orders', [app.port])])
  fs.writeFileSync(file, config(v1))
  const lines: string[] = []
  const events: MeshProxyEvent[] = []
  const proxy = await MeshProxy.start({
    configFile: file,
    watch,
    logger: (line) => lines.push(line),
    onEvent: (e) => events.push(e),
  })
  const served = async () => seen(await h1({ port: outbound, host: 'orders' })).instance
  const reloads = async (result: string) => sum(parseMetrics((await adminGet(admin, '/metrics')).body), 'config_reload_total', { result })
  return { proxy, file, config, lines, events, served, reloads, admin }
}

describe('reload()', () => {
  it('applies a changed file, rejects a bad one and keeps the version in force', async () => {
    const t = await setup(false)
    await using proxy = t.proxy
    expect(proxy.config?.source).toBe(t.file)

    fs.writeFileSync(t.file, t.config(v2))
    expect(await proxy.reload()).toEqual({ ok: true, version: 2, changed: true })
    expect(await t.served()).toBe('v2')
    expect(t.lines).toContain(`reload of ${t.file}: config version 2 in force`)

    fs.writeFileSync(t.file, t.config(v2).replace('port: 80', 'port: eighty'))
    const rejected = await proxy.reload()
    expect(rejected).toMatchObject({ ok: false, version: 2 })
    expect(rejected.ok === false && rejected.error).toMatch(new RegExp(`^${t.file}: document 2 \\(Service "orders"\\): port: `))
    expect(t.lines.at(-1)).toBe(`reload of ${t.file} rejected: ${rejected.ok === false ? rejected.error : ''}; version 2 stays in force`)
    expect(proxy.version).toBe(2)
    expect(await t.served()).toBe('v2')
    expect(await t.reloads('failure')).toBe(1)
    expect(await t.reloads('success')).toBe(1)
    expect(t.events.at(-1)).toMatchObject({ type: 'rejected', trigger: 'reload', version: 2, source: t.file })

    // A file that went missing is a failed reload too, not a crash.
    fs.rmSync(t.file)
    expect(await proxy.reload()).toMatchObject({ ok: false, version: 2, error: `${t.file}: cannot read config file: no such file` })

    // Unchanged content: nothing to apply, the version stays.
    fs.writeFileSync(t.file, t.config(v2))
    expect(await proxy.reload()).toEqual({ ok: true, version: 2, changed: false })
    expect(t.lines.at(-1)).toBe(`reload of ${t.file}: unchanged; version 2 stays in force`)
  })

  it('runs reloads one at a time, in order', async () => {
    const t = await setup(false)
    await using proxy = t.proxy
    fs.writeFileSync(t.file, t.config(v2))
    const results = await Promise.all([proxy.reload(), proxy.reload(), proxy.reload()])
    expect(results).toEqual([
      { ok: true, version: 2, changed: true },
      { ok: true, version: 2, changed: false },
      { ok: true, version: 2, changed: false },
    ])
  })

  it('answers without a config file to reload', async () => {
    const [admin] = (await freePorts(1)) as [number]
    await using proxy = await MeshProxy.start({ resources: [proxyDoc({ adminPort: admin, outboundPort: 0 })], logger: null })
    expect(await proxy.reload()).toMatchObject({ ok: false, error: 'nothing to reload: the proxy was not started from a configFile' })
  })
})

describe('file watch', () => {
  it('reloads when the file is rewritten in place or replaced by rename', async () => {
    const t = await setup(true)
    await using proxy = t.proxy

    fs.writeFileSync(t.file, t.config(v2))
    await waitFor('version 2 after an in-place write', () => proxy.version === 2)
    expect(await t.served()).toBe('v2')

    // Editors and ConfigMaps replace the file: the watch must survive the rename.
    const tmp = `${t.file}.tmp`
    fs.writeFileSync(tmp, t.config(v1))
    fs.renameSync(tmp, t.file)
    await waitFor('version 3 after a rename over the file', () => proxy.version === 3)
    expect(await t.served()).toBe('v1')

    fs.writeFileSync(t.file, 'apiVersion: mesh/v1\nkind: Proxy\nname: [unclosed\n')
    await waitFor('the rejected reload', () => t.lines.some((l) => l.startsWith(`reload of ${t.file} rejected: ${t.file}:4:1: YAML syntax error`)))
    expect(t.lines.find((l) => l.includes('rejected'))).toMatch(/; version 3 stays in force$/)
    expect(proxy.version).toBe(3)
    expect(await t.served()).toBe('v1')
    expect(await t.reloads('failure')).toBe(1)

    // A file in the same directory with another name is not the config.
    fs.writeFileSync(path.join(path.dirname(t.file), 'other.yaml'), 'garbage: [')
    await sleep(400)
    expect(await t.reloads('failure')).toBe(1)

    fs.writeFileSync(t.file, t.config(v2))
    await waitFor('version 4 after the file is fixed', () => proxy.version === 4)
    expect(await t.served()).toBe('v2')
  })

  it('stops watching on close', async () => {
    const t = await setup(true)
    await t.proxy.close()
    fs.writeFileSync(t.file, t.config(v2))
    await sleep(400)
    expect(t.proxy.version).toBe(1)
    expect(t.lines.filter((l) => l.startsWith('reload'))).toEqual([])
  })
})
