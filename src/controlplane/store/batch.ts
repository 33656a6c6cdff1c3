/**
 * How a batch is checked before it is stored, on top of the shared validator
 * (src/config): the validator has no notion of resources that live elsewhere, so the
 * batch is validated together with the stored resources it can interact with. The batch
 * comes first, so document numbers in its messages are its own positions.
 */
import { ConfigError, resourceKey, validateResources, type MeshResource, type ServiceRef } from '../../config/index.js'
import type { StoredResource, StoredKind } from './types.js'

export interface CheckedBatch {
  resources: StoredResource[]
  warnings: string[]
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `Kind/namespace/name` as a raw document claims it (the validator's own defaulting). */
function claimedId(value: unknown): string | undefined {
  if (!isMapping(value) || typeof value.kind !== 'string' || typeof value.name !== 'string') return undefined
  const namespace = typeof value.namespace === 'string' ? value.namespace : 'default'
  return `${value.kind}/${namespace}/${value.name}`
}

export function storedId(resource: { kind: string; namespace: string; name: string }): string {
  return `${resource.kind}/${resourceKey(resource)}`
}

/** `namespace/name` of every Service a resource points at. */
export function referencedServices(resource: MeshResource): string[] {
  const refs: Pick<ServiceRef, 'name' | 'namespace'>[] = []
  switch (resource.kind) {
    case 'HTTPRoute':
    case 'TCPRoute':
      refs.push(...resource.parentRefs)
      for (const rule of resource.rules) refs.push(...rule.backendRefs)
      break
    case 'AuthorizationPolicy':
      refs.push(resource.targetRef)
      break
    case 'Proxy':
      for (const tcp of resource.outbound?.tcp ?? []) refs.push({ name: tcp.service, namespace: tcp.namespace })
      break
    case 'Service':
      break
  }
  return [...new Set(refs.map(resourceKey))]
}

/** The validator's ` (Kind "name")` label for a valid resource. */
function documentLabel(kind: string, name: string): string {
  return name.length <= 80 ? ` (${kind} ${JSON.stringify(name)})` : ` (${kind})`
}

/** Document number of a validator line under `label`, or Infinity for file-level lines. */
function documentNumber(line: string, label: string): number {
  const match = /^: document (\d+)/.exec(line.slice(label.length))
  return line.startsWith(label) && match ? Number(match[1]) : Infinity
}

/**
 * Validates `batch` against `stored`: every document with the shared validator (Proxy
 * allowed to be absent), references resolved against stored Services plus the batch,
 * and stored routes/policies re-checked when the batch changes a Service they name (a
 * changed port or protocol can break them). Proxy documents are refused. Throws one
 * ConfigError with every problem.
 */
export function checkBatch(batch: readonly unknown[], stored: ReadonlyMap<string, StoredResource>, label: string): CheckedBatch {
  const claimed = new Set(batch.map(claimedId).filter((id): id is string => id !== undefined))
  const changedServices = new Set(
    [...claimed].filter((id) => id.startsWith('Service/')).map((id) => id.slice('Service/'.length)),
  )
  const context: StoredResource[] = []
  for (const [id, resource] of stored) {
    if (claimed.has(id)) continue // replaced by the batch
    if (resource.kind === 'Service' || referencedServices(resource).some((key) => changedServices.has(key))) {
      context.push(resource)
    }
  }

  const lines: { order: number; text: string }[] = []
  let result: CheckedBatch | undefined
  try {
    const { resources, warnings } = validateResources([...batch, ...context], {
      requireProxy: false,
      fileLabel: label,
      activeHealthChecks: true,
    })
    result = {
      resources: resources.slice(0, batch.length) as StoredResource[],
      warnings: warnings.filter((line) => documentNumber(line, label) <= batch.length),
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const text of err.errors) {
      const order = documentNumber(text, label)
      const storedIndex = order - batch.length - 1
      const broken = Number.isFinite(order) && storedIndex >= 0 ? context[storedIndex] : undefined
      if (broken === undefined) {
        lines.push({ order, text })
        continue
      }
      // A stored resource the batch would break: name it by what it is, not its position here.
      let rest = text.slice(`${label}: document ${order}`.length)
      const own = documentLabel(broken.kind, broken.name)
      if (rest.startsWith(own)) rest = rest.slice(own.length)
      lines.push({ order, text: `${label}: would break stored ${broken.kind} "${resourceKey(broken)}"${rest}` })
    }
  }

  batch.forEach((value, index) => {
    if (!isMapping(value) || value.kind !== 'Proxy') return
    const name = typeof value.name === 'string' ? value.name : ''
    lines.push({
      order: index + 1,
      text:
        `${label}: document ${index + 1}${documentLabel('Proxy', name)}: ` +
        'Proxy resources are local to each proxy (its --config file); the control plane does not store them',
    })
  })

  if (lines.length > 0) {
    lines.sort((a, b) => a.order - b.order) // stable: a document's lines keep their order
    throw new ConfigError(lines.map((line) => line.text))
  }
  // JSON form: no `undefined` members, so stored, reloaded and fresh resources compare equal.
  return { resources: JSON.parse(JSON.stringify(result!.resources)) as StoredResource[], warnings: result!.warnings }
}

/** Stored resources that name Service `namespace/name`, as `Kind "namespace/name"`. */
export function referrersOf(serviceKey: string, stored: Iterable<StoredResource>): string[] {
  const referrers: string[] = []
  for (const resource of stored) {
    if (resource.kind !== 'Service' && referencedServices(resource).includes(serviceKey)) {
      referrers.push(`${resource.kind} "${resourceKey(resource)}"`)
    }
  }
  return referrers
}

export function isStoredKind(kind: string): kind is StoredKind {
  return kind === 'Service' || kind === 'HTTPRoute' || kind === 'TCPRoute' || kind === 'AuthorizationPolicy'
}
