/** `node bin/mesh-proxy.js ARGS` as a child process, for tests that need flags or signals. */
import { spawn, type ChildProcess } from 'node:child_process'

import { adminGet, CLI, exitWithin, REPO_ROOT, type Exit } from '../support/proxy.js'
import { waitFor } from '../support/ports.js'

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export class CliProcess {
  stderr = ''
  stdout = ''
  exit: Exit | undefined
  readonly exited: Promise<Exit>

  /** `env` replaces the environment entirely when given (so a test controls MESH_TOKEN). */
  constructor(
    readonly args: string[],
    options: { env?: NodeJS.ProcessEnv } = {},
  ) {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    })
    live.add(child)
    this.child = child
    child.stdout.setEncoding('utf8').on('data', (d: string) => (this.stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child)
        this.exit = { code, signal }
        child.once('close', () => resolve({ code, signal }))
      })
    })
  }

  private readonly child: ChildProcess

  /** Waits for /ready on the admin port; throws with stderr if the process exits first. */
  async ready(adminPort: number): Promise<void> {
    const outcome = await waitFor(
      `mesh-proxy ready on 127.0.0.1:${adminPort}`,
      async () => {
        if (this.exit) return 'exited'
        const res = await adminGet(adminPort, '/ready').catch(() => undefined)
        return res?.status === 200 ? 'ready' : undefined
      },
      { timeoutMs: 20_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stderr:\n${this.stderr}`)
    })
    if (outcome === 'exited') throw new Error(`mesh-proxy exited (${JSON.stringify(this.exit)}) before ready; stderr:\n${this.stderr}`)
  }

  /** Waits until stderr has a line matching `pattern`; returns it. */
  async stderrLine(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(
      `a stderr line matching ${pattern}`,
      () => this.stderr.split('\n').find((l) => pattern.test(l)),
      { timeoutMs },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; stderr:\n${this.stderr}`)
    })
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  waitForExit(timeoutMs = 15_000): Promise<Exit> {
    return exitWithin(this.exited, timeoutMs, () => this.stderr)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.exit) return
    this.child.kill('SIGKILL')
    await this.exited
  }
}

/** No line of `stderr` looks like a stack frame. */
export function hasStackTrace(stderr: string): boolean {
  return stderr.split('\n').some((l) => /^\s+at\s/.test(l))
}

/** The environment without MESH_TOKEN (and MESH_DEBUG), plus `extra`. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.MESH_TOKEN
  delete env.MESH_DEBUG
  return { ...env, ...extra }
}

/** Runs the CLI to completion with `env`; resolves with its status and output. */
export async function runCliWithEnv(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 15_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const run = new CliProcess(args, { env })
  const exit = await run.waitForExit(timeoutMs).catch(async (err: unknown) => {
    await run[Symbol.asyncDispose]()
    throw err
  })
  return { ...exit, stdout: run.stdout, stderr: run.stderr }
}
