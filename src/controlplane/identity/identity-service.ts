/** The Identity gRPC service: workload certificates for join tokens, and the trust bundle. */
import * as grpc from '@grpc/grpc-js'
import type { IdentityHandlers } from '../../control/proto.js'
import { rpcError, toRpcError } from '../errors.js'
import { namespaceOrDefault, requireField, unary } from '../rpc.js'
import { checkIdentity, formatIdentity, type Identity, type JoinTokens } from '../tokens.js'
import type { CertificateAuthority } from './authority.js'

export interface IdentityServiceDeps {
  tokens: JoinTokens
  authority: CertificateAuthority
  log: (line: string) => void
  /** A certificate was issued to `proxyId` (CertifyRequest.proxy_id, may be empty). */
  onIssued?: (identity: Identity, proxyId: string, authorityId: string) => void
}

/** Proxy ids are `<hostname>-<pid>-<random>`; a longer one is not a proxy's, and is only shown. */
const MAX_PROXY_ID_LENGTH = 253

export function identityHandlers({ tokens, authority, log, onIssued }: IdentityServiceDeps): IdentityHandlers {
  return {
    Certify: unary(async (request, call) => {
      const admitted = await tokens.authenticate(call.metadata)
      const identity = {
        service: requireField(request.service, 'service', 63),
        namespace: namespaceOrDefault(request.namespace),
      }
      checkIdentity(admitted, identity)
      if (request.csrPem.trim() === '') throw rpcError(grpc.status.INVALID_ARGUMENT, 'csr_pem: required')
      let issued
      try {
        issued = authority.certify(identity, request.csrPem)
      } catch (err) {
        // A refused CSR is worth a line: it is a proxy bug or someone probing.
        log(`identity: refused a certificate for ${formatIdentity(identity)}: ${toRpcError(err).details}`)
        throw err
      }
      const { serial, ...response } = issued
      const until = new Date(Number(response.notAfter?.seconds ?? 0) * 1000).toISOString()
      const proxyId = request.proxyId.slice(0, MAX_PROXY_ID_LENGTH)
      const to = proxyId === '' ? '' : ` to proxy ${JSON.stringify(proxyId)}`
      log(`identity: issued ${response.spiffeId}${to} (serial ${serial}) until ${until}`)
      onIssued?.(identity, proxyId, authority.authorityId)
      return response
    }),

    GetTrustBundle: unary(async () => ({
      trustDomain: authority.trustDomain,
      trustBundlePem: authority.trustBundlePem,
    })),
  }
}
