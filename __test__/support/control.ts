/**
 * Runs the real control plane, `node bin/mesh-control.js`, as a child process, and the
 * real `node bin/meshctl.js` against it, the way an operator would. Needs the compiled
 * dist/ (`npm run build:ts`).
 *
 *   const cp = await ControlPlaneProcess.start()            // port 0, fresh temp data dir
 *   await runMeshctl(['apply', '-f', file], { controlPlane: cp.address })
 *   await cp.kill()                                         // SIGKILL
 *   const again = await cp.restart()                        // same data dir, same port
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

import { waitFor } from './ports.js'
import { exitWithin, makeTempDir, REPO_ROOT, type Exit } from './proxy.js'

export const MESH_CONTROL_CLI = path.join(REPO_ROOT, 'bin', 'mesh-control.js')
export const MESHCTL_CLI = path.join(REPO_ROOT, 'bin', 'meshctl.js')

/** Every child started here, so a crashed test run does not leave servers behind. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed (for `apply -f -`). */
  stdin?: string
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
}

/** Runs `node <script> ARGS` to completion. */
export function runNode(script: string, args: readonly string[], { stdin, timeoutMs = 15_000, env }: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: REPO_ROOT,
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    live.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    if (stdin !== undefined) child.stdin!.end(stdin)
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${path.basename(script)} ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      live.delete(child)
      // 'exit' can fire before the pipes drain; 'close' is when output is complete.
      child.once('close', () => resolve({ code, signal, stdout, stderr }))
    })
  })
}

/** `node bin/meshctl.js ARGS`, with `--control-plane` first when `controlPlane` is given. */
export function runMeshctl(args: readonly string[], options: RunOptions & { controlPlane?: string } = {}): Promise<RunResult> {
  const global = options.controlPlane === undefined ? [] : ['--control-plane', options.controlPlane]
  return runNode(MESHCTL_CLI, [...global, ...args], options)
}

/** `node bin/mesh-control.js ARGS` to completion (for --help, bad flags, refused starts). */
export function runMeshControl(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode(MESH_CONTROL_CLI, args, options)
}

export interface ControlPlaneOptions {
  /** The data dir; default a fresh temp dir's `data` (created by mesh-control). */
  dataDir?: string
  /** Listen port; default 0 (the kernel picks; read back from the start line). */
  port?: number
  /** Listen host; default 127.0.0.1. */
  host?: string
  /** `--lease-ttl`, e.g. '2s'. */
  leaseTtl?: string
  /** Further flags. */
  args?: string[]
  env?: NodeJS.ProcessEnv
  /** How long to wait for the start line (default 20 s). */
  readyTimeoutMs?: number
}

/**
 * The start line, printed once the server listens (matched only once complete, with its newline):
 * `mesh-control: serving on 127.0.0.1:7443 (data dir /abs, mesh version 4, 3 resources, 2 leases)`.
 */
const START_LINE = /^mesh-control: (?:serving|listening) on (\[[^\]]+\]:\d+|[^\s;]+)[^\n]*\n/m

export class ControlPlaneProcess {
  stdout = ''
  stderr = ''
  exit: Exit | undefined
  /** HOST:PORT it listens on (from its start line). */
  address = ''
  /** The start line as printed. */
  startLine = ''
  private readonly exited: Promise<Exit>

  private constructor(
    readonly child: ChildProcess,
    readonly options: ControlPlaneOptions & { dataDir: string },
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child)
        this.exit = { code, signal }
        child.once('close', () => resolve({ code, signal }))
      })
    })
  }

  /** Starts mesh-control and waits for its start line (it prints it once it listens). */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlaneProcess> {
    const dataDir = options.dataDir ?? path.join(makeTempDir('mesh-control-'), 'data')
    const listen = `${options.host ?? '127.0.0.1'}:${options.port ?? 0}`
    const args = ['--listen', listen, '--data-dir', dataDir]
    if (options.leaseTtl !== undefined) args.push('--lease-ttl', options.leaseTtl)
    args.push(...(options.args ?? []))
    const child = spawn(process.execPath, [MESH_CONTROL_CLI, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    })
    live.add(child)
    const control = new ControlPlaneProcess(child, { ...options, dataDir })
    try {
      const match = await waitFor(
        'the mesh-control start line',
        () => {
          const found = START_LINE.exec(control.stderr)
          if (found) return found
          if (control.exit) throw new Error(`mesh-control exited (${JSON.stringify(control.exit)}) before listening`)
          return undefined
        },
        { timeoutMs: options.readyTimeoutMs ?? 20_000, intervalMs: 20 },
      )
      control.startLine = match[0].trimEnd()
      control.address = match[1] as string
    } catch (error) {
      child.kill('SIGKILL')
      const message = error instanceof Error ? error.message : String(error)
      throw new Error(`${message}\n--- mesh-control stderr ---\n${control.stderr}`)
    }
    return control
  }

  get dataDir(): string {
    return this.options.dataDir
  }

  get port(): number {
    return Number(this.address.slice(this.address.lastIndexOf(':') + 1))
  }

  get pid(): number {
    return this.child.pid!
  }

  /** `meshctl ARGS` against this control plane. */
  meshctl(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runMeshctl(args, { ...options, controlPlane: this.address })
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** Waits until stderr has a line matching `pattern`; returns it. */
  async stderrLine(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(`a mesh-control stderr line matching ${pattern}`, () => this.stderr.split('\n').find((l) => pattern.test(l)), {
      timeoutMs,
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr:\n${this.stderr}`)
    })
  }

  /** Resolves with the exit status, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs = 15_000): Promise<Exit> {
    return exitWithin(this.exited, timeoutMs, () => this.stderr)
  }

  /** SIGTERM and wait for the exit (SIGKILL, then a rejection, if it takes longer than `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<Exit> {
    if (this.exit) return this.exited
    this.child.kill('SIGTERM')
    try {
      return await this.waitForExit(timeoutMs)
    } catch (error) {
      this.child.kill('SIGKILL')
      await this.exited
      throw error
    }
  }

  /** SIGKILL (kill -9: no chance to clean up) and wait for the exit. */
  async kill(): Promise<Exit> {
    if (this.exit) return this.exited
    this.child.kill('SIGKILL')
    return this.exited
  }

  /**
   * A new mesh-control on the same data dir and port with the same flags, after this one
   * has exited (stop or kill it first). `overrides` change options for the new one.
   */
  async restart(overrides: ControlPlaneOptions = {}): Promise<ControlPlaneProcess> {
    if (!this.exit) throw new Error('restart: mesh-control is still running; stop() or kill() it first')
    return ControlPlaneProcess.start({ ...this.options, port: this.port, ...overrides })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}
