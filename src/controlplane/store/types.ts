/**
 * The control plane's resource store contract. Kept small (put a validated batch, read,
 * delete, watch from a revision, join tokens) so an etcd-backed store can implement it
 * with one transaction per call and etcd's own revisions and watches.
 */
import type { MeshResource, ProxyResource, ResourceKind } from '../../config/index.js'

/** Proxy resources live in each proxy's own --config file; the control plane never stores them. */
export type StoredResource = Exclude<MeshResource, ProxyResource>
export type StoredKind = Exclude<ResourceKind, 'Proxy'>
export const STORED_KINDS: readonly StoredKind[] = ['Service', 'HTTPRoute', 'TCPRoute', 'AuthorizationPolicy']

/** A resource as stored: the normalised resource and the revision it was last changed at. */
export interface StoredEntry {
  resource: StoredResource
  /** Store revision of the apply that last created or changed this resource. */
  revision: number
  /** `source` of that apply (e.g. the file meshctl applied), for `meshctl get`. */
  source: string
}

export interface ApplyOptions {
  /** Names the batch in every error and warning line, like a config file path. */
  source: string
}

export type ApplyAction = 'created' | 'configured' | 'unchanged'

export interface ApplyResult {
  /** The store revision after the apply (unchanged when nothing changed). */
  revision: number
  /** One per document, in batch order. */
  results: { kind: StoredKind; namespace: string; name: string; action: ApplyAction }[]
  /** Fields accepted but not enforced in this version, in the validator's line format. */
  warnings: string[]
}

export interface ListResult {
  /** The revision this listing is consistent with: watch from it to follow later changes. */
  revision: number
  entries: StoredEntry[]
}

export interface ChangeEvent {
  type: 'put' | 'delete'
  /** For `delete`, the resource as it was before deletion. */
  resource: StoredResource
  /** The revision of the change (that of its ChangeSet). */
  revision: number
}

/** Everything one apply or delete changed, delivered at once so a push can cover it all. */
export interface ChangeSet {
  revision: number
  events: ChangeEvent[]
}

export type WatchListener = (changes: ChangeSet) => void

/**
 * A join token, stored hashed. The store matches `hash` exactly, so the caller must
 * hash deterministically: tokens are high-entropy random secrets (>= 128 bits), for which
 * SHA-256 is sufficient; a per-token salt or scrypt (meant for low-entropy passwords)
 * would make lookup by hash impossible. The raw token is never given to the store.
 */
export interface JoinToken {
  name: string
  namespace: string
  /** e.g. `sha256:<hex>` of the raw token. */
  hash: string
  /** ISO 8601. */
  createdAt: string
}

export type StoreErrorCode = 'not_found' | 'conflict' | 'compacted' | 'corrupt' | 'io' | 'closed' | 'invalid' | 'locked'

/**
 * A store failure other than an invalid batch (those are ConfigError, from the shared
 * validator). `code` maps onto gRPC status codes; `message` is one line for the user.
 */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message)
    this.name = 'StoreError'
  }
}

export interface ResourceStore {
  /**
   * Validates the whole batch (shared validator; references resolved against the stored
   * resources plus the batch) and stores it in one revision, or throws a ConfigError and
   * changes nothing. Proxy resources are refused.
   */
  apply(resources: readonly unknown[], options: ApplyOptions): Promise<ApplyResult>
  /** Entries of one kind, optionally narrowed to a namespace and a name; sorted by namespace/name. */
  get(kind: StoredKind, namespace?: string, name?: string): Promise<StoredEntry[]>
  /**
   * Deletes one resource in a new revision. A Service still referenced by a stored route
   * or policy is refused (StoreError `conflict`, naming the referrers): the stored set
   * always resolves, so every proxy's view of it compiles. Unknown: `not_found`.
   */
  delete(kind: StoredKind, namespace: string, name: string): Promise<{ revision: number }>
  /** Every stored resource (kind, then namespace/name order) and the revision it reflects. */
  list(): Promise<ListResult>
  /**
   * Calls `listener` with each ChangeSet whose revision is above `fromRevision`, in
   * revision order: first those already retained, then new ones as they happen. Throws
   * StoreError `compacted` when changes after `fromRevision` are no longer retained (list
   * again and watch from its revision). Returns the function that stops delivery.
   */
  watch(fromRevision: number, listener: WatchListener): () => void
  /**
   * Stores a join token. Tokens are keyed by hash: a workload may hold several (one per
   * host, or the old and the new one during a rotation), so issuing one never revokes another.
   */
  putToken(token: JoinToken): Promise<void>
  findToken(hash: string): Promise<JoinToken | undefined>
  listTokens(): Promise<JoinToken[]>
  /** Revokes the token with this hash; false when there was none. */
  deleteToken(hash: string): Promise<boolean>
  /** Waits for pending writes, then refuses further calls and drops watchers. */
  close(): Promise<void>
}
