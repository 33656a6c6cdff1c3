/**
 * Whole-configuration validation: each document against its kind's schema, then the
 * rules that span documents (one Proxy, unique names, references that resolve).
 * Every problem is collected; one bad document rejects the whole set.
 */
import { ConfigError, closestMatch, describeValue } from './errors.js'
import { NOT_ENFORCED_KINDS, RESOURCE_SCHEMAS } from './resources.js'
import { formatPath, INVALID, isMapping, NOT_ENFORCED, oneOf, ParseContext, type FieldPath } from './schema.js'
import {
  API_VERSION,
  RESOURCE_KINDS,
  resourceKey,
  type MeshResource,
  type ResourceKind,
  type ServiceRef,
  type ServiceResource,
} from './types.js'

export interface ValidateOptions {
  /**
   * Standalone mode (the default) needs exactly one Proxy; set false where the Proxy may
   * come from elsewhere (connected mode, `meshctl apply`). More than one is always an error.
   */
  requireProxy?: boolean
  /**
   * Check that routes, policies and tcp ports name Services within the same set (default
   * true). Turn off when the referenced Services live elsewhere (a control-plane store).
   */
  checkReferences?: boolean
  /**
   * The Services' `healthCheck` is enforced: true in mesh-control, which runs the active
   * checks, and in proxies it configures. Default false (standalone: warned as not enforced).
   */
  activeHealthChecks?: boolean
}

export interface ValidateInput extends ValidateOptions {
  /** Names the input in every message: the config file path as the user gave it. */
  fileLabel?: string
}

/** A validated configuration. */
export interface LoadResult {
  /** Normalised resources in document order. */
  resources: MeshResource[]
  /** One line per field accepted but not enforced in this version, in the error format. */
  warnings: string[]
}

/** A raw document and its 1-based position in the file (empty documents still count). */
export interface SourceDocument {
  number: number
  value: unknown
}

const kindSchema = oneOf(RESOURCE_KINDS)
const apiVersionSchema = oneOf([API_VERSION] as const)

interface Located {
  resource: MeshResource
  document: SourceDocument
}

interface Message {
  /** Document number, or Infinity for file-level messages (sorted last). */
  order: number
  text: string
}

class Reporter {
  readonly errors: Message[] = []
  readonly warnings: Message[] = []

  constructor(private readonly fileLabel: string) {}

  /** `mesh.yaml: document 2 (Service "orders"): endpoints[0].address: message`. */
  format(document: SourceDocument, path: FieldPath, message: string): string {
    const where = path.length > 0 ? `${formatPath(path)}: ` : ''
    return `${this.fileLabel}: document ${document.number}${documentLabel(document.value)}: ${where}${message}`
  }

  error(document: SourceDocument, path: FieldPath, message: string): void {
    this.errors.push({ order: document.number, text: this.format(document, path, message) })
  }

  warn(document: SourceDocument, path: FieldPath, message: string): void {
    this.warnings.push({ order: document.number, text: this.format(document, path, message) })
  }

  fileError(message: string): void {
    this.errors.push({ order: Infinity, text: `${this.fileLabel}: ${message}` })
  }
}

function sorted(messages: Message[]): string[] {
  // Array.prototype.sort is stable, so messages of one document keep their field order.
  return [...messages].sort((a, b) => a.order - b.order).map((m) => m.text)
}

/** ` (Service "orders")` from whatever the document says about itself, valid or not. */
function documentLabel(value: unknown): string {
  if (!isMapping(value)) return ''
  const kind = typeof value.kind === 'string' && value.kind.length <= 40 ? value.kind : undefined
  const name = typeof value.name === 'string' && value.name.length <= 80 ? JSON.stringify(value.name) : undefined
  if (kind !== undefined && name !== undefined) return ` (${kind} ${name})`
  if (kind !== undefined) return ` (${kind})`
  if (name !== undefined) return ` (${name})`
  return ''
}

function parseDocument(document: SourceDocument, report: Reporter, options: ValidateOptions): MeshResource | undefined {
  const raw = document.value
  if (!isMapping(raw)) {
    report.error(document, [], `expected a resource (a mapping with apiVersion, kind and name), got ${describeValue(raw)}`)
    return undefined
  }
  const ctx = new ParseContext()
  ctx.activeHealthChecks = options.activeHealthChecks ?? false
  ctx.namespace = typeof raw.namespace === 'string' ? raw.namespace : 'default'
  const missing = (value: unknown): boolean => value === undefined || value === null
  let kind: ResourceKind | typeof INVALID = INVALID
  if (missing(raw.kind)) ctx.error(['kind'], `required field is missing (expected ${kindSchema.expected})`)
  else kind = kindSchema.parse(raw.kind, ['kind'], ctx)
  let resource: MeshResource | undefined
  if (kind === INVALID) {
    // The kind's own schema checks apiVersion; without a kind, check it here.
    if (missing(raw.apiVersion)) ctx.error(['apiVersion'], `required field is missing (expected ${apiVersionSchema.expected})`)
    else apiVersionSchema.parse(raw.apiVersion, ['apiVersion'], ctx)
  } else {
    const parsed = RESOURCE_SCHEMAS[kind].parse(raw, [], ctx)
    if (parsed !== INVALID) resource = parsed
  }
  for (const issue of ctx.errors) report.error(document, issue.path, issue.message)
  if (resource !== undefined) {
    for (const issue of ctx.warnings) report.warn(document, issue.path, issue.message)
    if (NOT_ENFORCED_KINDS.has(resource.kind)) report.warn(document, [], NOT_ENFORCED)
  }
  return resource
}

/** The kind and `namespace/name` a document claims, valid or not (for duplicates and follow-on errors). */
function claimedIdentity(value: unknown): { kind: string; key?: string } | undefined {
  if (!isMapping(value) || typeof value.kind !== 'string') return undefined
  if (typeof value.name !== 'string') return { kind: value.kind }
  const namespace = typeof value.namespace === 'string' ? value.namespace : 'default'
  return { kind: value.kind, key: `${namespace}/${value.name}` }
}

/** Rules across documents. `documents` includes invalid ones: what they claim suppresses follow-on errors. */
function checkAcrossDocuments(
  documents: readonly SourceDocument[],
  located: Located[],
  options: ValidateOptions,
  report: Reporter,
): void {
  const claimedBy = new Map<string, SourceDocument>()
  const claimedKinds = new Set<string>()
  for (const document of documents) {
    const identity = claimedIdentity(document.value)
    if (identity === undefined) continue
    claimedKinds.add(identity.kind)
    if (identity.key === undefined) continue
    const id = `${identity.kind}/${identity.key}`
    const earlier = claimedBy.get(id)
    if (earlier === undefined) claimedBy.set(id, document)
    else report.error(document, ['name'], `${identity.kind} "${identity.key}" is already defined in document ${earlier.number}`)
  }

  const services = new Map<string, ServiceResource>()
  let proxy: Located | undefined
  for (const entry of located) {
    const { resource, document } = entry
    if (resource.kind === 'Service' && claimedBy.get(`Service/${resourceKey(resource)}`) === document) {
      services.set(resourceKey(resource), resource)
    }
    if (resource.kind === 'Proxy') {
      if (proxy) report.error(document, [], `only one Proxy is allowed, document ${proxy.document.number} already defines one`)
      else proxy = entry
    }
  }
  const claimed = (id: string): boolean => claimedBy.has(id)
  const proxyClaimed = claimedKinds.has('Proxy')
  if ((options.requireProxy ?? true) && !proxyClaimed) {
    report.fileError('no Proxy resource (standalone mode needs exactly one, with the ports this proxy listens on)')
  }
  if (options.checkReferences === false) return

  type Ref = Pick<ServiceRef, 'name' | 'namespace' | 'port'>
  const checkRef = (document: SourceDocument, path: FieldPath, ref: Ref, httpOnly: boolean): void => {
    const key = `${ref.namespace}/${ref.name}`
    const target = services.get(key)
    if (target === undefined) {
      if (claimed(`Service/${key}`)) return // that document has its own errors
      const known = [...services.values()]
      const elsewhere = known.filter((s) => s.name === ref.name).map((s) => s.namespace)
      const guess = closestMatch(ref.name, known.filter((s) => s.namespace === ref.namespace).map((s) => s.name))
      const hint =
        elsewhere.length > 0
          ? ` (there is one in namespace ${elsewhere.map((ns) => `"${ns}"`).join(', ')})`
          : guess === undefined
            ? ''
            : ` (did you mean "${guess}"?)`
      report.error(document, path, `unknown Service "${key}"${hint}`)
      return
    }
    if (ref.port !== undefined && ref.port !== target.port) {
      report.error(document, [...path.slice(0, -1), 'port'], `Service "${key}" has port ${target.port}, got ${ref.port}`)
    }
    if (httpOnly && target.protocol === 'tcp') {
      report.error(document, path, `Service "${key}" has protocol tcp; an HTTPRoute needs an http, http2 or grpc Service`)
    }
  }

  for (const { resource, document } of located) {
    switch (resource.kind) {
      case 'Proxy':
        resource.outbound?.tcp.forEach((tcp, i) => {
          const ref = { name: tcp.service, namespace: tcp.namespace }
          checkRef(document, ['outbound', 'tcp', i, 'service'], ref, false)
        })
        break
      case 'HTTPRoute':
      case 'TCPRoute': {
        const httpOnly = resource.kind === 'HTTPRoute'
        resource.parentRefs.forEach((ref, i) => checkRef(document, ['parentRefs', i, 'name'], ref, httpOnly))
        resource.rules.forEach((rule, r) =>
          rule.backendRefs.forEach((ref, b) => checkRef(document, ['rules', r, 'backendRefs', b, 'name'], ref, httpOnly)),
        )
        break
      }
      case 'AuthorizationPolicy': {
        checkRef(document, ['targetRef', 'name'], resource.targetRef, false)
        const own = proxy?.resource
        const target = `${resource.targetRef.namespace}/${resource.targetRef.name}`
        if (own !== undefined && target !== resourceKey(own)) {
          report.warn(
            document,
            ['targetRef', 'name'],
            `Service "${target}" is not this proxy's workload ("${resourceKey(own)}"); only the proxy of "${target}" enforces this policy`,
          )
        }
        break
      }
      case 'Service':
        break
    }
  }
}

/**
 * Validates raw documents (numbered by position) and returns the normalised resources
 * and warnings, or throws a ConfigError carrying every problem.
 */
export function validateDocuments(documents: readonly SourceDocument[], input: ValidateInput = {}): LoadResult {
  const report = new Reporter(input.fileLabel ?? 'config')
  const located: Located[] = []
  for (const document of documents) {
    const resource = parseDocument(document, report, input)
    if (resource !== undefined) located.push({ resource, document })
  }
  checkAcrossDocuments(documents, located, input, report)
  if (report.errors.length > 0) throw new ConfigError(sorted(report.errors))
  return { resources: located.map((entry) => entry.resource), warnings: sorted(report.warnings) }
}

/**
 * Validates resources given as plain objects (already parsed, e.g. passed to the
 * embedding API); document numbers are positions in the array, starting at 1.
 */
export function validateResources(objects: readonly unknown[], input: ValidateInput = {}): LoadResult {
  return validateDocuments(
    objects.map((value, index) => ({ number: index + 1, value })),
    input,
  )
}
