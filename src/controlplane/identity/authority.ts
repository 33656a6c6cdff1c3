/**
 * mesh-control's certificate authority: the CA (the data dir's own root, created on first
 * start, or an operator's CA from files), the trust bundle it publishes, and the signing
 * of workload certificates. The CA's private key lives in the native binding: this module
 * passes file paths and CSRs in and gets certificates out, and never holds a key.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { formatDuration } from '../../config/index.js'
import { BindingCertificateAuthority, BindingTrustBundle, type BindingIssuedCertificate } from '../../../native/index.js'
import {
  durationFromMs,
  timestampFromDate,
  type CertificateAuthorityStatus,
  type CertifyResponse,
} from '../../control/proto.js'
import { MeshControlError, messageOf, rpcError } from '../errors.js'
import type { Identity } from '../tokens.js'
import { DEFAULT_CERT_TTL_MS, MAX_CERT_TTL_MS, MIN_CERT_TTL_MS } from './limits.js'

export { DEFAULT_CERT_TTL_MS, MAX_CERT_TTL_MS, MIN_CERT_TTL_MS }

export interface AuthorityOptions {
  dataDir: string
  trustDomain: string
  /** An operator's CA certificate (optionally followed by its issuers) and PKCS#8 key. */
  caCertFile?: string
  caKeyFile?: string
  /** PEM files of extra roots (another root during a rotation). */
  trustBundleFiles?: readonly string[]
  certTtlMs?: number
}

/** The `code` the binding puts on its errors. */
type IdentityErrorCode = 'IdentityInvalidInput' | 'IdentityUntrusted' | 'IdentityIo' | 'IdentityUnavailable' | 'IdentityInternal'

function codeOf(err: unknown): IdentityErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('Identity') ? (code as IdentityErrorCode) : undefined
}

/** The workload id of a token's identity. */
export function spiffeIdOf(trustDomain: string, identity: Identity): string {
  return `spiffe://${trustDomain}/ns/${identity.namespace}/sa/${identity.service}`
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

/** The DER of every certificate in `pem`, in order (each parsed, so garbage throws). */
function certificateDers(pem: string): Buffer[] {
  return (pem.match(PEM_CERTIFICATE) ?? []).map((block) => new X509Certificate(block).raw)
}

/**
 * The authority id (identity.proto, CertifyResponse.authority_id): SHA-256 over the
 * SHA-256 of the signing CA certificate's DER followed by the sorted SHA-256s of the
 * trust bundle's roots, as lowercase hex. Digests are fixed-length, so the concatenation
 * is unambiguous; sorting makes the id independent of the order roots were given in.
 */
export function authorityIdOf(signingCertificatePem: string, trustBundlePem: string): string {
  const [signing] = certificateDers(signingCertificatePem)
  if (signing === undefined) throw new TypeError('authority id: no certificate in the signing CA PEM')
  const digest = (der: Buffer): Buffer => createHash('sha256').update(der).digest()
  const roots = certificateDers(trustBundlePem).map(digest).sort(Buffer.compare)
  return createHash('sha256').update(Buffer.concat([digest(signing), ...roots])).digest('hex')
}

export class CertificateAuthority {
  /** What this CA signs with and trusts, as one value (see {@link authorityIdOf}). */
  readonly authorityId: string

  private constructor(
    private readonly ca: BindingCertificateAuthority,
    /** Every root proxies trust, PEM: the CA's own roots, then the extra files'. */
    readonly trustBundlePem: string,
    readonly trustBundleRoots: number,
    /** The CA certificate's file. */
    readonly source: string,
    readonly trustDomain: string,
    readonly certTtlMs: number,
    /** True when this start created the data dir's root. */
    readonly created: boolean,
  ) {
    this.authorityId = authorityIdOf(ca.certificatePem, trustBundlePem)
  }

  /**
   * Loads the CA and builds the trust bundle. Throws a MeshControlError (one line naming
   * the file or flag) for anything the operator must fix: half of --ca-cert/--ca-key, an
   * unreadable or mismatched file, key permissions, a bundle that does not trust the CA.
   */
  static load(options: AuthorityOptions): CertificateAuthority {
    const certTtlMs = options.certTtlMs ?? DEFAULT_CERT_TTL_MS
    if (!Number.isFinite(certTtlMs) || certTtlMs < MIN_CERT_TTL_MS || certTtlMs > MAX_CERT_TTL_MS) {
      throw new MeshControlError(
        `--cert-ttl: expected from ${formatDuration(MIN_CERT_TTL_MS)} to ${formatDuration(MAX_CERT_TTL_MS)}, got ${formatDuration(certTtlMs)}`,
      )
    }
    const { caCertFile, caKeyFile, trustDomain } = options
    if ((caCertFile === undefined) !== (caKeyFile === undefined)) {
      throw new MeshControlError('--ca-cert and --ca-key go together: give both, or neither to use the data dir\'s own CA')
    }
    let ca: BindingCertificateAuthority
    let source: string
    try {
      if (caCertFile !== undefined && caKeyFile !== undefined) {
        ca = BindingCertificateAuthority.fromFiles(caCertFile, caKeyFile, trustDomain)
        source = caCertFile
      } else {
        ca = BindingCertificateAuthority.loadOrCreate(options.dataDir, trustDomain)
        source = join(options.dataDir, 'ca', 'ca.crt')
      }
    } catch (err) {
      throw new MeshControlError(`certificate authority: ${messageOf(err)}`)
    }

    const bundle = new BindingTrustBundle(trustDomain)
    if (ca.rootsPem !== '') bundle.addPem(ca.rootsPem, source)
    for (const file of options.trustBundleFiles ?? []) {
      try {
        bundle.addFile(file)
      } catch (err) {
        throw new MeshControlError(`--trust-bundle: ${messageOf(err)}`)
      }
    }
    if (bundle.roots.length === 0) {
      throw new MeshControlError(
        `certificate authority: ${source} holds no root (an intermediate CA): give its root with --trust-bundle FILE`,
      )
    }
    // An expired CA is reported by status() and refuses to sign; the trust check needs a
    // CA that can sign.
    if (ca.validityProblem() === null) {
      try {
        ca.checkTrustedBy(bundle)
      } catch (err) {
        throw new MeshControlError(`certificate authority: ${messageOf(err)}`)
      }
    }
    return new CertificateAuthority(ca, bundle.pem, bundle.roots.length, source, trustDomain, certTtlMs, ca.created)
  }

  /** One line for the start-up log. */
  describe(): string {
    const { subject, notAfter } = this.ca.certificate
    const origin = this.created ? `created a new root in ${this.source}` : `loaded from ${this.source}`
    const roots = `${this.trustBundleRoots} root${this.trustBundleRoots === 1 ? '' : 's'} in the trust bundle`
    return (
      `certificate authority: ${subject} ${origin}, valid until ${new Date(notAfter).toISOString()}; ${roots}; ` +
      `workload certificates live ${formatDuration(this.certTtlMs)}; authority id ${this.authorityId}`
    )
  }

  /** Why the CA cannot sign now, or undefined when it can. */
  problem(): string | undefined {
    return this.ca.validityProblem() ?? undefined
  }

  /** Admin.Status `ca`. */
  status(): CertificateAuthorityStatus {
    const { subject, notBefore, notAfter } = this.ca.certificate
    const problem = this.problem()
    return {
      valid: problem === undefined,
      notBefore: timestampFromDate(new Date(notBefore)),
      notAfter: timestampFromDate(new Date(notAfter)),
      trustDomain: this.trustDomain,
      error: problem ?? '',
      trustBundleRoots: this.trustBundleRoots,
      subject,
      certificateTtl: durationFromMs(this.certTtlMs),
      source: this.source,
      authorityId: this.authorityId,
    }
  }

  /**
   * Signs `csrPem`'s key for `identity` (decided by the caller's join token). A bad CSR
   * is INVALID_ARGUMENT, a CA that cannot sign FAILED_PRECONDITION.
   */
  certify(identity: Identity, csrPem: string): CertifyResponse & { serial: string } {
    let issued: BindingIssuedCertificate
    try {
      issued = this.ca.sign(csrPem, spiffeIdOf(this.trustDomain, identity), Math.ceil(this.certTtlMs / 1000))
    } catch (err) {
      switch (codeOf(err)) {
        case 'IdentityInvalidInput':
        case 'IdentityUntrusted':
          throw rpcError(grpc.status.INVALID_ARGUMENT, `csr_pem: ${messageOf(err).replace(/^CSR: /, '')}`)
        case 'IdentityUnavailable':
          throw rpcError(grpc.status.FAILED_PRECONDITION, `mesh-control cannot sign: ${messageOf(err)}`)
        default:
          throw err
      }
    }
    return {
      certificateChainPem: issued.certificateChainPem,
      trustBundlePem: this.trustBundlePem,
      notBefore: timestampFromDate(new Date(issued.notBefore)),
      notAfter: timestampFromDate(new Date(issued.notAfter)),
      spiffeId: issued.spiffeId,
      authorityId: this.authorityId,
      serial: issued.serial,
    }
  }
}
