// The resource kinds meshctl names on its command line, and how users spell them.
// The wire always carries the canonical kind (admin.proto: keys compare byte for byte).

import { suggestion } from '../../config/errors.js'
import { UsageError } from '../common.js'

/** The kinds mesh-control stores (Proxy lives in each proxy's own file). */
export const MESHCTL_KINDS = ['Service', 'HTTPRoute', 'TCPRoute', 'AuthorizationPolicy'] as const
export type MeshctlKind = (typeof MESHCTL_KINDS)[number]

/** Lower-case spellings, kubectl style: singular, plural, short name, and the canonical kind itself. */
const SPELLINGS: Readonly<Record<string, MeshctlKind>> = {
  service: 'Service',
  services: 'Service',
  svc: 'Service',
  httproute: 'HTTPRoute',
  httproutes: 'HTTPRoute',
  tcproute: 'TCPRoute',
  tcproutes: 'TCPRoute',
  authorizationpolicy: 'AuthorizationPolicy',
  authorizationpolicies: 'AuthorizationPolicy',
  authz: 'AuthorizationPolicy',
}

/** How meshctl prints a kind in `service/orders created` lines: its singular, lower case. */
export function kindWord(kind: string): string {
  return kind.toLowerCase()
}

/** `all` (every kind, `meshctl get all`) or one kind. */
export type KindSelector = MeshctlKind | 'all'

/**
 * The canonical kind for a user's spelling (case-insensitive), or a UsageError naming
 * the accepted spellings. `allowAll` admits `all` (only `get` lists every kind).
 */
export function parseKind(word: string, { allowAll = false }: { allowAll?: boolean } = {}): KindSelector {
  const lowered = word.toLowerCase()
  if (allowAll && lowered === 'all') return 'all'
  const kind = SPELLINGS[lowered]
  if (kind !== undefined) return kind
  if (lowered === 'proxy' || lowered === 'proxies') {
    throw new UsageError(
      'Proxy resources are not stored by mesh-control (each proxy reads its own from --config); `meshctl check` lists connected proxies',
    )
  }
  const accepted = 'service (svc), httproute, tcproute or authorizationpolicy (authz)'
  throw new UsageError(
    `unknown kind ${JSON.stringify(word)}${suggestion(lowered, Object.keys(SPELLINGS))}; expected ${accepted}${allowAll ? ', or all' : ''}`,
  )
}
