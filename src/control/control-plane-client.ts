// Everything a connected proxy does with its control plane, behind one object: the shared
// channel, the Discovery stream (config in), the Registry lease (endpoints out) and the
// workload certificate (identity in). The
// proxy hands it a way to apply pushes and the inbound ports to register; it hands back
// one log line per fact and a few events.

import { formatHostPort, parseHostPort } from '../proxy/address.js'
import { formatDelay, type BackoffOptions } from './backoff.js'
import type { BindingCertificateInfo, BindingWorkloadIdentity } from '../../native/index.js'
import { Certification } from './certification.js'
import { ControlPlaneChannel } from './channel.js'
import { DiscoveryClient, type PushToApply, type StreamEnded } from './discovery-client.js'
import { buildVersion, newProxyId } from './identity.js'
import { localAddressToward } from './local-address.js'
import type { HeldResources } from './push-state.js'
import type { ResourceKey } from './proto.js'
import { Registration, type InboundPort, type Lease } from './registration.js'

export const DEFAULT_DEREGISTER_TIMEOUT_MS = 1_000

export interface ControlPlaneClientOptions {
  /** `HOST:PORT` of mesh-control (a host name or an IP; IPv6 in brackets). */
  address: string
  token: string
  service: string
  namespace: string
  /** Default `<hostname>-<pid>-<random>`. */
  proxyId?: string
  /** The IP to register; default: the local address of a connection to the control plane. */
  advertiseAddress?: string
  /** Hello.wants: the Services this proxy needs; empty means every Service. */
  wants?: readonly ResourceKey[]
  backoff?: BackoffOptions
  /** Validates, compiles and applies a push; throws to NACK it. */
  apply: (push: PushToApply) => Promise<void>
  log: (line: string) => void
  onConnected?: () => void
  onDisconnected?: (ended: StreamEnded) => void
  onRegistered?: (lease: Lease) => void
  /** A workload certificate was installed (the first, or a renewal). */
  onCertified?: (certificate: BindingCertificateInfo, identity: BindingWorkloadIdentity) => void
}

export class ControlPlaneClient {
  readonly proxyId: string
  /** The control plane's address as given (`HOST:PORT`). */
  readonly target: string
  private readonly channel: ControlPlaneChannel
  private readonly discovery: DiscoveryClient
  private readonly registration: Registration
  private readonly certification: Certification
  private readonly host: string
  private readonly port: number
  private closing: Promise<void> | undefined
  /** The inbound listeners to register, held back until the first certificate is installed. */
  private ports: readonly InboundPort[] = []
  private certified = false

  constructor(private readonly options: ControlPlaneClientOptions) {
    const parsed = parseHostPort(options.address)
    if (parsed === null || parsed.port === 0) throw new TypeError(`control plane address: expected HOST:PORT, got ${JSON.stringify(options.address)}`)
    this.host = parsed.host
    this.port = parsed.port
    this.target = formatHostPort(parsed.host, parsed.port)
    this.proxyId = options.proxyId ?? newProxyId()
    this.channel = new ControlPlaneChannel({ target: this.target, token: options.token, backoff: options.backoff })

    this.registration = new Registration({
      channel: this.channel,
      service: options.service,
      namespace: options.namespace,
      proxyId: this.proxyId,
      address: () => this.advertisedAddress(),
      backoff: options.backoff,
      log: options.log,
      onRegistered: options.onRegistered,
    })

    this.certification = new Certification({
      channel: this.channel,
      service: options.service,
      namespace: options.namespace,
      proxyId: this.proxyId,
      backoff: options.backoff,
      log: options.log,
      onCertified: (certificate, identity) => {
        options.onCertified?.(certificate, identity)
        // Registered endpoints are reached over mTLS: offer them once we can serve it.
        if (!this.certified) {
          this.certified = true
          this.registration.setPorts(this.ports)
        }
      },
    })

    this.discovery = new DiscoveryClient({
      channel: this.channel,
      backoff: options.backoff,
      hello: async () => ({
        service: options.service,
        namespace: options.namespace,
        proxyId: this.proxyId,
        // Informational for the server; a control plane that is unreachable right now
        // cannot be asked for our address, and the stream would fail anyway.
        endpoints: await this.registration.endpoints(this.ports).catch(() => []),
        buildVersion: buildVersion(),
        wants: [...(options.wants ?? [])],
        authorityId: this.certification.authorityId ?? '',
      }),
      apply: options.apply,
      // A changed CA or trust bundle (mesh-control restarted for a rotation step) shows
      // here first: the new stream's first push carries the new id.
      onAuthority: (authorityId) => this.certification.authorityAnnounced(authorityId),
      onConnected: () => {
        options.log(`connected to control plane ${this.target} as ${options.namespace}/${options.service} (proxy id ${this.proxyId})`)
        options.onConnected?.()
      },
      onStreamEnded: (ended) => {
        const delay = formatDelay(ended.retryInMs)
        options.log(
          ended.wasConnected
            ? `disconnected from control plane ${this.target}: ${ended.reason}; reconnecting in ${delay}`
            : `cannot reach control plane ${this.target}: ${ended.reason}; retrying in ${delay}`,
        )
        options.onDisconnected?.(ended)
      },
    })
  }

  /**
   * Opens the Discovery stream, asks for a workload certificate, and registers `ports` (the
   * inbound listeners, already bound) once the first certificate is installed: clients reach
   * registered endpoints over mTLS, which a proxy without a certificate cannot serve.
   */
  start(ports: readonly InboundPort[]): void {
    this.ports = ports
    this.discovery.start()
    this.certification.start()
  }

  /** The inbound listeners changed (a new local Proxy): register what is bound now. */
  setInboundPorts(ports: readonly InboundPort[]): void {
    this.ports = ports
    if (this.certified) this.registration.setPorts(ports)
  }

  get connected(): boolean {
    return this.discovery.connected
  }

  get lastAckedVersion(): string {
    return this.discovery.lastAckedVersion
  }

  /** The pushed resources in force (the last ACKed state). */
  get held(): HeldResources {
    return this.discovery.held
  }

  get lease(): Lease | undefined {
    return this.registration.lease
  }

  /** The workload certificate in force, when one is installed and not expired. */
  get certificate(): BindingCertificateInfo | undefined {
    return this.certification.certificate
  }

  /** The authority id the certificate in force was issued under (undefined before one). */
  get authorityId(): string | undefined {
    return this.certification.authorityId
  }

  /** The certificate chain in force (public), PEM, leaf first; undefined before one. */
  get certificateChainPem(): string | undefined {
    return this.certification.identity?.certificateChainPem ?? undefined
  }

  /**
   * Ends the stream, withdraws the lease (waiting at most `deregisterTimeoutMs`), closes
   * the channel. Idempotent.
   */
  close(deregisterTimeoutMs = DEFAULT_DEREGISTER_TIMEOUT_MS): Promise<void> {
    this.closing ??= (async () => {
      this.discovery.stop()
      this.certification.stop()
      try {
        await this.registration.stop(deregisterTimeoutMs)
      } finally {
        this.channel.close()
      }
    })()
    return this.closing
  }

  private advertisedAddress(): Promise<string> {
    if (this.options.advertiseAddress !== undefined) return Promise.resolve(this.options.advertiseAddress)
    return localAddressToward(this.host, this.port)
  }
}
