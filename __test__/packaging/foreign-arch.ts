// One suite for each foreign architecture: the packed root tarball and that
// architecture's platform tarball, installed with npm's --cpu as an image build would,
// run by Debian's Node 18 (N-API 9) for that architecture under qemu-user. The upstream
// HTTP server and the client stay on the x64 side, on loopback.

import { existsSync, readdirSync } from 'node:fs'
import type { Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  closeServer,
  freePort,
  httpGet,
  installPackage,
  makeTempDir,
  removeDir,
  runToEnd,
  startProcess,
  startUpstream,
  stopProcess,
  sysroot,
  version,
  waitReady,
  writeProxyConfig,
  type ForeignArch,
  type RunningProxy,
  type SeenRequest,
} from './helpers.js'

// qemu-user translates every instruction: Node's start alone takes seconds.
const QEMU_START_MS = 120_000

export function describeForeignArch(arch: ForeignArch): void {
  describe(`${arch.platform} under ${arch.qemu}`, () => {
    let dir: string | undefined
    let root: string
    let upstream: { server: Server; port: number; seen: SeenRequest[] } | undefined
    let proxy: RunningProxy | undefined

    /** Runs Debian's foreign Node from the sysroot; -L makes its libraries the sysroot's. */
    const foreignNode = (args: string[]): [string, string[]] => [arch.qemu, ['-L', root, join(root, 'usr/bin/node'), ...args]]
    const cli = () => join(dir!, 'node_modules', 'mesh-core', 'bin', 'mesh-proxy.js')

    beforeAll(async () => {
      root = sysroot(arch)
      dir = makeTempDir(arch.npmCpu)
      await installPackage(dir, arch.platform, { cpu: arch.npmCpu })
      upstream = await startUpstream()
    })

    afterAll(async () => {
      await stopProcess(proxy)
      await closeServer(upstream?.server)
      removeDir(dir)
    })

    it(`npm --cpu=${arch.npmCpu} installs exactly the ${arch.platform} binding`, () => {
      const bindings = readdirSync(join(dir!, 'node_modules')).filter((name) => name.startsWith('mesh-core-'))
      expect(bindings).toEqual([`mesh-core-${arch.platform}`])
      expect(existsSync(join(dir!, 'node_modules', `mesh-core-${arch.platform}`, `mesh-core.${arch.platform}.node`))).toBe(true)
    })

    it(`${arch.npmCpu} Node 18 loads the binding from the installed package`, async () => {
      const probe = [
        "const { engineVersion } = require('mesh-core-" + arch.platform + "')",
        'console.log(JSON.stringify({ arch: process.arch, napi: process.versions.napi, engine: engineVersion() }))',
      ].join(';')
      const [command, args] = foreignNode(['-e', probe])
      const result = await runToEnd(command, args, { cwd: dir!, timeoutMs: QEMU_START_MS })
      expect(result.status, result.output).toBe(0)
      const report = JSON.parse(result.output.trim().split('\n').pop()!) as { arch: string; napi: string; engine: string }
      expect(report.arch).toBe(arch.npmCpu)
      expect(Number(report.napi)).toBeLessThanOrEqual(9)
      expect(report.engine).toBe(version)
    })

    it('mesh-proxy --version runs', async () => {
      const [command, args] = foreignNode([cli(), '--version'])
      const result = await runToEnd(command, args, { cwd: dir!, timeoutMs: QEMU_START_MS })
      expect(result.status, result.output).toBe(0)
      expect(result.output).toContain(version)
    })

    it('mesh-proxy --config proxies a real HTTP request end to end', async () => {
      const ports = { outbound: await freePort(), admin: await freePort() }
      const config = writeProxyConfig(dir!, ports, upstream!.port)
      const [command, args] = foreignNode([cli(), '--config', config])
      proxy = startProcess(command, args, { cwd: dir! })
      await waitReady(proxy, ports.admin, QEMU_START_MS)

      const path = `/via-${arch.npmCpu}?n=1`
      const answer = await httpGet(ports.outbound, path, { host: 'upstream' })
      expect(answer.status, proxy.output()).toBe(200)
      expect(answer.body).toBe(`upstream saw GET ${path}`)
      expect(upstream!.seen.map((r) => r.url)).toContain(path)

      // A second request reuses the running engine (no cold start hiding a failure).
      const again = await httpGet(ports.outbound, '/again', { host: 'upstream.default.svc.cluster.local' })
      expect(again.status).toBe(200)
      expect(again.body).toBe('upstream saw GET /again')

      expect(await stopProcess(proxy)).toBe(0)
    })
  })
}
