// The packed npm tarballs, installed like a user installs them: a fresh directory outside
// the source tree, no Rust toolchain on PATH, only node/npm/npx. `npx mesh-proxy` must
// print its version and proxy a real HTTP request.

import { existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs'
import type { Server } from 'node:http'
import { delimiter, dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import {
  closeServer,
  freePort,
  httpGet,
  installPackage,
  makeTempDir,
  removeDir,
  repoRoot,
  runToEnd,
  startProcess,
  startUpstream,
  stopProcess,
  version,
  waitReady,
  writeProxyConfig,
  type RunningProxy,
  type SeenRequest,
} from './helpers.js'

/** An environment whose PATH holds node, npm, npx and the `sh` npx runs bins with, nothing else. */
function nodeOnlyEnv(binDir: string): NodeJS.ProcessEnv {
  mkdirSync(binDir, { recursive: true })
  const nodeDir = dirname(realpathSync(process.execPath))
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = [nodeDir, ...(process.env.PATH ?? '').split(delimiter)].map((d) => join(d, tool)).find((p) => existsSync(p))
    if (found === undefined) throw new Error(`${tool} is not on PATH`)
    symlinkSync(realpathSync(found), join(binDir, tool))
  }
  const env: NodeJS.ProcessEnv = {}
  for (const key of ['HOME', 'LANG', 'TMPDIR', 'SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'npm_config_cache']) {
    if (process.env[key] !== undefined) env[key] = process.env[key]
  }
  env.PATH = binDir
  return env
}

describe('packed tarballs on linux x64', () => {
  let dir: string | undefined
  let env: NodeJS.ProcessEnv
  let upstream: { server: Server; port: number; seen: SeenRequest[] } | undefined
  let proxy: RunningProxy | undefined

  beforeAll(async () => {
    dir = makeTempDir('x64')
    env = nodeOnlyEnv(join(dir, '.bin-node-only'))
    await installPackage(dir, 'linux-x64-gnu', { env })
    upstream = await startUpstream()
  })

  afterAll(async () => {
    await stopProcess(proxy)
    await closeServer(upstream?.server)
    removeDir(dir)
  })

  it('installs without a Rust toolchain or the source tree in reach', async () => {
    const pathDirs = (env.PATH ?? '').split(delimiter)
    for (const tool of ['cargo', 'rustc', 'rustup']) {
      expect(pathDirs.filter((d) => existsSync(join(d, tool))), `${tool} on PATH`).toEqual([])
    }
    const installed = join(dir!, 'node_modules')
    expect(realpathSync(installed).startsWith(repoRoot)).toBe(false)
    // The binding comes from the platform package, not from a stray .node in the root one.
    expect(existsSync(join(installed, 'mesh-core-linux-x64-gnu', 'mesh-core.linux-x64-gnu.node'))).toBe(true)
    expect(existsSync(join(installed, 'mesh-core', 'native', 'mesh-core.linux-x64-gnu.node'))).toBe(false)
    const manifest = JSON.parse(readFileSync(join(installed, 'mesh-core', 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>
    }
    expect(manifest.optionalDependencies).toEqual({
      'mesh-core-linux-arm64-gnu': version,
      'mesh-core-linux-ppc64-gnu': version,
      'mesh-core-linux-x64-gnu': version,
    })
  })

  it('npx mesh-proxy --version prints the package version', async () => {
    const result = await runToEnd('npx', ['--no-install', 'mesh-proxy', '--version'], { cwd: dir!, env, timeoutMs: 60_000 })
    expect(result.status, result.output).toBe(0)
    expect(result.output).toContain(version)
  })

  it('the installed mesh-proxy --config proxies a request to the upstream service', async () => {
    const ports = { outbound: await freePort(), admin: await freePort() }
    const config = writeProxyConfig(dir!, ports, upstream!.port)
    // The bin npx resolves, started the way a service manager starts it: `npx` itself
    // runs bins through `sh`, which does not pass SIGTERM on.
    const bin = join(dir!, 'node_modules', '.bin', 'mesh-proxy')
    proxy = startProcess(bin, ['--config', config], { cwd: dir!, env })
    await waitReady(proxy, ports.admin, 30_000)

    const answer = await httpGet(ports.outbound, '/from-tarball?x=1', { host: 'upstream' })
    expect(answer.status, proxy.output()).toBe(200)
    expect(answer.body).toBe('upstream saw GET /from-tarball?x=1')
    expect(upstream!.seen.map((r) => r.url)).toContain('/from-tarball?x=1')

    expect(await stopProcess(proxy), proxy.output()).toBe(0)
  })
})
