// What a proxy holds from the control plane, and how one push changes it. Pure: the
// Discovery client keeps the last ACKed state and asks for the candidate a push would
// produce; only an applied (ACKed) candidate replaces the held state, so a NACKed push
// leaves nothing behind and the next delta applies to what the proxy actually runs.

import { ConfigError, type SourceDocument } from '../config/index.js'
import type { Resource__Output, ResourceKey__Output, WatchResponse__Output } from './proto.js'

/** The label pushed resources carry in error lines (`control-plane: document 3 (...)`). */
export const PUSH_LABEL = 'control-plane'

/** Resources by key, in key order (the order they are validated in, so messages are stable). */
export type HeldResources = ReadonlyMap<string, Resource__Output>

export const EMPTY_HELD: HeldResources = new Map()

/** `Kind/namespace/name`, byte for byte as on the wire (the proto forbids aliasing). */
export function keyOf(key: Pick<ResourceKey__Output, 'kind' | 'namespace' | 'name'>): string {
  return `${key.kind}/${key.namespace}/${key.name}`
}

/** `Service "default/orders"`, as error lines name a resource. */
export function describeKey(key: Pick<ResourceKey__Output, 'kind' | 'namespace' | 'name'>): string {
  return `${key.kind} "${key.namespace}/${key.name}"`
}

function sortedMap(entries: Iterable<[string, Resource__Output]>): Map<string, Resource__Output> {
  return new Map([...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/**
 * The state `push` produces from `held`: a full push replaces everything; a delta replaces
 * each listed resource whole and drops the removed keys. Throws a ConfigError (one line
 * per problem, NACK material) for a push that breaks the stream rules.
 */
export function mergePush(held: HeldResources, push: WatchResponse__Output): Map<string, Resource__Output> {
  const errors: string[] = []
  const listed = new Map<string, Resource__Output>()
  for (const resource of push.resources) {
    const key = keyOf(resource)
    if (listed.has(key)) errors.push(`${PUSH_LABEL}: ${describeKey(resource)} is listed twice in push version ${push.version}`)
    listed.set(key, resource)
  }
  if (push.full && push.removed.length > 0) {
    errors.push(`${PUSH_LABEL}: push version ${push.version} is full but also lists ${push.removed.length} removed key(s)`)
  }
  for (const removed of push.removed) {
    if (listed.has(keyOf(removed))) {
      errors.push(`${PUSH_LABEL}: ${describeKey(removed)} is both listed and removed in push version ${push.version}`)
    }
  }
  if (errors.length > 0) throw new ConfigError(errors)

  if (push.full) return sortedMap(listed)
  const next = new Map(held)
  // Removing a key the proxy does not hold is harmless (it converges to the same state).
  for (const removed of push.removed) next.delete(keyOf(removed))
  for (const [key, resource] of listed) next.set(key, resource)
  return sortedMap(next)
}

/**
 * The held resources as validator input: each body parsed, numbered 1..N in key order.
 * The envelope must agree with the body it carries, and a Proxy never travels (it is local
 * to each proxy). Throws a ConfigError listing every problem.
 */
export function decodeResources(held: HeldResources): SourceDocument[] {
  const errors: string[] = []
  const documents: SourceDocument[] = []
  let number = 0
  for (const resource of held.values()) {
    number++
    const where = `${PUSH_LABEL}: document ${number} (${describeKey(resource)})`
    if (resource.kind === 'Proxy') {
      errors.push(`${where}: a push cannot carry a Proxy; each proxy's Proxy resource is local`)
      continue
    }
    let value: unknown
    try {
      value = JSON.parse(resource.json)
    } catch (err) {
      errors.push(`${where}: body is not valid JSON: ${(err as Error).message}`)
      continue
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const body = value as Record<string, unknown>
      const namespace = body.namespace === undefined ? 'default' : body.namespace
      if (body.kind !== resource.kind || body.name !== resource.name || namespace !== resource.namespace) {
        errors.push(
          `${where}: body is ${JSON.stringify(body.kind)} ${JSON.stringify(`${String(namespace)}/${String(body.name)}`)}, not what its envelope says`,
        )
        continue
      }
    }
    // Anything else (not a mapping) is left to the validator, which words it the usual way.
    documents.push({ number, value })
  }
  if (errors.length > 0) throw new ConfigError(errors)
  return documents
}
