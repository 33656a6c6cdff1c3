/**
 * Join tokens: `mesh_` + 32 random bytes in base64url. The store keeps only
 * `sha256:<hex>` of the whole token string (tokens are high-entropy secrets, so a fast
 * hash is enough and lookup by hash stays possible); the token id is the first 12 hex
 * characters of that hash, safe to show and log.
 */
import { createHash, randomBytes } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { tokenFromMetadata } from '../control/proto.js'
import { rpcError } from './errors.js'
import type { ResourceStore } from './store/index.js'

export const TOKEN_PREFIX = 'mesh_'

/** The workload identity a token admits. */
export interface Identity {
  namespace: string
  service: string
}

export interface IssuedToken {
  token: string
  tokenId: string
  createdAt: Date
}

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`
}

export function tokenIdOf(hash: string): string {
  return hash.slice('sha256:'.length, 'sha256:'.length + 12)
}

export function formatIdentity(identity: Identity): string {
  return `${identity.namespace}/${identity.service}`
}

export class JoinTokens {
  constructor(private readonly store: ResourceStore) {}

  /** Issues a token for `identity` and stores its hash (earlier tokens of the identity stay valid). */
  async issue(identity: Identity): Promise<IssuedToken> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
    const hash = hashToken(token)
    const createdAt = new Date()
    await this.store.putToken({ name: identity.service, namespace: identity.namespace, hash, createdAt: createdAt.toISOString() })
    return { token, tokenId: tokenIdOf(hash), createdAt }
  }

  /**
   * The identity admitted by the call's bearer token. Throws an RpcError UNAUTHENTICATED
   * when the token is missing or unknown (the message never echoes the token).
   */
  async authenticate(metadata: grpc.Metadata): Promise<Identity> {
    const token = tokenFromMetadata(metadata)
    if (token === undefined) {
      throw rpcError(grpc.status.UNAUTHENTICATED, 'missing join token: send "authorization: Bearer <token>" metadata')
    }
    const found = token.startsWith(TOKEN_PREFIX) ? await this.store.findToken(hashToken(token)) : undefined
    if (found === undefined) {
      throw rpcError(grpc.status.UNAUTHENTICATED, 'unknown join token (revoked, or issued by another control plane)')
    }
    return { namespace: found.namespace, service: found.name }
  }
}

/** PERMISSION_DENIED unless `claimed` is the identity the token admits. */
export function checkIdentity(admitted: Identity, claimed: Identity): void {
  if (admitted.namespace !== claimed.namespace || admitted.service !== claimed.service) {
    throw rpcError(
      grpc.status.PERMISSION_DENIED,
      `join token admits ${formatIdentity(admitted)}, not ${formatIdentity(claimed)}`,
    )
  }
}
