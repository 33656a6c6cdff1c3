/**
 * Runs the real CLI, `node bin/mesh-proxy.js --config FILE`, as a child process and
 * talks to it the way an operator would: its admin port, its config file, signals.
 */
import type { ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'

import { ChildHarness, REPO_ROOT, runNode, spawnNode, type RunResult } from './child.js'
import { parseMetrics, sum, type LabelMatch, type Sample } from './metrics.js'
import { renderYaml, type Doc } from './resources.js'
import { waitFor } from './ports.js'

export { exitWithin, REPO_ROOT, type Exit } from './child.js'
export const CLI = path.join(REPO_ROOT, 'bin', 'mesh-proxy.js')

export interface ConfigView {
  version: number
  source: string
  appliedAt: string
  resources: Doc[]
}

export function makeTempDir(prefix = 'mesh-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix))
}

/** Runs the CLI to completion (for --help, bad flags, bad files). */
export function runCli(args: string[], { timeoutMs = 15_000 }: { timeoutMs?: number } = {}): Promise<RunResult> {
  return runNode(CLI, args, { timeoutMs })
}

export function adminGet(port: number, urlPath: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`admin GET ${urlPath} timed out`)))
    req.on('error', reject)
  })
}

export interface StartOptions {
  /** Passed as the config file's name inside a fresh temp dir. */
  fileName?: string
  readyTimeoutMs?: number
  env?: NodeJS.ProcessEnv
  /** Extra command-line flags after `--config FILE`. */
  args?: string[]
}

export class ProxyProcess extends ChildHarness {
  private constructor(
    child: ChildProcess,
    readonly configPath: string,
    readonly adminPort: number,
  ) {
    super(child, 'mesh-proxy')
  }

  /** Writes `docs` to a temp file, starts the CLI on it and waits until /ready answers 200. */
  static async start(docs: Doc[] | string, adminPort: number, opts: StartOptions = {}): Promise<ProxyProcess> {
    const dir = makeTempDir()
    const configPath = path.join(dir, opts.fileName ?? 'mesh.yaml')
    fs.writeFileSync(configPath, typeof docs === 'string' ? docs : renderYaml(docs))
    const child = spawnNode(CLI, ['--config', configPath, ...(opts.args ?? [])], { ...process.env, ...opts.env })
    const proxy = new ProxyProcess(child, configPath, adminPort)
    try {
      await waitFor(
        `mesh-proxy /ready on 127.0.0.1:${adminPort}`,
        async () => {
          if (proxy.exit) {
            throw new Error(`mesh-proxy exited (${JSON.stringify(proxy.exit)}) before ready; stderr:\n${proxy.stderr}`)
          }
          const res = await adminGet(adminPort, '/ready').catch(() => undefined)
          return res?.status === 200
        },
        { timeoutMs: opts.readyTimeoutMs ?? 20_000, intervalMs: 50 },
      )
    } catch (error) {
      child.kill('SIGKILL')
      const message = error instanceof Error ? error.message : String(error)
      throw new Error(`${message}\n--- mesh-proxy stderr ---\n${proxy.stderr}`)
    }
    return proxy
  }

  async metricsText(): Promise<string> {
    const res = await adminGet(this.adminPort, '/metrics')
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`)
    return res.body
  }

  async metrics(): Promise<Sample[]> {
    return parseMetrics(await this.metricsText())
  }

  async config(): Promise<ConfigView> {
    const res = await adminGet(this.adminPort, '/config')
    if (res.status !== 200) throw new Error(`/config answered ${res.status}: ${res.body}`)
    return JSON.parse(res.body) as ConfigView
  }

  async version(): Promise<number> {
    return (await this.config()).version
  }

  /** Rewrites the config file in place (one write call), as `cat > mesh.yaml` would. */
  writeConfig(docs: Doc[] | string): void {
    fs.writeFileSync(this.configPath, typeof docs === 'string' ? docs : renderYaml(docs))
  }

  /** Replaces the config file by rename, as editors and Kubernetes ConfigMap updates do. */
  replaceConfig(docs: Doc[] | string): void {
    const tmp = `${this.configPath}.tmp-${process.pid}`
    fs.writeFileSync(tmp, typeof docs === 'string' ? docs : renderYaml(docs))
    fs.renameSync(tmp, this.configPath)
  }

  /** Waits until /config reports a version greater than `previous`; returns it. */
  async waitForVersionAbove(previous: number, timeoutMs = 10_000): Promise<number> {
    return waitFor(
      `config version > ${previous}`,
      async () => {
        if (this.exit) throw new Error(`mesh-proxy exited: ${JSON.stringify(this.exit)}; stderr:\n${this.stderr}`)
        const v = await this.version()
        return v > previous ? v : undefined
      },
      { timeoutMs, intervalMs: 25 },
    )
  }

  /** Waits until the summed series of `name` matching `match` reach at least `atLeast`; returns the sum. */
  async waitForMetric(name: string, match: LabelMatch, atLeast: number, timeoutMs = 5_000): Promise<number> {
    let last = 0
    try {
      return await waitFor(
        `${name}${JSON.stringify(match)} >= ${atLeast}`,
        async () => {
          last = sum(await this.metrics(), name, match)
          return last >= atLeast ? last : undefined
        },
        { timeoutMs, intervalMs: 50 },
      )
    } catch (error) {
      throw new Error(`${(error as Error).message} (last value ${last})`)
    }
  }
}
