/**
 * MeshControl: the mesh-control server as a library (the `mesh-control` CLI wraps it).
 *
 * Assembly of the parts, each in its own module:
 *   store/       resources and join tokens (FileStore under the data dir)
 *   registry/    leases of registered endpoints, leases.json, the Registry service
 *   health/      active health checks of endpoints
 *   discovery/   catalog (effective resources) -> scopes -> per-stream push sessions
 *   admin/       the Admin service (meshctl)
 *   identity/    the certificate authority and the Identity service (workload certificates)
 *   version.ts   the mesh version, monotonic across restarts
 *
 * Every change (a store commit, a lease event, a health transition) advances the mesh
 * version at once, marks what it touched in the catalog and schedules one distributor
 * pass, which pushes to the streams whose scope content changed.
 */
import net from 'node:net'
import { join, resolve } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { formatHostPort, parseHostPort } from '../config/index.js'
import { adminService, identityService, registryService, timestampFromDate, type StatusResponse } from '../control/proto.js'
import { adminHandlers } from './admin/admin-service.js'
import { probeFileStore } from './admin/store-probe.js'
import { Catalog } from './discovery/catalog.js'
import { Distributor } from './discovery/distributor.js'
import { discoveryServiceForServer } from './discovery/encoding.js'
import { watchHandler } from './discovery/watch-service.js'
import { MeshControlError, messageOf } from './errors.js'
import { HealthMonitor } from './health/monitor.js'
import { CertificateAuthority } from './identity/authority.js'
import { identityHandlers } from './identity/identity-service.js'
import { LeaseFileWriter, loadLeaseFile } from './registry/lease-file.js'
import { LeaseTable, serviceKeyOf, type LeaseEvent } from './registry/leases.js'
import { registryHandlers } from './registry/registry-service.js'
import { dnsLabelProblem } from './rpc.js'
import { FileStore, StoreError } from './store/index.js'
import { JoinTokens, formatIdentity, type Identity, type IssuedToken } from './tokens.js'
import { packageVersion } from '../version.js'
import { MeshVersion } from './version.js'

export interface MeshControlOptions {
  /** HOST:PORT, default 127.0.0.1:7443; port 0 binds any free port. */
  listen?: string
  /** FileStore and leases.json live here (created, mode 0700, when missing). */
  dataDir: string
  /** The SPIFFE trust domain of workload identities, default `mesh.local`. */
  trustDomain?: string
  /**
   * An operator's CA: its certificate (optionally followed by its issuers) and PKCS#8 key
   * files, given together. Default: the data dir's own root, `<dataDir>/ca/` (created on
   * first start: directory 0700, key 0600).
   */
  caCertFile?: string
  caKeyFile?: string
  /** PEM files of extra roots for the trust bundle (another root during a rotation). */
  trustBundleFiles?: readonly string[]
  /** Life of the workload certificates mesh-control signs, default 24 h, at least 1 min. */
  certTtlMs?: number
  /**
   * Scoped mTLS: only workloads in these namespaces get mTLS on their `permissive` ports
   * (those elsewhere are reached in plaintext, for speed where that network is trusted);
   * `strict` ports always get mTLS. Default: every namespace.
   */
  mtlsNamespaces?: readonly string[]
  /** TTL of registered endpoint leases, default 10 000 ms. */
  leaseTtlMs?: number
  /** Default: stderr lines prefixed `mesh-control: `; null silences. */
  logger?: ((line: string) => void) | null
}

export const DEFAULT_LISTEN = '127.0.0.1:7443'
export const DEFAULT_TRUST_DOMAIN = 'mesh.local'
export const DEFAULT_LEASE_TTL_MS = 10_000

/**
 * Server channel options. Keepalive pings find proxies that vanished without closing
 * their connection (host lost, network cut): their streams end and their status rows go
 * within about time + timeout. Applies may carry large files; pushes are bounded by the
 * proxies' own receive limit.
 */
export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
}

/** How long close() lets streams and calls finish before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000

function defaultLogger(line: string): void {
  process.stderr.write(`mesh-control: ${line}\n`)
}

function bindError(listen: string, err: Error): MeshControlError {
  const text = err.message
  const reason = /EADDRINUSE/.test(text)
    ? 'address in use'
    : /EADDRNOTAVAIL/.test(text)
      ? 'address not available on this host'
      : /EACCES/.test(text)
        ? 'permission denied'
        : messageOf(err)
  return new MeshControlError(`--listen ${listen}: ${reason}`)
}

/**
 * Binds and releases `host:port` with a plain listener first. grpc-js reports a failed
 * bind by also writing its own line to stderr ("E No address added ..."), which would
 * precede the one clear line the operator should see; checking first keeps the common
 * failures (in use, not local, privileged) to that one line.
 */
async function checkListenAddress(listen: string, host: string, port: number): Promise<void> {
  if (port === 0) return
  const probe = net.createServer()
  await new Promise<void>((done, fail) => {
    probe.once('error', (err) => fail(bindError(listen, err)))
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done()))
  })
}

function describeLeaseEvent(event: LeaseEvent): string {
  const { lease } = event
  const who = `${serviceKeyOf(lease)} proxy ${JSON.stringify(lease.proxyId)}`
  const addresses = lease.endpoints.map((endpoint) => endpoint.address).join(', ') || 'no endpoints'
  switch (event.type) {
    case 'registered':
      return `registry: ${who} ${event.replaced === undefined ? 'registered' : 're-registered'} ${addresses}`
    case 'deregistered':
      return `registry: ${who} deregistered ${addresses}`
    case 'expired':
      return `registry: ${who} lease expired (no heartbeat); withdrew ${addresses}`
  }
}

/** The parts of a running MeshControl, assembled by start(). */
interface Parts {
  store: FileStore
  version: MeshVersion
  leases: LeaseTable
  leaseFile: LeaseFileWriter
  health: HealthMonitor
  distributor: Distributor
  tokens: JoinTokens
  authority: CertificateAuthority
  unwatch: () => void
}

export class MeshControl {
  /** The bound `HOST:PORT` (the real port when `listen` asked for port 0). */
  readonly address: string
  readonly dataDir: string
  readonly trustDomain: string
  readonly startedAt = new Date()
  private closing: Promise<void> | undefined

  private constructor(
    address: string,
    dataDir: string,
    trustDomain: string,
    private readonly server: grpc.Server,
    private readonly parts: Parts,
    private readonly log: (line: string) => void,
  ) {
    this.address = address
    this.dataDir = dataDir
    this.trustDomain = trustDomain
  }

  /**
   * Opens the data dir, loads (or creates) the certificate authority, restores resources
   * and leases, and serves Discovery, Registry, Identity and Admin on `listen`. Throws a
   * MeshControlError (one line) for what the operator must fix: a bad or busy listen
   * address, an unusable or corrupt data dir, a CA or trust bundle file that is wrong.
   */
  static async start(options: MeshControlOptions): Promise<MeshControl> {
    const listen = options.listen ?? DEFAULT_LISTEN
    let host: string
    let listenPort: number
    try {
      ;({ host, port: listenPort } = parseHostPort(listen, { allowPortZero: true }))
    } catch (err) {
      throw new MeshControlError(`--listen ${listen}: ${messageOf(err)}`)
    }
    const leaseTtlMs = options.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS
    if (!Number.isFinite(leaseTtlMs) || leaseTtlMs < 100) {
      throw new MeshControlError(`--lease-ttl: expected at least 100ms, got ${leaseTtlMs}ms`)
    }
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN
    const mtlsNamespaces = options.mtlsNamespaces === undefined ? undefined : new Set(options.mtlsNamespaces)
    const logger = options.logger === undefined ? defaultLogger : options.logger
    const log = logger ?? (() => undefined)
    const dataDir = resolve(options.dataDir)
    // Before touching the data dir: a second mesh-control started by mistake on the
    // same dir and port must not rewrite the running one's files.
    await checkListenAddress(listen, host, listenPort)

    let store: FileStore
    try {
      store = await FileStore.open(dataDir)
    } catch (err) {
      if (err instanceof StoreError) throw new MeshControlError(err.message)
      throw err
    }
    const cleanups: (() => unknown)[] = [() => store.close()]
    try {
      // After the store's lock: two servers on one data dir must not both create a root.
      const authority = CertificateAuthority.load({
        dataDir,
        trustDomain,
        caCertFile: options.caCertFile,
        caKeyFile: options.caKeyFile,
        trustBundleFiles: options.trustBundleFiles,
        certTtlMs: options.certTtlMs,
      })
      log(authority.describe())
      const caProblem = authority.problem()
      if (caProblem !== undefined) log(`warning: ${caProblem}: proxies cannot get certificates until the CA is replaced`)
      const persisted = await loadLeaseFile(dataDir)
      const listing = await store.list()

      // The parts refer to each other through these late-bound names; nothing runs
      // until the store watch and the server start below.
      let distributor: Distributor | undefined
      let leaseFile: LeaseFileWriter | undefined
      const scheduleLeaseWrite = (): Promise<void> =>
        (leaseFile as LeaseFileWriter).save().catch((err: unknown) => {
          log(`${messageOf(err)}; registered endpoints will not survive a restart until a write succeeds`)
        })
      const version = new MeshVersion(persisted.versionCeiling, BigInt(listing.revision), () => void scheduleLeaseWrite())
      const changed = (): void => {
        version.advance()
        distributor?.schedule()
      }

      // Effective endpoints: static + registered (leases) - unhealthy (health).
      const catalog = new Catalog({
        registeredEndpoints: (service) => leases.endpointsOf(service),
        // A lease is taken with the token of the Service it registers under: that identity.
        registeredIdentity: (service) => {
          const [namespace, name] = service.split('/') as [string, string]
          return `spiffe://${trustDomain}/ns/${namespace}/sa/${name}`
        },
        unhealthyEndpoints: (service) => health.unhealthyOf(service),
        mtlsInScope: (namespace) => mtlsNamespaces === undefined || mtlsNamespaces.has(namespace),
      })
      const health = new HealthMonitor({
        log,
        onTransition: (transition) => {
          catalog.serviceEndpointsChanged(transition.service)
          changed()
        },
      })
      cleanups.push(() => health.close())
      const leases = new LeaseTable({
        ttlMs: leaseTtlMs,
        onChange: (event) => {
          log(describeLeaseEvent(event))
          catalog.serviceEndpointsChanged(serviceKeyOf(event.lease))
          changed()
          // Register and deregister answer after their own write; expiry has no caller.
          if (event.type === 'expired') void scheduleLeaseWrite()
        },
      })
      cleanups.push(() => leases.close())
      leases.restore(persisted.leases)
      catalog.load(listing.entries)
      leaseFile = new LeaseFileWriter(dataDir, () => ({ versionCeiling: version.durableCeiling, leases: leases.all() }))
      try {
        // The new ceiling must be durable before any version under it is handed out.
        await leaseFile.save()
      } catch (err) {
        throw new MeshControlError(messageOf(err))
      }

      distributor = new Distributor({
        snapshot: () => catalog.snapshot(version.toString()),
        afterPass: () => health.reconcile(catalog.healthTargets()),
        log,
      })
      const activeDistributor = distributor
      cleanups.push(() => activeDistributor.close())
      const unwatch = store.watch(listing.revision, (changes) => {
        // A throwing listener is dropped by the store's feed, which would silently
        // freeze every push: log instead and keep following.
        try {
          catalog.applyChanges(changes)
          changed()
        } catch (err) {
          log(`internal error applying store revision ${changes.revision}: ${messageOf(err)}`)
        }
      })
      cleanups.push(unwatch)

      const tokens = new JoinTokens(store)
      const parts: Parts = { store, version, leases, leaseFile, health, distributor, tokens, authority, unwatch }
      const server = new grpc.Server(SERVER_OPTIONS)
      let control: MeshControl | undefined
      server.addService(discoveryServiceForServer(), {
        Watch: watchHandler({ tokens, distributor, log, authorityId: authority.authorityId }),
      } as grpc.UntypedServiceImplementation)
      server.addService(
        registryService(),
        registryHandlers({ tokens, leases, persist: scheduleLeaseWrite }),
      )
      server.addService(
        identityService(),
        identityHandlers({
          tokens,
          authority,
          log,
          onIssued: (identity, proxyId, authorityId) =>
            activeDistributor.certified(identity.namespace, identity.service, proxyId, authorityId),
        }),
      )
      server.addService(
        adminService(),
        adminHandlers({
          store,
          version: () => version.toString(),
          status: () => (control as MeshControl).status(),
          createToken: (identity) => (control as MeshControl).issueToken(identity),
        }),
      )
      const port = await new Promise<number>((done, fail) => {
        server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? fail(bindError(listen, err)) : done(bound)))
      }).catch((err: unknown) => {
        server.forceShutdown()
        throw err
      })
      control = new MeshControl(formatHostPort(host, port), dataDir, trustDomain, server, parts, log)
      // The first pass starts health checks of stored Services even before any proxy connects.
      distributor.schedule()
      log(
        `serving on ${control.address} (data dir ${dataDir}, mesh version ${version}, ${listing.entries.length} resources, ${leases.size} leases)`,
      )
      if ((await store.listTokens()).length === 0) {
        log('no join tokens yet: create one per workload with `meshctl token create --name SERVICE [--namespace NS]`')
      }
      return control
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await cleanup()
      throw err
    }
  }

  /** The current mesh version (uint64 as a decimal string). */
  get version(): string {
    return this.parts.version.toString()
  }

  /**
   * Issues a join token for one workload identity. The raw token is returned once and
   * never stored or logged; a new token for the same identity replaces the previous one.
   */
  async createToken(service: string, namespace = 'default'): Promise<IssuedToken> {
    for (const [field, value] of [['service', service], ['namespace', namespace]] as const) {
      const problem = dnsLabelProblem(value)
      if (problem !== undefined) throw new MeshControlError(`token create: ${field}: ${problem}`)
    }
    return this.issueToken({ service, namespace })
  }

  /** Admin.Status: the server, the store (probed with a real write) and the connected proxies. */
  async status(): Promise<StatusResponse> {
    return {
      serverVersion: packageVersion(),
      startedAt: timestampFromDate(this.startedAt),
      version: this.version,
      store: await probeFileStore(this.dataDir),
      ca: this.parts.authority.status(),
      proxies: this.parts.distributor.statuses(),
    }
  }

  /**
   * Ends every Watch stream (UNAVAILABLE, so proxies reconnect with backoff), stops the
   * server, health checks and lease expiry, and closes the store. Leases stay in
   * leases.json for the next start. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const { distributor, health, leases, leaseFile, store, unwatch } = this.parts
      distributor.close()
      await new Promise<void>((done) => {
        const force = setTimeout(() => {
          this.server.forceShutdown()
          done()
        }, SHUTDOWN_GRACE_MS)
        force.unref()
        this.server.tryShutdown(() => {
          clearTimeout(force)
          done()
        })
      })
      unwatch()
      health.close()
      leases.close()
      await leaseFile.save().catch((err: unknown) => this.log(messageOf(err)))
      await store.close()
      this.log('stopped')
    })()
    return this.closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  private async issueToken(identity: Identity): Promise<IssuedToken> {
    const issued = await this.parts.tokens.issue(identity)
    this.log(`token ${issued.tokenId} issued for ${formatIdentity(identity)}`)
    return issued
  }
}
