/** `node bin/mesh-proxy.js ARGS` as a child process, for tests that need flags or signals. */
import { ChildHarness, spawnNode } from '../support/child.js'
import { waitFor } from '../support/ports.js'
import { adminGet, CLI } from '../support/proxy.js'

export class CliProcess extends ChildHarness {
  /** `env` replaces the environment entirely when given (so a test controls MESH_TOKEN). */
  constructor(
    readonly args: string[],
    options: { env?: NodeJS.ProcessEnv } = {},
  ) {
    super(spawnNode(CLI, args, options.env ?? process.env), 'mesh-proxy')
  }

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

  /** Disposal kills at once; a test that cares how the proxy exits stops it itself. */
  override async [Symbol.asyncDispose](): Promise<void> {
    await this.kill()
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
