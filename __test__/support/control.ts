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
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'

import { ChildHarness, REPO_ROOT, runNode, spawnNode, type RunOptions, type RunResult } from './child.js'
import { waitFor } from './ports.js'
import { makeTempDir } from './proxy.js'

export { runNode, type RunOptions, type RunResult } from './child.js'

export const MESH_CONTROL_CLI = path.join(REPO_ROOT, 'bin', 'mesh-control.js')
export const MESHCTL_CLI = path.join(REPO_ROOT, 'bin', 'meshctl.js')

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

export class ControlPlaneProcess extends ChildHarness {
  /** HOST:PORT it listens on (from its start line). */
  address = ''
  /** The start line as printed. */
  startLine = ''

  private constructor(
    child: ChildProcess,
    readonly options: ControlPlaneOptions & { dataDir: string },
  ) {
    super(child, 'mesh-control')
  }

  /** Starts mesh-control and waits for its start line (it prints it once it listens). */
  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlaneProcess> {
    const dataDir = options.dataDir ?? path.join(makeTempDir('mesh-control-'), 'data')
    const listen = `${options.host ?? '127.0.0.1'}:${options.port ?? 0}`
    const args = ['--listen', listen, '--data-dir', dataDir]
    if (options.leaseTtl !== undefined) args.push('--lease-ttl', options.leaseTtl)
    args.push(...(options.args ?? []))
    const child = spawnNode(MESH_CONTROL_CLI, args, { ...process.env, ...options.env })
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

  /** `meshctl ARGS` against this control plane. */
  meshctl(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return runMeshctl(args, { ...options, controlPlane: this.address })
  }

  /**
   * A new mesh-control on the same data dir and port with the same flags, after this one
   * has exited (stop or kill it first). `overrides` change options for the new one.
   */
  async restart(overrides: ControlPlaneOptions = {}): Promise<ControlPlaneProcess> {
    if (!this.exit) throw new Error('restart: mesh-control is still running; stop() or kill() it first')
    return ControlPlaneProcess.start({ ...this.options, port: this.port, ...overrides })
  }
}
