/**
 * The `mesh-control` command as an operator runs it: flags, the start line, exit
 * statuses, one-line failures, signals. Runs bin/mesh-control.js (needs `npm run build:ts`).
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { ControlPlaneProcess, runMeshControl, type RunResult } from '../support/control.js'
import { makeTempDir } from '../support/proxy.js'
import { hasStackTrace } from './cli-process.js'

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version

function expectOneLineFailure(result: RunResult, code: number): string {
  expect(result.code, result.stderr).toBe(code)
  expect(hasStackTrace(result.stderr)).toBe(false)
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(/^mesh-control: \S/)
  return lines[0] as string
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '')
}

const running: ControlPlaneProcess[] = []
async function startControl(...args: Parameters<typeof ControlPlaneProcess.start>): Promise<ControlPlaneProcess> {
  const control = await ControlPlaneProcess.start(...args)
  running.push(control)
  return control
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.kill()))
})

describe('mesh-control flags', () => {
  it('--help prints usage and exits 0', async () => {
    const result = await runMeshControl(['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^Usage: mesh-control \[options\]/)
    for (const flag of ['--listen', '--data-dir', '--store', '--etcd-endpoints', '--trust-domain', '--lease-ttl', '--version']) {
      expect(result.stdout).toContain(flag)
    }
    expect(result.stderr).toBe('')
    expect((await runMeshControl(['-h'])).stdout).toBe(result.stdout)
  })

  it('--version prints the package version', async () => {
    const result = await runMeshControl(['--version'])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(`mesh-control ${PACKAGE_VERSION}\n`)
    expect(result.stderr).toBe('')
  })

  it('refuses bad flags with exit 2 and one line', async () => {
    expect(expectOneLineFailure(await runMeshControl(['--bogus']), 2)).toBe('mesh-control: unknown flag --bogus (see mesh-control --help)')
    expect(expectOneLineFailure(await runMeshControl(['--listen', 'nowhere']), 2)).toBe(
      'mesh-control: --listen: expected HOST:PORT, got "nowhere"',
    )
    expect(expectOneLineFailure(await runMeshControl(['--lease-ttl', 'soon']), 2)).toBe(
      'mesh-control: --lease-ttl: expected a duration from 100ms to 24h like 10s or 1m, got "soon"',
    )
  })

  it('refuses --store etcd: not available in this version', async () => {
    const dataDir = path.join(makeTempDir('mesh-control-'), 'data')
    const line = expectOneLineFailure(
      await runMeshControl(['--store', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379', '--data-dir', dataDir]),
      2,
    )
    expect(line).toBe('mesh-control: --store etcd: the etcd store is not available in this version (use --store file)')
    expect(fs.existsSync(dataDir)).toBe(false)
  })
})

describe('mesh-control start and stop', () => {
  it('prints where it listens and what it holds once it serves', async () => {
    const control = await startControl()
    expect(control.startLine).toMatch(
      new RegExp(`^mesh-control: serving on 127\\.0\\.0\\.1:\\d+ \\(data dir ${control.dataDir}, mesh version \\d+, 0 resources, 0 leases\\)$`),
    )
    expect(control.port).toBeGreaterThan(0)
    expect(hasStackTrace(control.stderr)).toBe(false)
    expect(fs.statSync(control.dataDir).isDirectory()).toBe(true)
    // A fresh control plane says how a workload gets in; once a token exists it does not.
    const hint = 'mesh-control: no join tokens yet: create one per workload with `meshctl token create --name SERVICE [--namespace NS]`'
    expect(await control.stderrLine(/no join tokens yet/)).toBe(hint)
    expect((await control.meshctl(['token', 'create', '--name', 'web'])).code).toBe(0)
    await control.stop()
    const again = await control.restart()
    running.push(again)
    expect((await again.meshctl(['check'])).code).toBe(0) // a round trip: any hint would be out by now
    expect(again.stderr).not.toContain('no join tokens yet')
  })

  it('exits 0 on SIGTERM and on SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const control = await startControl()
      control.signal(signal)
      const exit = await control.waitForExit(10_000)
      expect(exit, control.stderr).toEqual({ code: 0, signal: null })
      expect(lines(control.stderr).slice(-2)).toEqual([`mesh-control: ${signal}: stopping`, 'mesh-control: stopped'])
      expect(hasStackTrace(control.stderr)).toBe(false)
    }
  })

  it('refuses a port in use with one line and exit 1', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = blocker.address() as net.AddressInfo
      const dataDir = path.join(makeTempDir('mesh-control-'), 'data')
      const line = expectOneLineFailure(await runMeshControl(['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir]), 1)
      expect(line).toContain(`127.0.0.1:${port}`)
      expect(line).toMatch(/in use/)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })

  it('refuses a data dir it cannot write with one line and exit 1', async () => {
    const file = path.join(makeTempDir('mesh-control-'), 'not-a-dir')
    fs.writeFileSync(file, 'x')
    const line = expectOneLineFailure(await runMeshControl(['--listen', '127.0.0.1:0', '--data-dir', path.join(file, 'data')]), 1)
    expect(line).toContain(path.join(file, 'data'))
  })

  it('refuses a corrupt store with one line naming the file and exit 1', async () => {
    const dataDir = makeTempDir('mesh-control-')
    fs.writeFileSync(path.join(dataDir, 'state.json'), '{"format": "mesh-control-store/v1", "revision": ')
    const line = expectOneLineFailure(await runMeshControl(['--listen', '127.0.0.1:0', '--data-dir', dataDir]), 1)
    expect(line).toContain(path.join(dataDir, 'state.json'))
    expect(line).toMatch(/corrupt/)
  })

  it('restarts on the same data dir and port', async () => {
    const first = await startControl()
    expect(await first.stop()).toEqual({ code: 0, signal: null })
    const second = await first.restart()
    running.push(second)
    expect(second.address).toBe(first.address)
    expect(second.dataDir).toBe(first.dataDir)
  })
})
