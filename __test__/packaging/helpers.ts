// Shared pieces of the packaging suite: where the artifacts of `npm run test:packaging`
// live, installing packed tarballs into a throwaway directory, and driving a real
// `mesh-proxy` (natively or under qemu-user) in front of a real HTTP server on loopback.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

export const repoRoot = resolve(__dirname, '..', '..')
export const packDir = join(repoRoot, 'target', 'pack')
export const cacheDir = process.env.MESH_CACHE_DIR ?? join(repoRoot, '.cache')
export const version: string = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string })
  .version

const execFileAsync = promisify(execFile)

export interface ForeignArch {
  /** napi-rs platform of the package, e.g. linux-arm64-gnu. */
  platform: string
  /** npm's `--cpu` value (Node's process.arch). */
  npmCpu: string
  qemu: string
  /** Debian architecture of the sysroot under .cache/sysroot. */
  debArch: string
}

export const ARM64: ForeignArch = { platform: 'linux-arm64-gnu', npmCpu: 'arm64', qemu: 'qemu-aarch64', debArch: 'arm64' }
export const PPC64: ForeignArch = { platform: 'linux-ppc64-gnu', npmCpu: 'ppc64', qemu: 'qemu-ppc64le', debArch: 'ppc64el' }

/**
 * The path of an artifact `npm run test:packaging` produces. Missing artifacts fail the
 * suite loudly: this suite never passes without having exercised what it names.
 */
export function artifact(path: string): string {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`npm run test:packaging\`, which builds, packs and then runs this suite`)
  }
  return path
}

export function rootTarball(): string {
  return artifact(join(packDir, `mesh-core-${version}.tgz`))
}

export function platformTarball(platform: string): string {
  return artifact(join(packDir, `mesh-core-${platform}-${version}.tgz`))
}

/** The Debian sysroot scripts/sysroot.sh unpacked for `arch` (its Node is usr/bin/node). */
export function sysroot(arch: ForeignArch): string {
  const root = join(cacheDir, 'sysroot', arch.debArch)
  artifact(join(root, 'usr', 'bin', 'node'))
  return root
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mesh-core-${prefix}-`))
}

export function removeDir(dir: string | undefined): void {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
}

export const PLATFORMS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-ppc64-gnu'] as const

/**
 * Installs the packed root package into `dir` the way a user installs mesh-core, from a
 * package.json of its own so nothing resolves into the source tree. npm picks the
 * platform package through the root package's optionalDependencies, exactly as from the
 * registry; `overrides` points those names at the packed platform tarballs, since they
 * are not published. `cpu` installs for another architecture (npm's --cpu), as an image
 * build does.
 */
export async function installPackage(
  dir: string,
  platform: string,
  options: { cpu?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  const overrides: Record<string, string> = {}
  for (const candidate of PLATFORMS) {
    const tarball = join(packDir, `mesh-core-${candidate}-${version}.tgz`)
    if (candidate === platform || existsSync(tarball)) overrides[`mesh-core-${candidate}`] = `file:${platformTarball(candidate)}`
  }
  const manifest = {
    name: 'packaging-consumer',
    private: true,
    dependencies: { 'mesh-core': `file:${rootTarball()}` },
    overrides,
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2))
  const args = ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts']
  if (options.cpu !== undefined) args.push(`--cpu=${options.cpu}`, '--os=linux', '--libc=glibc')
  await execFileAsync('npm', args, { cwd: dir, env: options.env ?? process.env, timeout: 180_000 })
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  const address = server.address()
  await new Promise<void>((closed) => server.close(() => closed()))
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

/** The upstream app: answers every request with a body naming what it received. */
export async function startUpstream(): Promise<{ server: Server; port: number; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = []
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain')
      res.end(`upstream saw ${req.method} ${req.url}`)
    })
  })
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return { server, port: address.port, seen }
}

export async function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return
  server.closeAllConnections()
  await new Promise<void>((closed) => server.close(() => closed()))
}

export interface ProxyPorts {
  outbound: number
  admin: number
}

/** A standalone config: an outbound listener and a Service `upstream` with one endpoint. */
export function writeProxyConfig(dir: string, ports: ProxyPorts, upstreamPort: number): string {
  const file = join(dir, 'mesh.yaml')
  writeFileSync(
    file,
    [
      'apiVersion: mesh/v1',
      'kind: Proxy',
      'name: packaging',
      'outbound:',
      `  listen: 127.0.0.1:${ports.outbound}`,
      'admin:',
      `  listen: 127.0.0.1:${ports.admin}`,
      '---',
      'apiVersion: mesh/v1',
      'kind: Service',
      'name: upstream',
      'port: 80',
      'protocol: http',
      'endpoints:',
      `  - { address: 127.0.0.1:${upstreamPort} }`,
      '',
    ].join('\n'),
  )
  return file
}

export interface RunningProxy {
  child: ChildProcess
  output: () => string
}

export function startProcess(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): RunningProxy {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return { child, output: () => output }
}

export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolveAnswer, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${path} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/**
 * Waits until the proxy's admin endpoint answers /ready with 200 (a config is in
 * force), failing early with the proxy's own output if it exits.
 */
export async function waitReady(proxy: RunningProxy, adminPort: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) {
      throw new Error(`mesh-proxy exited (${proxy.child.exitCode ?? proxy.child.signalCode}) before it was ready:\n${proxy.output()}`)
    }
    try {
      const answer = await httpGet(adminPort, '/ready')
      if (answer.status === 200) return
    } catch {
      // Not listening yet.
    }
    await new Promise((next) => setTimeout(next, 250))
  }
  throw new Error(`mesh-proxy was not ready within ${timeoutMs} ms:\n${proxy.output()}`)
}

/** SIGTERM, then the exit status (the proxy drains and exits 0 on SIGTERM). */
export async function stopProcess(proxy: RunningProxy | undefined, timeoutMs = 60_000): Promise<number | string | null> {
  if (proxy === undefined) return null
  const { child } = proxy
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode
  const exited = new Promise<number | string | null>((done) => child.once('exit', (code, signal) => done(code ?? signal)))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  try {
    return await exited
  } finally {
    clearTimeout(timer)
  }
}

/** Runs a command to completion; resolves with its exit status and combined output. */
export function runToEnd(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ status: number | null; output: string }> {
  return new Promise((done, reject) => {
    const running = startProcess(command, args, options)
    const timer = setTimeout(() => running.child.kill('SIGKILL'), options.timeoutMs)
    running.child.on('error', reject)
    // 'close' rather than 'exit': it comes after the output streams have ended.
    running.child.on('close', (code, signal) => {
      clearTimeout(timer)
      done({ status: code ?? (signal === null ? null : -1), output: running.output() })
    })
  })
}
