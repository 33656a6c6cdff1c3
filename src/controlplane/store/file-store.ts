/**
 * The embedded store of mesh-control: all state in one JSON file under --data-dir,
 * replaced atomically on every change (temp file, fsync, rename, fsync directory).
 *
 * One file rather than one per resource: an apply touches many resources and must be
 * all-or-nothing, which a single rename gives for free (per-resource files would need a
 * journal). Rewriting the whole file costs O(total size) per change, a few milliseconds
 * for thousands of resources; installations beyond that use the etcd store.
 *
 * Reads are served from memory; changes are serialised through one queue, and memory
 * changes only after the new file is durable.
 */
import { constants } from 'node:fs'
import { access, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { ConfigError, resourceKey, validateResources } from '../../config/index.js'
import { removeStaleTempFiles, writeFileAtomic } from './atomic.js'
import { checkBatch, isStoredKind, referrersOf, storedId } from './batch.js'
import { ChangeFeed } from './change-feed.js'
import { DataDirLock } from './lock.js'
import {
  STORED_KINDS,
  StoreError,
  type ApplyOptions,
  type ApplyResult,
  type ChangeEvent,
  type JoinToken,
  type ListResult,
  type ResourceStore,
  type StoredEntry,
  type StoredKind,
  type StoredResource,
  type WatchListener,
} from './types.js'

export const STATE_FILE = 'state.json'
const STATE_FORMAT = 'mesh-control-store/v1'

/** The state file's content. */
interface StateFile {
  format: typeof STATE_FORMAT
  revision: number
  resources: StoredEntry[]
  tokens: JoinToken[]
}

interface State {
  revision: number
  /** By `Kind/namespace/name`. */
  entries: Map<string, StoredEntry>
  /** By hash: one workload may hold several tokens (one per host, or old and new during a rotation). */
  tokens: Map<string, JoinToken>
}

export interface FileStoreOptions {
  /** Changes kept for watchers that resume from an older revision (default 10000). */
  retainedChanges?: number
}

export class FileStore implements ResourceStore {
  private tail: Promise<unknown> = Promise.resolve()
  private closed = false
  private readonly feed: ChangeFeed

  private constructor(
    /** The state file's path. */
    readonly file: string,
    private state: State,
    private readonly lock: DataDirLock,
    options: FileStoreOptions,
  ) {
    this.feed = new ChangeFeed(state.revision, options.retainedChanges)
  }

  /**
   * Opens (creating if needed, mode 0700) `dataDir` and loads its state file. A state
   * file that cannot be read as a valid store is a StoreError `corrupt` naming the file:
   * starting empty instead would silently drop the mesh's configuration.
   * Only one process may open a data dir at a time: a second one gets StoreError
   * `locked` naming the pid that holds it.
   */
  static async open(dataDir: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const file = join(dataDir, STATE_FILE)
    let lock: DataDirLock | { heldBy: number }
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await access(dataDir, constants.W_OK)
      lock = await DataDirLock.acquire(dataDir)
    } catch (err) {
      throw new StoreError('io', `${dataDir}: cannot use as data dir: ${describeIoError(err)}`)
    }
    if (!(lock instanceof DataDirLock)) {
      throw new StoreError('locked', `${dataDir}: data dir in use by another process (pid ${lock.heldBy}); stop it, or use another --data-dir`)
    }
    try {
      await removeStaleTempFiles(file).catch((err: unknown) => {
        throw new StoreError('io', `${dataDir}: cannot use as data dir: ${describeIoError(err)}`)
      })
      let text: string | undefined
      try {
        text = await readFile(file, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new StoreError('io', `${file}: cannot read store state: ${describeIoError(err)}`)
        }
      }
      const state = text === undefined ? emptyState() : parseState(file, text)
      return new FileStore(file, state, lock, options)
    } catch (err) {
      await lock.release()
      throw err
    }
  }

  apply(resources: readonly unknown[], options: ApplyOptions): Promise<ApplyResult> {
    return this.exclusive(async () => {
      const stored = new Map([...this.state.entries].map(([id, entry]) => [id, entry.resource]))
      const { resources: checked, warnings } = checkBatch(resources, stored, options.source)
      const revision = this.state.revision + 1
      const entries = new Map(this.state.entries)
      const events: ChangeEvent[] = []
      const results = checked.map((resource) => {
        const id = storedId(resource)
        const previous = entries.get(id)
        const action = previous === undefined ? 'created' : isDeepStrictEqual(previous.resource, resource) ? 'unchanged' : 'configured'
        if (action !== 'unchanged') {
          entries.set(id, { resource, revision, source: options.source })
          events.push({ type: 'put', resource, revision })
        }
        return { kind: resource.kind, namespace: resource.namespace, name: resource.name, action } as const
      })
      if (events.length === 0) return { revision: this.state.revision, results, warnings }
      await this.commit({ ...this.state, revision, entries }, events)
      return { revision, results, warnings }
    })
  }

  async get(kind: StoredKind, namespace?: string, name?: string): Promise<StoredEntry[]> {
    this.checkOpen()
    return sortedEntries(this.state.entries.values()).filter(
      (entry) =>
        entry.resource.kind === kind &&
        (namespace === undefined || entry.resource.namespace === namespace) &&
        (name === undefined || entry.resource.name === name),
    )
  }

  delete(kind: StoredKind, namespace: string, name: string): Promise<{ revision: number }> {
    return this.exclusive(async () => {
      const key = resourceKey({ namespace, name })
      const id = `${kind}/${key}`
      const existing = isStoredKind(kind) ? this.state.entries.get(id) : undefined
      if (existing === undefined) throw new StoreError('not_found', `${kind} "${key}" not found`)
      if (kind === 'Service') {
        const referrers = referrersOf(key, [...this.state.entries.values()].map((entry) => entry.resource))
        if (referrers.length > 0) {
          throw new StoreError(
            'conflict',
            `cannot delete Service "${key}": still referenced by ${referrers.join(', ')}; delete or change those first`,
          )
        }
      }
      const revision = this.state.revision + 1
      const entries = new Map(this.state.entries)
      entries.delete(id)
      await this.commit({ ...this.state, revision, entries }, [{ type: 'delete', resource: existing.resource, revision }])
      return { revision }
    })
  }

  async list(): Promise<ListResult> {
    this.checkOpen()
    return { revision: this.state.revision, entries: sortedEntries(this.state.entries.values()) }
  }

  watch(fromRevision: number, listener: WatchListener): () => void {
    this.checkOpen()
    return this.feed.watch(fromRevision, listener)
  }

  putToken(token: JoinToken): Promise<void> {
    return this.exclusive(async () => {
      checkToken(token)
      const existing = this.state.tokens.get(token.hash)
      if (existing !== undefined && resourceKey(existing) !== resourceKey(token)) {
        throw new StoreError('conflict', `token for "${resourceKey(token)}": its hash is already used by a token for "${resourceKey(existing)}"`)
      }
      const tokens = new Map(this.state.tokens)
      tokens.set(token.hash, { name: token.name, namespace: token.namespace, hash: token.hash, createdAt: token.createdAt })
      await this.commit({ ...this.state, tokens }, [])
    })
  }

  async findToken(hash: string): Promise<JoinToken | undefined> {
    this.checkOpen()
    const token = this.state.tokens.get(hash)
    return token === undefined ? undefined : { ...token }
  }

  async listTokens(): Promise<JoinToken[]> {
    this.checkOpen()
    return [...this.state.tokens.values()]
      .map((token) => ({ ...token }))
      .sort((a, b) => resourceKey(a).localeCompare(resourceKey(b)) || a.createdAt.localeCompare(b.createdAt))
  }

  deleteToken(hash: string): Promise<boolean> {
    return this.exclusive(async () => {
      if (!this.state.tokens.has(hash)) return false
      const tokens = new Map(this.state.tokens)
      tokens.delete(hash)
      await this.commit({ ...this.state, tokens }, [])
      return true
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.tail
    this.feed.close()
    await this.lock.release()
  }

  /** Runs `task` after every earlier change has finished, so each sees the state the previous one left. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    // Checked when called, not when run: changes queued before close() still complete.
    if (this.closed) return Promise.reject(this.closedError())
    const result = this.tail.then(task)
    this.tail = result.catch(() => undefined)
    return result
  }

  /** Makes `next` durable, then current, then tells watchers (only resource changes carry a revision). */
  private async commit(next: State, events: ChangeEvent[]): Promise<void> {
    const content: StateFile = {
      format: STATE_FORMAT,
      revision: next.revision,
      resources: sortedEntries(next.entries.values()),
      tokens: [...next.tokens.values()],
    }
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(content)}\n`)
    } catch (err) {
      throw new StoreError('io', `${this.file}: cannot write store state: ${describeIoError(err)}`)
    }
    this.state = next
    if (events.length > 0) this.feed.publish({ revision: next.revision, events })
  }

  private checkOpen(): void {
    if (this.closed) throw this.closedError()
  }

  private closedError(): StoreError {
    return new StoreError('closed', `${this.file}: store is closed`)
  }
}

function emptyState(): State {
  return { revision: 0, entries: new Map(), tokens: new Map() }
}

function sortedEntries(entries: Iterable<StoredEntry>): StoredEntry[] {
  const kindOrder = (kind: string): number => STORED_KINDS.indexOf(kind as StoredKind)
  return [...entries].sort(
    (a, b) =>
      kindOrder(a.resource.kind) - kindOrder(b.resource.kind) ||
      a.resource.namespace.localeCompare(b.resource.namespace) ||
      a.resource.name.localeCompare(b.resource.name),
  )
}

function describeIoError(err: unknown): string {
  const error = err as NodeJS.ErrnoException
  return error.code ? `${error.code} (${error.message.replace(/^\w+: /, '')})` : String(error.message ?? err)
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isRevision(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function checkToken(token: JoinToken): void {
  for (const field of ['name', 'namespace', 'hash', 'createdAt'] as const) {
    if (typeof token[field] !== 'string' || token[field].length === 0) {
      throw new StoreError('invalid', `token: ${field} must be a non-empty string`)
    }
  }
  if (Number.isNaN(Date.parse(token.createdAt))) {
    throw new StoreError('invalid', `token "${resourceKey(token)}": createdAt must be an ISO 8601 time, got ${JSON.stringify(token.createdAt)}`)
  }
}

/**
 * Reads a state file, checking it as strictly as an apply would: the resources go
 * through the shared validator again (a hand-edited or foreign file fails here, once,
 * with the first problem, rather than later in a proxy).
 */
function parseState(file: string, text: string): State {
  const corrupt = (why: string): StoreError =>
    new StoreError('corrupt', `${file}: corrupt store state (${why}); restore it from a backup, or move it away to start empty`)
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw corrupt(text.trim() === '' ? 'empty file' : `not valid JSON: ${(err as Error).message}`)
  }
  if (!isMapping(data) || data.format !== STATE_FORMAT) throw corrupt(`expected format "${STATE_FORMAT}"`)
  if (!isRevision(data.revision)) throw corrupt('revision is not a non-negative integer')
  if (!Array.isArray(data.resources) || !Array.isArray(data.tokens)) throw corrupt('resources or tokens is not a list')
  const revision = data.revision

  const raw = data.resources.map((entry: unknown, index) => {
    if (!isMapping(entry) || !isRevision(entry.revision) || entry.revision > revision || typeof entry.source !== 'string') {
      throw corrupt(`resources[${index}] needs resource, a revision up to ${revision}, and source`)
    }
    return entry
  })
  let resources: StoredResource[]
  try {
    resources = validateResources(
      raw.map((entry) => entry.resource),
      { requireProxy: false, fileLabel: 'resources', activeHealthChecks: true },
    ).resources as StoredResource[]
  } catch (err) {
    if (err instanceof ConfigError) throw corrupt(err.message)
    throw err
  }
  const entries = new Map<string, StoredEntry>()
  resources.forEach((resource, index) => {
    if (!isStoredKind(resource.kind)) throw corrupt(`resources[${index}] is a ${resource.kind}, which is never stored`)
    const entry = raw[index] as Record<string, unknown>
    entries.set(storedId(resource), {
      resource: JSON.parse(JSON.stringify(resource)) as StoredResource,
      revision: entry.revision as number,
      source: entry.source as string,
    })
  })

  const tokens = new Map<string, JoinToken>()
  data.tokens.forEach((token: unknown, index) => {
    if (!isMapping(token)) throw corrupt(`tokens[${index}] is not a mapping`)
    try {
      checkToken(token as unknown as JoinToken)
    } catch (err) {
      throw corrupt(`tokens[${index}]: ${(err as Error).message}`)
    }
    const { name, namespace, hash, createdAt } = token as unknown as JoinToken
    if (tokens.has(hash)) throw corrupt(`tokens[${index}] repeats the hash of an earlier token`)
    tokens.set(hash, { name, namespace, hash, createdAt })
  })
  return { revision, entries, tokens }
}
