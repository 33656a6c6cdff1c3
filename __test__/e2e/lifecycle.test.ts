/**
 * The mesh-proxy command as an operator meets it: --help/--version, one-line errors for
 * bad flags, bad files and busy ports, warnings for accepted-but-not-enforced fields,
 * and SIGTERM/SIGINT draining in-flight requests before exiting 0.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, seen, tcpConnect } from '../support/http.js'
import { freePorts, waitFor } from '../support/ports.js'
import { makeTempDir, ProxyProcess, REPO_ROOT, runCli } from '../support/proxy.js'
import { httpRouteDoc, proxyDoc, renderYaml, serviceDoc } from '../support/resources.js'

let app: HttpApp
const tmp = makeTempDir('mesh-cli-')

beforeAll(async () => {
  app = await startHttpApp({ name: 'app' })
})

afterAll(async () => {
  await app?.close()
  fs.rmSync(tmp, { recursive: true, force: true })
})

/** The user-facing part of stderr, and a check that it is not a stack trace. */
function expectOneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '')
  expect(lines, `stderr:\n${stderr}`).toHaveLength(1)
  expect(stderr).not.toMatch(/^\s+at /m)
  return lines[0]!
}

function writeFile(name: string, content: string): string {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, content)
  return file
}

describe('command line', () => {
  it('--help prints usage naming --config and exits 0', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/mesh-proxy/)
    expect(r.stdout).toMatch(/--config/)
  })

  it('--version prints the package version and exits 0', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    const r = await runCli(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(pkg.version)
  })

  it('an unknown flag exits non-zero with one line', async () => {
    const r = await runCli(['--bogus-flag'])
    expect(r.code).not.toBe(0)
    expect(expectOneLineError(r.stderr)).toMatch(/--bogus-flag/)
  })

  it('a missing config file exits non-zero with one line naming the file', async () => {
    const missing = path.join(tmp, 'does-not-exist.yaml')
    const r = await runCli(['--config', missing])
    expect(r.code).not.toBe(0)
    expect(expectOneLineError(r.stderr)).toContain('does-not-exist.yaml')
  })

  it('an invalid file exits non-zero naming file, document, field and expectation', async () => {
    const [admin, outbound] = await freePorts(2)
    const file = writeFile(
      'mesh.yaml',
      renderYaml([
        proxyDoc({ adminPort: admin!, outboundPort: outbound! }),
        { ...serviceDoc('orders', [1]), endpoints: [{ address: 'localhost' }] },
      ]),
    )
    const r = await runCli(['--config', file])
    expect(r.code).not.toBe(0)
    expect(expectOneLineError(r.stderr)).toMatch(/mesh\.yaml: document 2 \(Service "orders"\): endpoints\[0\]\.address: expected HOST:PORT, got "localhost"/)
  })

  it('a port in use exits non-zero with one line naming the address', async () => {
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const busyPort = (busy.address() as net.AddressInfo).port
    try {
      const [admin] = await freePorts(1)
      const file = writeFile('busy.yaml', renderYaml([proxyDoc({ adminPort: admin!, outboundPort: busyPort }), serviceDoc('orders', [app.port])]))
      const r = await runCli(['--config', file])
      expect(r.code).not.toBe(0)
      expect(expectOneLineError(r.stderr)).toContain(`127.0.0.1:${busyPort}`)
    } finally {
      busy.close()
    }
  })

  it('warns, one line per field, about fields accepted but not enforced, and still serves', async () => {
    const [admin, outbound] = (await freePorts(2)) as [number, number]
    const proxy = await ProxyProcess.start(
      [
        proxyDoc({ adminPort: admin, outboundPort: outbound }),
        serviceDoc('orders', [app.port]),
        { ...serviceDoc('billing', [app.port]), healthCheck: { path: '/healthz' } },
      ],
      admin,
    )
    try {
      expect(proxy.stderr).toMatch(/mesh\.yaml: document 3 \(Service "billing"\): healthCheck: accepted but not enforced/)
      const reply = await h1({ port: outbound, host: 'orders', path: '/warned' })
      expect(reply.status).toBe(200)
    } finally {
      expect((await proxy.stop()).code).toBe(0)
    }
  })
})

describe('shutdown', () => {
  async function startProxy(drainTimeout?: string): Promise<{ proxy: ProxyProcess; outbound: number }> {
    const [admin, outbound] = (await freePorts(2)) as [number, number]
    const proxy = await ProxyProcess.start(
      [proxyDoc({ adminPort: admin, outboundPort: outbound, extra: drainTimeout ? { drainTimeout } : { drainTimeout: '10s' } }), serviceDoc('orders', [app.port])],
      admin,
    )
    return { proxy, outbound }
  }

  it('SIGTERM: stops accepting, lets the in-flight request finish, exits 0', async () => {
    const { proxy, outbound } = await startProxy()
    const arrived = new Promise<void>((resolve) => app.events.once('request', () => resolve()))
    const slow = h1({ port: outbound, host: 'orders', path: '/slow?delay=3000', timeoutMs: 15_000 })
    await arrived
    proxy.signal('SIGTERM')

    // New connections are refused while the slow request is still being served.
    let slowDone = false
    void slow.finally(() => (slowDone = true)).catch(() => {})
    await waitFor('the outbound listener to stop accepting', async () => {
      try {
        const s = await tcpConnect(outbound)
        s.destroy()
        return false
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED'
      }
    }, { timeoutMs: 2_500 })
    expect(slowDone).toBe(false)

    const reply = await slow
    expect(reply.status).toBe(200)
    expect(seen(reply).path).toBe('/slow?delay=3000')
    expect(await proxy.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it('SIGTERM: a request outlasting drainTimeout is cut off and the process still exits 0', async () => {
    const { proxy, outbound } = await startProxy('500ms')
    const arrived = new Promise<void>((resolve) => app.events.once('request', () => resolve()))
    const stuck = h1({ port: outbound, host: 'orders', path: '/stuck?delay=20000', timeoutMs: 25_000 }).then(
      (r) => `status ${r.status}`,
      (e: Error) => `error ${e.message}`,
    )
    await arrived
    proxy.signal('SIGTERM')
    // Well under the 20 s the app would take.
    expect(await proxy.waitForExit(10_000)).toEqual({ code: 0, signal: null })
    expect(await stuck).not.toBe('status 200')
  })

  it('SIGINT exits 0', async () => {
    const { proxy } = await startProxy()
    proxy.signal('SIGINT')
    expect(await proxy.waitForExit()).toEqual({ code: 0, signal: null })
  })
})
