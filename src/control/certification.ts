// The proxy's workload certificate (proto/mesh/v1/identity.proto): the key pair is made
// inside the engine binding and never leaves it; only the CSR goes to mesh-control, with
// the join token, and the certificate chain and trust bundle come back. Renewed at about
// 70 % of its life, retried with backoff while mesh-control is unreachable; the
// certificate in force stays until a new one is installed, so a renewal never interrupts
// anything, and a certificate that expires while mesh-control is away is reported.

import { BindingWorkloadIdentity, type BindingCertificateInfo } from '../../native/index.js'
import { Backoff, formatDelay, type BackoffOptions } from './backoff.js'
import { ControlPlaneChannel, describeGrpcError } from './channel.js'
import type { CertifyResponse__Output, GetTrustBundleResponse__Output } from './proto.js'

/** Renew at this share of a certificate's life (the product contract's "about 70 %"). */
export const RENEW_FRACTION = 0.7

export interface CertificationOptions {
  channel: ControlPlaneChannel
  service: string
  namespace: string
  backoff?: BackoffOptions
  /** Deadline of each call (default 5 s). */
  callTimeoutMs?: number
  log: (line: string) => void
  /** A certificate was installed (the first one, or a renewal). */
  onCertified?: (certificate: BindingCertificateInfo, identity: BindingWorkloadIdentity) => void
}

const DEFAULT_CALL_TIMEOUT_MS = 5_000
/** Never renew sooner than this after an install, whatever the certificate's life. */
const MIN_RENEW_DELAY_MS = 1_000

export class Certification {
  private readonly backoff: Backoff
  private readonly callTimeoutMs: number
  private workload: BindingWorkloadIdentity | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly options: CertificationOptions) {
    this.backoff = new Backoff(options.backoff)
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  }

  /** The identity (key, certificate in force, trust bundle), once the trust domain is known. */
  get identity(): BindingWorkloadIdentity | undefined {
    return this.workload
  }

  /** The certificate in force, when one is installed and not expired. */
  get certificate(): BindingCertificateInfo | undefined {
    const certificate = this.workload?.certificate ?? undefined
    return certificate !== undefined && certificate.notAfter > Date.now() ? certificate : undefined
  }

  start(): void {
    void this.certify()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private async certify(): Promise<void> {
    if (this.stopped) return
    try {
      const workload = this.workload ?? (await this.createIdentity())
      const response = await this.call<CertifyResponse__Output>((done) =>
        this.options.channel.identity.Certify(
          { csrPem: workload.csrPem(), service: this.options.service, namespace: this.options.namespace },
          this.options.channel.metadata(),
          { deadline: ControlPlaneChannel.deadline(this.callTimeoutMs) },
          done,
        ),
      )
      if (this.stopped) return
      const certificate = workload.install(response.certificateChainPem, response.trustBundlePem)
      this.backoff.reset()
      const renewAt = workload.renewAt(RENEW_FRACTION) ?? certificate.notAfter
      const delay = Math.max(MIN_RENEW_DELAY_MS, renewAt - Date.now())
      this.options.log(
        `certificate for ${certificate.spiffeId} valid until ${new Date(certificate.notAfter).toISOString()}; ` +
          `renewing in ${formatDelay(delay)}`,
      )
      this.schedule(delay)
      this.options.onCertified?.(certificate, workload)
    } catch (err) {
      if (this.stopped) return
      const delay = this.backoff.next()
      const held = this.certificate
      const standing = held
        ? `the certificate in force is valid until ${new Date(held.notAfter).toISOString()}`
        : this.workload?.certificate
          ? 'the certificate in force has EXPIRED'
          : 'no certificate yet'
      this.options.log(`certificate request failed: ${describeError(err)}; ${standing}; retrying in ${formatDelay(delay)}`)
      this.schedule(delay)
    }
  }

  /** The trust domain decides the SPIFFE id; it is asked once per process. */
  private async createIdentity(): Promise<BindingWorkloadIdentity> {
    const bundle = await this.call<GetTrustBundleResponse__Output>((done) =>
      this.options.channel.identity.GetTrustBundle({}, this.options.channel.metadata(), { deadline: ControlPlaneChannel.deadline(this.callTimeoutMs) }, done),
    )
    const spiffeId = `spiffe://${bundle.trustDomain}/ns/${this.options.namespace}/sa/${this.options.service}`
    this.workload ??= new BindingWorkloadIdentity(spiffeId)
    return this.workload
  }

  private call<T>(start: (done: (err: Error | null, response?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      start((err, response) => (err || response === undefined ? reject(err ?? new Error('empty response')) : resolve(response)))
    })
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer)
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.certify()
    }, delayMs)
  }
}

/** gRPC errors as the channel describes them; binding errors (an untrusted chain) by their message. */
function describeError(err: unknown): string {
  return typeof (err as { code?: unknown }).code === 'number' ? describeGrpcError(err) : String((err as Error).message ?? err).split('\n', 1)[0]!
}
