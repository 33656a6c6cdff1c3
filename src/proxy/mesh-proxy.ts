// MeshProxy: the embedding API. One instance owns one native engine (its runtime, listeners
// and connections), the admin server and the config file watch. Config goes in as resources;
// the engine only ever sees a validated, compiled snapshot, and a rejected one changes nothing.

import { X509Certificate } from 'node:crypto'
import { BindingEngine, type BindingCertificateInfo, type BindingProxyConfig } from '../../native/index.js'
import { ConfigError, messageOf } from '../config/index.js'
import { ControlPlaneClient } from '../control/control-plane-client.js'
import type { PushToApply } from '../control/discovery-client.js'
import { decodeResources, type HeldResources } from '../control/push-state.js'
import type { InboundPort } from '../control/registration.js'
import { ProxyMetrics } from '../metrics/index.js'
import { formatHostPort, parseHostPort } from './address.js'
import { AdminServer } from './admin-server.js'
import {
  checkControlPlaneOptions,
  type ControlPlaneOptions,
  type ControlPlaneSettings,
} from './control-plane-options.js'
import { defaultLocalProxy, loadLocalProxy, prepareLocalOnly, preparePushed, type LocalProxy } from './connected-config.js'
import { prepareConfig, type ConfigInput, type PreparedConfig } from './prepare.js'
import { FileWatcher } from './watch.js'

// Node before 20.4 (and 18.18) lacks the well-known symbol; define it so `await using` works.
if (typeof Symbol.asyncDispose !== 'symbol') {
  Object.defineProperty(Symbol, 'asyncDispose', { value: Symbol.for('nodejs.asyncDispose') })
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000

export interface MeshProxyOptions {
  /**
   * Connected mode: Services, routes and policies come from mesh-control, and the proxy
   * registers its inbound ports there. `configFile`/`config`/`resources` are then optional
   * and may hold only this proxy's Proxy resource (without one: outbound 127.0.0.1:4140,
   * admin 127.0.0.1:4191, no inbound).
   */
  controlPlane?: ControlPlaneOptions
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
export type ApplyTrigger = 'start' | 'apply' | 'reload' | 'control-plane'

export type MeshProxyEvent =
  | { type: 'warning'; message: string }
  | {
      type: 'applied'
      trigger: ApplyTrigger
      version: number
      source: string
      /** Connected mode, trigger `control-plane`: the pushed version now in force. */
      controlPlaneVersion?: string
    }
  | {
      type: 'rejected'
      trigger: ApplyTrigger
      version: number
      source: string
      errors: readonly string[]
      /** Connected mode, trigger `control-plane`: the pushed version that was NACKed. */
      controlPlaneVersion?: string
    }
  /** Connected mode: a Discovery stream delivered its first push. */
  | { type: 'connected'; controlPlane: string; proxyId: string }
  /** Connected mode: a stream ended (or could not open); the next attempt is in `retryInMs`. */
  | { type: 'disconnected'; controlPlane: string; reason: string; retryInMs: number; wasConnected: boolean }
  /** Connected mode: the inbound endpoints are registered under a (new) lease. */
  | { type: 'registered'; controlPlane: string; endpoints: readonly string[]; ttlMs: number }
  /**
   * Connected mode: a workload certificate was installed (`notAfter` in ms since the
   * epoch), issued under `authorityId` ('' when mesh-control did not say).
   */
  | { type: 'certified'; controlPlane: string; spiffeId: string; notAfter: number; authorityId: string }

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
  /** Connected mode only. */
  controlPlane?: ControlPlaneView
}

/** Where a connected proxy's config comes from, and how that stands. */
export interface ControlPlaneView {
  /** mesh-control's `HOST:PORT`. */
  address: string
  service: string
  namespace: string
  proxyId: string
  /** A Discovery stream is open and has delivered a push. */
  connected: boolean
  /** The control-plane version of the push in force; null until the first one. */
  version: string | null
  /** The registered endpoints (`IP:PORT`); empty when nothing is registered. */
  registered: string[]
  /** The workload certificate in force (public facts only); null before the first one or once expired. */
  identity: CertificateView | null
}

/** What /config shows of the workload certificate in force. */
export interface CertificateView {
  spiffeId: string
  notBefore: string
  notAfter: string
  serial: string
  /** The issuing CA's subject (`O=mesh-core, CN=...`, as `meshctl check` shows CA subjects): who signed it. */
  issuer: string
  /**
   * The authority id it was issued under (mesh-control's `meshctl check` shows the
   * current one); '' from a mesh-control that does not report one.
   */
  authorityId: string
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

/** Connected-mode state: the identity, the local Proxy and what the control plane sent. */
interface Connected {
  settings: ControlPlaneSettings
  /** `control-plane HOST:PORT`: the source of every config in connected mode. */
  source: string
  local: LocalProxy
  client?: ControlPlaneClient
  /** The control-plane version in force; undefined until the first push is applied. */
  version?: string
  /** The pushed resources in force (the state that version produced). */
  pushed?: HeldResources
}

/**
 * The engine names a field by its position in the compiled config (`httpRoutes[2].rules[0]
 * ...`); users wrote resources, so name the one it came from (`HTTPRoute "default/split":
 * rules[0]...`).
 */
export function describeEngineError(message: string, compiled: BindingProxyConfig): string {
  const match = /^(httpRoutes|services|authorization)\[(\d+)\]\.?/.exec(message)
  if (!match) return message
  const [kind, list] =
    match[1] === 'httpRoutes'
      ? ['HTTPRoute', compiled.httpRoutes]
      : match[1] === 'services'
        ? ['Service', compiled.services]
        : ['AuthorizationPolicy', compiled.authorization ?? []]
  const resource = list[Number(match[2])]
  if (resource === undefined) return message
  return `${kind} "${resource.namespace}/${resource.name}": ${message.slice(match[0].length)}`
}

function describeCertificate(client: ControlPlaneClient | undefined): CertificateView | null {
  const certificate = client?.certificate
  if (certificate === undefined) return null
  return {
    spiffeId: certificate.spiffeId,
    notBefore: new Date(certificate.notBefore).toISOString(),
    notAfter: new Date(certificate.notAfter).toISOString(),
    serial: certificate.serial,
    issuer: issuerOf(client?.certificateChainPem),
    authorityId: client?.authorityId ?? '',
  }
}

/** The leaf's issuer on one line, attributes in certificate order; '' when there is no chain. */
function issuerOf(chainPem: string | undefined): string {
  if (chainPem === undefined) return ''
  return new X509Certificate(chainPem).issuer.split('\n').join(', ')
}

function errorsOf(err: unknown): readonly string[] {
  if (err instanceof ConfigError) return err.errors
  return [messageOf(err)]
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
  private connected: Connected | undefined

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
    const controlPlane = options.controlPlane === undefined ? undefined : checkControlPlaneOptions(options.controlPlane)
    const given = [options.configFile, options.config, options.resources].filter((v) => v !== undefined).length
    if (controlPlane !== undefined) {
      if (given > 1) throw new TypeError('MeshProxy.start takes at most one of configFile, config or resources with controlPlane')
    } else if (given !== 1) {
      throw new TypeError('MeshProxy.start needs exactly one of configFile, config or resources (or controlPlane)')
    }
    if (options.workerThreads !== undefined && !(Number.isInteger(options.workerThreads) && options.workerThreads >= 1)) {
      throw new TypeError(`workerThreads: expected a whole number of at least 1, got ${options.workerThreads}`)
    }
    if (options.drainTimeoutMs !== undefined && !(Number.isInteger(options.drainTimeoutMs) && options.drainTimeoutMs >= 0)) {
      throw new TypeError(`drainTimeoutMs: expected a whole number of milliseconds, got ${options.drainTimeoutMs}`)
    }

    const input: ConfigInput | undefined =
      options.configFile !== undefined
        ? { kind: 'file', path: options.configFile }
        : options.config !== undefined
          ? { kind: 'text', text: options.config, label: options.source ?? 'config' }
          : options.resources !== undefined
            ? { kind: 'resources', resources: options.resources, label: options.source ?? 'resources' }
            : undefined
    let connected: Connected | undefined
    let prepared: PreparedConfig
    if (controlPlane !== undefined) {
      const identity = { name: controlPlane.name, namespace: controlPlane.namespace }
      const local = input === undefined ? defaultLocalProxy(identity) : await loadLocalProxy(input, identity)
      const source = `control-plane ${controlPlane.address}`
      connected = { settings: controlPlane, source, local }
      // Listeners bind now (a port in use fails the start); Services arrive with the first push.
      prepared = prepareLocalOnly(local, source)
    } else {
      prepared = await prepareConfig(input as ConfigInput)
    }

    const workerThreads = options.workerThreads ?? prepared.settings.workerThreads
    const engine = new BindingEngine({ workerThreads })
    const proxy = new MeshProxy(options, engine, prepared)
    proxy.connected = connected
    try {
      proxy.commit(prepared, 'start')
      if (proxy.adminListen !== 'off') {
        const label = options.adminListen !== undefined ? 'adminListen' : `${prepared.label}: admin.listen`
        proxy.admin = await AdminServer.listen(
          proxy.adminListen,
          {
            // Connected: not before the first push, however long the control plane takes;
            // after it, ready even while the control plane is away (the last config serves).
            ready: () =>
              proxy.state === 'running' &&
              proxy.inForce !== undefined &&
              // Connected: a config from the control plane and a workload identity in force.
              (proxy.connected === undefined ||
                (proxy.connected.version !== undefined && proxy.connected.client?.certificate !== undefined)),
            metrics: () => proxy.metrics.render(),
            config: () => proxy.config,
          },
          label,
        ).catch((err: unknown) => {
          throw new ConfigError([messageOf(err)])
        })
      }
      if (options.configFile !== undefined && (options.watch ?? true)) proxy.watch(options.configFile)
      if (proxy.connected) proxy.connect(proxy.connected)
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
    const view: ConfigInForce = {
      version: inForce.version,
      source: inForce.prepared.source,
      appliedAt: inForce.appliedAt.toISOString(),
      resources: inForce.prepared.resources,
      warnings: inForce.prepared.warnings,
    }
    const connected = this.connected
    if (connected) {
      const client = connected.client
      view.controlPlane = {
        address: connected.settings.address,
        service: connected.settings.name,
        namespace: connected.settings.namespace,
        proxyId: client?.proxyId ?? connected.settings.proxyId ?? '',
        connected: client?.connected ?? false,
        version: connected.version ?? null,
        registered: (client?.lease?.endpoints ?? []).map((e) => formatHostPort(e.address ?? '', e.port ?? 0)),
        identity: describeCertificate(client),
      }
    }
    return view
  }

  /** Connected mode: the control plane's address, or undefined in standalone mode. */
  get controlPlaneAddress(): string | undefined {
    return this.connected?.settings.address
  }

  /** Connected mode: the proxy id sent in Hello and Register. */
  get proxyId(): string | undefined {
    return this.connected?.client?.proxyId
  }

  /** Connected mode: the control-plane version in force, undefined before the first push. */
  get controlPlaneVersion(): string | undefined {
    return this.connected?.version
  }

  /**
   * Validates, compiles and applies new resources (objects, or YAML/JSON text) and returns
   * the new version. On any error it throws (ConfigError for a rejected config) and the
   * config in force stays. The next reload of a configFile replaces what this applied.
   */
  async apply(input: string | readonly unknown[], options: ApplyOptions = {}): Promise<number> {
    this.assertOpen('apply to')
    if (this.connected) {
      throw new Error('apply() is not available in connected mode: resources come from the control plane (meshctl apply)')
    }
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
    return this.enqueue(() => this.reloadNow(fromWatch))
  }

  /** Config changes (reloads, pushes) run one at a time, in the order they came. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.reloads.then(task)
    this.reloads = run.catch(() => {})
    return run
  }

  private async reloadNow(fromWatch: boolean): Promise<ReloadResult> {
    const file = this.options.configFile
    if (this.state !== 'running') {
      return { ok: false, version: this.version, error: 'the proxy is closed', errors: ['the proxy is closed'] }
    }
    if (file === undefined) {
      const error = this.connected
        ? 'nothing to reload: no config file; the config comes from the control plane'
        : 'nothing to reload: the proxy was not started from a configFile'
      return { ok: false, version: this.version, error, errors: [error] }
    }

    try {
      let local: LocalProxy | undefined
      let prepared: PreparedConfig
      if (this.connected) {
        // The file holds only the local Proxy; recombine it with what was pushed.
        local = await loadLocalProxy({ kind: 'file', path: file }, this.connected.settings)
        prepared = this.prepareConnected(this.connected, local)
      } else {
        prepared = await prepareConfig({ kind: 'file', path: file })
      }
      if (this.state !== 'running') {
        return { ok: false, version: this.version, error: 'the proxy is closed', errors: ['the proxy is closed'] }
      }
      if (this.inForce && fingerprint(prepared) === this.inForce.fingerprint) {
        if (this.connected && local) this.connected.local = local
        // Editors often write a file more than once per save; an unchanged file is not news.
        if (!fromWatch) {
          this.metrics.recordReload('success')
          this.log(`reload of ${file}: unchanged; version ${this.version} stays in force`)
        }
        return { ok: true, version: this.version, changed: false }
      }
      this.commit(prepared, 'reload')
      if (this.connected && local) {
        this.connected.local = local
        this.connected.client?.setInboundPorts(this.inboundPorts())
      }
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
    // Withdraw the endpoints before draining, so clients stop choosing this workload while
    // it still finishes what it has; bounded, so an absent control plane cannot stall it.
    const client = this.connected?.client
    if (client) await client.close(this.connected?.settings.deregisterTimeoutMs).catch(() => {})
    try {
      await this.engine.shutdown(Math.max(0, Math.round(drainTimeoutMs)))
    } finally {
      this.state = 'closed'
      await this.admin?.close()
    }
  }

  /** Puts a prepared config in force in the engine; throws and changes nothing on refusal. */
  private commit(prepared: PreparedConfig, trigger: ApplyTrigger, controlPlaneVersion?: string): void {
    const restartOnly = this.restartOnlyChanges(prepared)
    // Pushes repeat the whole set; a warning already reported for the config in force is not news.
    const reported = this.connected && this.inForce ? new Set(this.inForce.prepared.warnings) : new Set<string>()
    let version: number
    try {
      version = this.engine.apply(prepared.compiled)
    } catch (err) {
      // The engine names the field (`inbound[0].listen: cannot listen on ...`); say which file.
      throw new ConfigError([`${prepared.label}: ${describeEngineError(messageOf(err), prepared.compiled)}`])
    }
    this.inForce = { version, appliedAt: new Date(), prepared, fingerprint: fingerprint(prepared) }
    for (const warning of [...prepared.warnings.filter((w) => !reported.has(w)), ...restartOnly]) {
      this.log(warning)
      this.emit({ type: 'warning', message: warning })
    }
    this.emit({
      type: 'applied',
      trigger,
      version,
      source: prepared.source,
      ...(controlPlaneVersion === undefined ? {} : { controlPlaneVersion }),
    })
  }

  /** The local Proxy combined with the pushed resources in force (or alone before the first push). */
  private prepareConnected(connected: Connected, local: LocalProxy): PreparedConfig {
    if (connected.pushed === undefined) return prepareLocalOnly(local, connected.source)
    return preparePushed(local, decodeResources(connected.pushed), connected.source)
  }

  /** Connected mode, once the listeners are bound: open the stream, register the inbound ports. */
  private connect(connected: Connected): void {
    const settings = connected.settings
    const client = new ControlPlaneClient({
      address: settings.address,
      token: settings.token,
      service: settings.name,
      namespace: settings.namespace,
      proxyId: settings.proxyId,
      advertiseAddress: settings.advertiseAddress,
      wants: settings.wants,
      backoff: settings.backoff,
      apply: (push) => this.enqueue(() => this.applyPush(connected, push)),
      log: this.log,
      onConnected: () => this.emit({ type: 'connected', controlPlane: settings.address, proxyId: client.proxyId }),
      onDisconnected: (ended) =>
        this.emit({
          type: 'disconnected',
          controlPlane: settings.address,
          reason: ended.reason,
          retryInMs: ended.retryInMs,
          wasConnected: ended.wasConnected,
        }),
      onRegistered: (lease) =>
        this.emit({
          type: 'registered',
          controlPlane: settings.address,
          endpoints: lease.endpoints.map((e) => formatHostPort(e.address ?? '', e.port ?? 0)),
          ttlMs: lease.ttlMs,
        }),
      onCertified: (certificate, identity) => {
        // New handshakes use the new certificate; open connections keep theirs.
        if (this.state === 'running') this.engine.setIdentity(identity)
        this.emit({
          type: 'certified',
          controlPlane: settings.address,
          spiffeId: certificate.spiffeId,
          notAfter: certificate.notAfter,
          authorityId: client.authorityId ?? '',
        })
      },
    })
    connected.client = client
    client.start(this.inboundPorts())
  }

  /**
   * One push: the local Proxy plus the pushed state, through the standalone validator and
   * compiler, into the engine. Throws (the client NACKs) and changes nothing when rejected;
   * an identical result is acknowledged without touching the engine.
   */
  private async applyPush(connected: Connected, push: PushToApply): Promise<void> {
    if (this.state !== 'running') throw new Error('the proxy is shutting down')
    const cpVersion = push.version
    try {
      const prepared = preparePushed(connected.local, decodeResources(push.state), connected.source)
      if (this.inForce && fingerprint(prepared) === this.inForce.fingerprint) {
        connected.version = cpVersion
        connected.pushed = push.state
        this.metrics.recordReload('success')
        this.log(`control-plane version ${cpVersion}: no change for this proxy; config version ${this.version} stays in force`)
        return
      }
      this.commit(prepared, 'control-plane', cpVersion)
    } catch (err) {
      const errors = errorsOf(err)
      this.metrics.recordReload('failure')
      this.log(`control-plane version ${cpVersion} rejected: ${messageOf(err)}; config version ${this.version} stays in force`)
      this.emit({
        type: 'rejected',
        trigger: 'control-plane',
        version: this.version,
        source: connected.source,
        errors,
        controlPlaneVersion: cpVersion,
      })
      throw err
    }
    connected.version = cpVersion
    connected.pushed = push.state
    this.metrics.recordReload('success')
    this.log(`control-plane version ${cpVersion} applied (config version ${this.version})`)
  }

  /**
   * The bound inbound listeners as registered: bound port, the Proxy inbound's protocol and
   * mTLS mode. Ingress ports (`tls`) are for clients outside the mesh and are not registered.
   */
  private inboundPorts(): InboundPort[] {
    const proxy = this.connected?.local.proxy
    if (!proxy) return []
    const ports: InboundPort[] = []
    for (const listener of this.engine.listeners()) {
      if (listener.kind !== 'inbound') continue
      const inbound = proxy.inbound.find((i) => formatHostPort(i.address, i.port) === listener.configured)
      const bound = parseHostPort(listener.bound)
      if (inbound && bound && inbound.tls === undefined) {
        ports.push({ port: bound.port, protocol: inbound.protocol, mtls: inbound.mtls ?? 'permissive' })
      }
    }
    return ports
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
