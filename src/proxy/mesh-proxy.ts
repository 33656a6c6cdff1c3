// MeshProxy: the embedding API. One instance owns one native engine (its runtime, listeners
// and connections), the admin server and the config file watch. Config goes in as resources;
// the engine only ever sees a validated, compiled snapshot, and a rejected one changes nothing.

import { BindingEngine } from '../../native/index.js'
import { ConfigError } from '../config/index.js'
import { ProxyMetrics } from '../metrics/index.js'
import { AdminServer } from './admin-server.js'
import { prepareConfig, type ConfigInput, type PreparedConfig } from './prepare.js'
import { FileWatcher } from './watch.js'

// Node before 20.4 (and 18.18) lacks the well-known symbol; define it so `await using` works.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose') })
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

export interface MeshProxyOptions {
  /** A resource file (YAML or JSON, one or many documents); re-read by `reload()`. */
  configFile?: string
  /** Resource documents as YAML or JSON text. */
  config?: string
  /** Resource objects, as a YAML document would parse. */
  resources?: readonly unknown[]
  /**
   * Where `config`/`resources` came from, for error messages and /config
   * (default `config` / `resources`; a configFile names itself).
   */
  source?: string
  /** Admin listener `HOST:PORT`, overriding the Proxy's admin.listen; `off` runs none. */
  adminListen?: string
  /** Data-plane worker threads, overriding the Proxy's workerThreads. */
  workerThreads?: number
  /** Drain timeout for `close()`, overriding the Proxy's drainTimeout. */
  drainTimeoutMs?: number
  /** Reload when the config file changes (default true with a configFile). */
  watch?: boolean
  /** Structured events: warnings, applied and rejected configs. */
  onEvent?: (event: MeshProxyEvent) => void
  /**
   * Where human-readable lines go (warnings, reload results). Default: stderr, each line
   * prefixed `mesh-proxy: `. `null` silences them.
   */
  logger?: ((line: string) => void) | null
}

/** What led to a config being applied. */
export type ApplyTrigger = 'start' | 'apply' | 'reload'

export type MeshProxyEvent =
  | { type: 'warning'; message: string }
  | { type: 'applied'; trigger: ApplyTrigger; version: number; source: string }
  | { type: 'rejected'; trigger: ApplyTrigger; version: number; source: string; errors: readonly string[] }

/** Bound addresses of the data-plane listeners. */
export interface ProxyListeners {
  inbound: string[]
  outbound?: string
  tcp: string[]
}

export interface ListenerDetail {
  kind: 'inbound' | 'outbound' | 'tcp'
  /** The address as configured (port may be 0). */
  configured: string
  /** The address actually bound. */
  bound: string
  /** inbound: the forwardTo address; tcp: the Service (`namespace/name`). */
  target?: string
}

export type ReloadResult =
  | { ok: true; version: number; changed: boolean }
  | { ok: false; version: number; error: string; errors: readonly string[] }

export interface CloseOptions {
  /** How long in-flight requests may take to finish (default: the Proxy's drainTimeout). */
  drainTimeoutMs?: number
}

/** The config in force, as /config shows it. */
export interface ConfigInForce {
  version: number
  source: string
  appliedAt: string
  resources: readonly unknown[]
  warnings: readonly string[]
}

export interface ApplyOptions {
  /** Where this config came from, for errors and /config (default `config` or `resources`). */
  source?: string
}

interface InForce {
  version: number
  appliedAt: Date
  prepared: PreparedConfig
  /** Canonical text of the normalised resources, to recognise a reload that changes nothing. */
  fingerprint: string
}

type State = 'running' | 'closing' | 'closed'

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? ''
}

function errorsOf(err: unknown): readonly string[] {
  if (err instanceof ConfigError) return err.errors
  return [firstLine(err instanceof Error ? err.message : String(err))]
}

function messageOf(err: unknown): string {
  return firstLine(err instanceof Error ? err.message : String(err))
}

function defaultLogger(line: string): void {
  process.stderr.write(`mesh-proxy: ${line}\n`)
}

export class MeshProxy {
  private state: State = 'running'
  private closing: Promise<void> | undefined
  private inForce: InForce | undefined
  private admin: AdminServer | undefined
  private watcher: FileWatcher | undefined
  /** Reloads run one at a time, in the order asked, so an older file never lands last. */
  private reloads: Promise<unknown> = Promise.resolve()
  private readonly metrics: ProxyMetrics
  private readonly log: (line: string) => void
  /** What the running engine and admin server were started with; a reload cannot change them. */
  private readonly workerThreads: number
  private readonly adminListen: string

  private constructor(
    private readonly options: MeshProxyOptions,
    private readonly engine: BindingEngine,
    initial: PreparedConfig,
  ) {
    const logger = options.logger === undefined ? defaultLogger : options.logger
    this.log = logger ?? (() => {})
    this.workerThreads = options.workerThreads ?? initial.settings.workerThreads
    this.adminListen = options.adminListen ?? initial.settings.adminListen
    this.metrics = new ProxyMetrics({
      configVersion: () => this.inForce?.version ?? 0,
      engineStats: () => (this.state === 'closed' ? null : this.engine.stats()),
    })
  }

  /**
   * Loads and validates the config, starts the engine with it, then the admin server and the
   * file watch. Throws a ConfigError (one line per problem) when the config is rejected or a
   * listener cannot bind; nothing keeps running then.
   */
  static async start(options: MeshProxyOptions): Promise<MeshProxy> {
    const given = [options.configFile, options.config, options.resources].filter((v) => v !== undefined).length
    if (given !== 1) throw new TypeError('MeshProxy.start needs exactly one of configFile, config or resources')
    if (options.workerThreads !== undefined && !(Number.isInteger(options.workerThreads) && options.workerThreads >= 1)) {
      throw new TypeError(`workerThreads: expected a whole number of at least 1, got ${options.workerThreads}`)
    }
    if (options.drainTimeoutMs !== undefined && !(Number.isInteger(options.drainTimeoutMs) && options.drainTimeoutMs >= 0)) {
      throw new TypeError(`drainTimeoutMs: expected a whole number of milliseconds, got ${options.drainTimeoutMs}`)
    }

    const input: ConfigInput =
      options.configFile !== undefined
        ? { kind: 'file', path: options.configFile }
        : options.config !== undefined
          ? { kind: 'text', text: options.config, label: options.source ?? 'config' }
          : { kind: 'resources', resources: options.resources ?? [], label: options.source ?? 'resources' }
    const prepared = await prepareConfig(input)

    const workerThreads = options.workerThreads ?? prepared.settings.workerThreads
    const engine = new BindingEngine({ workerThreads })
    const proxy = new MeshProxy(options, engine, prepared)
    try {
      proxy.commit(prepared, 'start')
      if (proxy.adminListen !== 'off') {
        const label = options.adminListen !== undefined ? 'adminListen' : `${prepared.label}: admin.listen`
        proxy.admin = await AdminServer.listen(
          proxy.adminListen,
          {
            ready: () => proxy.state === 'running' && proxy.inForce !== undefined,
            metrics: () => proxy.metrics.render(),
            config: () => proxy.config,
          },
          label,
        ).catch((err: unknown) => {
          throw new ConfigError([messageOf(err)])
        })
      }
      if (options.configFile !== undefined && (options.watch ?? true)) proxy.watch(options.configFile)
    } catch (err) {
      await proxy.close({ drainTimeoutMs: 0 }).catch(() => {})
      throw err
    }
    return proxy
  }

  /** The config version in force (1 after start, +1 per applied change). */
  get version(): number {
    return this.inForce?.version ?? 0
  }

  /** Bound addresses of the data-plane listeners (port 0 in the config shows the real port). */
  get listeners(): ProxyListeners {
    this.assertOpen('read listeners of')
    const result: ProxyListeners = { inbound: [], tcp: [] }
    for (const listener of this.engine.listeners()) {
      if (listener.kind === 'inbound') result.inbound.push(listener.bound)
      else if (listener.kind === 'outbound') result.outbound = listener.bound
      else if (listener.kind === 'tcp') result.tcp.push(listener.bound)
    }
    return result
  }

  /**
   * Each listener as configured and as bound, with where its traffic goes: an inbound
   * listener's forwardTo, a tcp listener's Service (`namespace/name`).
   */
  listenerDetails(): ListenerDetail[] {
    this.assertOpen('read listeners of')
    const compiled = this.inForce?.prepared.compiled
    return this.engine.listeners().map((l) => {
      const kind = l.kind as ListenerDetail['kind']
      const target =
        kind === 'inbound'
          ? compiled?.inbound.find((i) => i.listen === l.configured)?.forwardTo
          : kind === 'tcp'
            ? compiled?.tcpOutbound.find((t) => t.listen === l.configured)?.service
            : undefined
      return { kind, configured: l.configured, bound: l.bound, ...(target === undefined ? {} : { target }) }
    })
  }

  /** The admin server's bound address, or undefined when it is off. */
  get adminAddress(): string | undefined {
    return this.admin?.address
  }

  /** How long `close()` drains by default. */
  get drainTimeoutMs(): number {
    return this.options.drainTimeoutMs ?? this.inForce?.prepared.settings.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS
  }

  /** True until `close()` is called. */
  get running(): boolean {
    return this.state === 'running'
  }

  /** The config in force, as /config serves it. */
  get config(): ConfigInForce | undefined {
    const inForce = this.inForce
    if (!inForce) return undefined
    return {
      version: inForce.version,
      source: inForce.prepared.source,
      appliedAt: inForce.appliedAt.toISOString(),
      resources: inForce.prepared.resources,
      warnings: inForce.prepared.warnings,
    }
  }

  /**
   * Validates, compiles and applies new resources (objects, or YAML/JSON text) and returns
   * the new version. On any error it throws (ConfigError for a rejected config) and the
   * config in force stays. The next reload of a configFile replaces what this applied.
   */
  async apply(input: string | readonly unknown[], options: ApplyOptions = {}): Promise<number> {
    this.assertOpen('apply to')
    const configInput: ConfigInput =
      typeof input === 'string'
        ? { kind: 'text', text: input, label: options.source ?? 'config' }
        : { kind: 'resources', resources: input, label: options.source ?? 'resources' }
    let prepared: PreparedConfig
    try {
      prepared = await prepareConfig(configInput)
      this.assertOpen('apply to')
      this.commit(prepared, 'apply')
    } catch (err) {
      if (this.state === 'running') {
        this.metrics.recordReload('failure')
        this.emit({
          type: 'rejected',
          trigger: 'apply',
          version: this.version,
          source: configInput.label,
          errors: errorsOf(err),
        })
      }
      throw err
    }
    this.metrics.recordReload('success')
    return this.version
  }

  /**
   * Re-reads the configFile and applies it when it changed. A bad file leaves the config in
   * force, counts as `config_reload_total{result="failure"}` and is reported in one line;
   * the result says which. Never throws.
   */
  reload(): Promise<ReloadResult> {
    return this.enqueueReload(false)
  }

  private enqueueReload(fromWatch: boolean): Promise<ReloadResult> {
    const run = this.reloads.then(() => this.reloadNow(fromWatch))
    this.reloads = run.catch(() => {})
    return run
  }

  private async reloadNow(fromWatch: boolean): Promise<ReloadResult> {
    const file = this.options.configFile
    if (this.state !== 'running') {
      return { ok: false, version: this.version, error: 'the proxy is closed', errors: ['the proxy is closed'] }
    }
    if (file === undefined) {
      const error = 'nothing to reload: the proxy was not started from a configFile'
      return { ok: false, version: this.version, error, errors: [error] }
    }

    try {
      const prepared = await prepareConfig({ kind: 'file', path: file })
      if (this.state !== 'running') {
        return { ok: false, version: this.version, error: 'the proxy is closed', errors: ['the proxy is closed'] }
      }
      if (this.inForce && fingerprint(prepared) === this.inForce.fingerprint) {
        // Editors often write a file more than once per save; an unchanged file is not news.
        if (!fromWatch) {
          this.metrics.recordReload('success')
          this.log(`reload of ${file}: unchanged; version ${this.version} stays in force`)
        }
        return { ok: true, version: this.version, changed: false }
      }
      this.commit(prepared, 'reload')
      this.metrics.recordReload('success')
      this.log(`reload of ${file}: config version ${this.version} in force`)
      return { ok: true, version: this.version, changed: true }
    } catch (err) {
      const errors = errorsOf(err)
      const error = messageOf(err)
      this.metrics.recordReload('failure')
      this.log(`reload of ${file} rejected: ${error}; version ${this.version} stays in force`)
      this.emit({ type: 'rejected', trigger: 'reload', version: this.version, source: file, errors })
      return { ok: false, version: this.version, error, errors }
    }
  }

  /**
   * Stops watching, stops accepting, lets in-flight requests finish for up to the drain
   * timeout, then stops the engine and the admin server. Idempotent: later calls return the
   * same promise. /ready answers 503 while draining.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainTimeoutMs ?? this.drainTimeoutMs)
    return this.closing
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private async shutdown(drainTimeoutMs: number): Promise<void> {
    this.state = 'closing'
    this.watcher?.close()
    this.watcher = undefined
    try {
      await this.engine.shutdown(Math.max(0, Math.round(drainTimeoutMs)))
    } finally {
      this.state = 'closed'
      await this.admin?.close()
    }
  }

  /** Puts a prepared config in force in the engine; throws and changes nothing on refusal. */
  private commit(prepared: PreparedConfig, trigger: ApplyTrigger): void {
    const restartOnly = this.restartOnlyChanges(prepared)
    let version: number
    try {
      version = this.engine.apply(prepared.compiled)
    } catch (err) {
      // The engine names the field (`inbound[0].listen: cannot listen on ...`); say which file.
      throw new ConfigError([`${prepared.label}: ${messageOf(err)}`])
    }
    this.inForce = { version, appliedAt: new Date(), prepared, fingerprint: fingerprint(prepared) }
    for (const warning of [...prepared.warnings, ...restartOnly]) {
      this.log(warning)
      this.emit({ type: 'warning', message: warning })
    }
    this.emit({ type: 'applied', trigger, version, source: prepared.source })
  }

  /** Proxy fields the running process cannot change: reported, never silently dropped. */
  private restartOnlyChanges(prepared: PreparedConfig): string[] {
    if (!this.inForce) return []
    const warnings: string[] = []
    const next = prepared.settings
    const where = `${prepared.label}: Proxy "${next.name}"`
    if (this.options.workerThreads === undefined && next.workerThreads !== this.workerThreads) {
      warnings.push(
        `${where}: workerThreads changed from ${this.workerThreads} to ${next.workerThreads}; takes effect after a restart`,
      )
    }
    if (this.options.adminListen === undefined && next.adminListen !== this.adminListen) {
      warnings.push(`${where}: admin.listen changed from ${this.adminListen} to ${next.adminListen}; takes effect after a restart`)
    }
    return warnings
  }

  private watch(file: string): void {
    this.watcher = new FileWatcher(file, {
      onChange: () => {
        void this.enqueueReload(true)
      },
      onError: (message) => {
        const warning = `watching ${file} stopped: ${message}; SIGHUP still reloads`
        this.log(warning)
        this.emit({ type: 'warning', message: warning })
      },
    })
  }

  private emit(event: MeshProxyEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch (err) {
      this.log(`onEvent handler threw: ${messageOf(err)}`)
    }
  }

  private assertOpen(what: string): void {
    if (this.state !== 'running') throw new Error(`cannot ${what} a closed MeshProxy; start a new one`)
  }
}

function fingerprint(prepared: PreparedConfig): string {
  return JSON.stringify(prepared.resources)
}
