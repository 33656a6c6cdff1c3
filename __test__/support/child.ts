/**
 * The one way tests run the real CLIs (`node bin/<cli>.js ARGS`) as child processes: to
 * completion (`runNode`), or kept running (`ChildHarness`, which ProxyProcess,
 * ControlPlaneProcess and CliProcess build on). Every child is killed when the test
 * process exits, so a crashed run leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

import { waitFor } from './ports.js'

export const REPO_ROOT = path.resolve(__dirname, '..', '..')

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface RunResult extends Exit {
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed (for `apply -f -`). */
  stdin?: string
  timeoutMs?: number
  /** Added to the test process's environment. */
  env?: NodeJS.ProcessEnv
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** `node <script> ARGS` from the repository root, output piped; `env` replaces the environment. */
export function spawnNode(script: string, args: readonly string[], env: NodeJS.ProcessEnv, stdin = false): ChildProcess {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: REPO_ROOT,
    stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env,
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  return child
}

/** Runs `node <script> ARGS` to completion. */
export function runNode(script: string, args: readonly string[], { stdin, timeoutMs = 15_000, env }: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnNode(script, args, { ...process.env, ...env }, stdin !== undefined)
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
      // 'exit' can fire before the pipes drain; 'close' is when output is complete.
      child.once('close', () => resolve({ code, signal, stdout, stderr }))
    })
  })
}

/** `exited`, or a rejection naming the process's stderr if it has not exited within `timeoutMs`. */
export async function exitWithin(exited: Promise<Exit>, timeoutMs: number, stderr: () => string, name = 'mesh-proxy'): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not exit within ${timeoutMs} ms; stderr:\n${stderr()}`)), timeoutMs)
  })
  try {
    return await Promise.race([exited, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** A running CLI: its output so far, its exit, signals. */
export class ChildHarness {
  stdout = ''
  stderr = ''
  exit: Exit | undefined
  /** Resolves once the process has exited and its output is complete. */
  readonly exited: Promise<Exit>

  constructor(
    readonly child: ChildProcess,
    /** How messages name the process (`mesh-proxy`, `mesh-control`). */
    private readonly name: string,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d))
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal }
        child.once('close', () => resolve({ code, signal }))
      })
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig)
  }

  /** Waits until stderr has a line matching `pattern`; returns it. */
  async stderrLine(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    return waitFor(`a ${this.name} stderr line matching ${pattern}`, () => this.stderr.split('\n').find((l) => pattern.test(l)), {
      timeoutMs,
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr:\n${this.stderr}`)
    })
  }

  /** Resolves with the exit status, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs = 15_000): Promise<Exit> {
    return exitWithin(this.exited, timeoutMs, () => this.stderr, this.name)
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

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}
