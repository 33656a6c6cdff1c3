/**
 * The `mesh-proxy` command as a user runs it: flags, exit statuses and one-line errors.
 * Runs bin/mesh-proxy.js, so it needs the compiled dist/ (npm test builds it first).
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import { describe, expect, it } from 'vitest'

import { engineVersion } from '../../native/index.js'
import { parseProxyArgs, UsageError } from '../../src/cli/args.js'
import { makeTempDir, runCli } from '../support/proxy.js'
import { freePorts } from '../support/ports.js'
import { proxyDoc, renderYaml, serviceDoc } from '../support/resources.js'
import { CliProcess, hasStackTrace } from './cli-process.js'

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version

function writeConfig(text: string, name = 'mesh.yaml'): string {
  const file = path.join(makeTempDir('mesh-cli-'), name)
  fs.writeFileSync(file, text)
  return file
}

/** The one line a failed run must print, checked the same way for every failure. */
function expectOneLineFailure(result: { code: number | null; stdout: string; stderr: string }, code: number): string {
  expect(result.code, result.stderr).toBe(code)
  expect(hasStackTrace(result.stderr)).toBe(false)
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^mesh-proxy: \S/)
  return lines[0] as string
}

describe('mesh-proxy flags', () => {
  it('--help prints usage and exits 0', async () => {
    const result = await runCli(['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^Usage: mesh-proxy --config FILE/)
    for (const flag of ['--config', '--admin', '--workers', '--drain-timeout', '--no-watch', '--version']) {
      expect(result.stdout).toContain(flag)
    }
    expect(result.stderr).toBe('')
    expect((await runCli(['-h'])).stdout).toBe(result.stdout)
  })

  it('--version prints the package and engine versions', async () => {
    const result = await runCli(['--version'])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`mesh-proxy ${PACKAGE_VERSION} (engine ${engineVersion()})\n`)
    expect(result.stderr).toBe('')
  })

  it('rejects an unknown flag with exit 2', async () => {
    const line = expectOneLineFailure(await runCli(['--config', 'x.yaml', '--bogus']), 2)
    expect(line).toBe('mesh-proxy: unknown flag --bogus (see mesh-proxy --help)')
  })

  it('needs --config', async () => {
    expect(expectOneLineFailure(await runCli([]), 2)).toBe('mesh-proxy: missing --config FILE or --control-plane HOST:PORT (see mesh-proxy --help)')
    expect(expectOneLineFailure(await runCli(['--config']), 2)).toBe('mesh-proxy: --config needs a value')
  })

  it('checks flag values', async () => {
    expect(expectOneLineFailure(await runCli(['--config', 'x.yaml', '--workers', 'lots']), 2)).toBe(
      'mesh-proxy: --workers: expected a whole number from 1 to 1024, got "lots"',
    )
    expect(expectOneLineFailure(await runCli(['--config', 'x.yaml', '--drain-timeout', '10']), 2)).toBe(
      'mesh-proxy: --drain-timeout: expected a duration like 500ms, 10s or 1m, got "10"',
    )
    expect(expectOneLineFailure(await runCli(['--config', 'x.yaml', 'extra']), 2)).toBe('mesh-proxy: unexpected argument "extra"')
  })

  it('refuses connected-mode flags without --control-plane', async () => {
    const result = await runCli(['--config', 'x.yaml', '--name', 'web'])
    expect(expectOneLineFailure(result, 2)).toBe('mesh-proxy: --name needs --control-plane HOST:PORT (connected mode)')
  })
})

describe('parseProxyArgs', () => {
  it('reads every flag, in both spellings', () => {
    expect(parseProxyArgs(['--config=a.yaml', '--admin', '127.0.0.1:9000', '--workers=4', '--drain-timeout', '1m30s', '--no-watch'])).toEqual({
      kind: 'run',
      configFile: 'a.yaml',
      adminListen: '127.0.0.1:9000',
      workerThreads: 4,
      drainTimeoutMs: 90_000,
      watch: false,
    })
    expect(parseProxyArgs(['-c', 'a.yaml'])).toEqual({ kind: 'run', configFile: 'a.yaml', watch: true })
    expect(parseProxyArgs(['--config', 'a.yaml', '--admin', 'off'])).toMatchObject({ adminListen: 'off' })
    expect(parseProxyArgs(['--bogus-later', '--help'].slice(1))).toEqual({ kind: 'help' })
    expect(() => parseProxyArgs(['--no-watch=yes', '-c', 'a'])).toThrow(new UsageError('--no-watch takes no value'))
    expect(() => parseProxyArgs(['--admin', 'nowhere', '-c', 'a'])).toThrow(/--admin: expected HOST:PORT or off, got "nowhere"/)
  })
})

describe('mesh-proxy config errors', () => {
  it('reports a missing file in one line, exit 1', async () => {
    const missing = path.join(makeTempDir('mesh-cli-'), 'missing.yaml')
    expect(expectOneLineFailure(await runCli(['--config', missing]), 1)).toBe(
      `mesh-proxy: ${missing}: cannot read config file: no such file`,
    )
  })

  it('reports a bad file naming the file, document and field', async () => {
    const [admin] = (await freePorts(1)) as [number]
    const file = writeConfig(
      renderYaml([
        proxyDoc({ adminPort: admin, outboundPort: 0 }),
        { ...serviceDoc('orders', [8080]), endpoints: [{ address: 'localhost' }] },
      ]),
    )
    expect(expectOneLineFailure(await runCli(['--config', file]), 1)).toBe(
      `mesh-proxy: ${file}: document 2 (Service "orders"): endpoints[0].address: expected HOST:PORT, got "localhost"`,
    )
  })

  it('reports a data-plane port in use', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const taken = (blocker.address() as net.AddressInfo).port
    try {
      const [admin] = (await freePorts(1)) as [number]
      const file = writeConfig(renderYaml([proxyDoc({ adminPort: admin, outboundPort: taken })]))
      const line = expectOneLineFailure(await runCli(['--config', file]), 1)
      expect(line).toMatch(new RegExp(`^mesh-proxy: ${file}: outbound\\.listen: cannot listen on 127\\.0\\.0\\.1:${taken}: `))
    } finally {
      blocker.close()
    }
  })

  it('reports the admin port in use, from the file or from --admin', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const taken = (blocker.address() as net.AddressInfo).port
    try {
      const [outbound, admin] = (await freePorts(2)) as [number, number]
      const fromFile = writeConfig(renderYaml([proxyDoc({ adminPort: taken, outboundPort: outbound })]))
      expect(expectOneLineFailure(await runCli(['--config', fromFile]), 1)).toBe(
        `mesh-proxy: ${fromFile}: admin.listen: cannot listen on 127.0.0.1:${taken}: address already in use`,
      )
      const fromFlag = writeConfig(renderYaml([proxyDoc({ adminPort: admin, outboundPort: outbound })]))
      expect(expectOneLineFailure(await runCli(['--config', fromFlag, '--admin', `127.0.0.1:${taken}`]), 1)).toBe(
        `mesh-proxy: --admin: cannot listen on 127.0.0.1:${taken}: address already in use`,
      )
    } finally {
      blocker.close()
    }
  })
})

describe('mesh-proxy start', () => {
  it('prints one start line with every listener and honours --admin and --workers', async () => {
    const [admin, outbound, inbound, app] = (await freePorts(4)) as [number, number, number, number]
    const file = writeConfig(
      renderYaml([
        proxyDoc({ adminPort: 1, outboundPort: outbound, inbound: [{ port: inbound, forwardTo: `127.0.0.1:${app}` }] }),
        serviceDoc('orders', [app]),
      ]),
    )
    await using proxy = new CliProcess(['--config', file, '--admin', `127.0.0.1:${admin}`, '--workers', '2', '--drain-timeout', '1500ms'])
    await proxy.ready(admin)
    const line = await proxy.stderrLine(/config version 1/)
    expect(line).toBe(
      `mesh-proxy: config version 1 from ${file}; outbound 127.0.0.1:${outbound}, inbound 127.0.0.1:${inbound} -> 127.0.0.1:${app}, admin 127.0.0.1:${admin}`,
    )
    proxy.signal('SIGTERM')
    expect(await proxy.waitForExit()).toEqual({ code: 0, signal: null })
    expect(proxy.stderr).toContain('mesh-proxy: SIGTERM: draining (up to 1500ms)')
  })

  it('prints the warnings of the file it loads', async () => {
    const [admin, outbound] = (await freePorts(2)) as [number, number]
    const file = writeConfig(
      renderYaml([proxyDoc({ adminPort: admin, outboundPort: outbound }), { ...serviceDoc('orders', [8080]), healthCheck: { path: '/healthz' } }]),
    )
    await using proxy = new CliProcess(['--config', file])
    await proxy.ready(admin)
    expect(await proxy.stderrLine(/healthCheck/)).toBe(
      `mesh-proxy: ${file}: document 2 (Service "orders"): healthCheck: accepted but not enforced in this version`,
    )
  })
})
