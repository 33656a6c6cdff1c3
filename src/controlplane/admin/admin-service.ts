/**
 * The Admin gRPC service (meshctl): apply, get, delete, status, token create, over the
 * resource store. Validation failures of applied documents are answered in
 * ApplyResponse.errors, every line in the validator's format with the document numbers
 * of the user's file; store failures map onto status codes as admin.proto says.
 */
import * as grpc from '@grpc/grpc-js'
import { ConfigError, RESOURCE_KINDS } from '../../config/index.js'
import type {
  AdminHandlers,
  ApplyDocument__Output,
  ApplyResponse,
  ApplyResult,
  Resource,
  StatusResponse,
} from '../../control/proto.js'
import { timestampFromDate } from '../../control/proto.js'
import { messageOf, rpcError } from '../errors.js'
import { checkName, namespaceOrDefault, requireField, unary } from '../rpc.js'
import { STORED_KINDS, type ResourceStore, type StoredEntry, type StoredKind } from '../store/index.js'
import type { Identity, IssuedToken } from '../tokens.js'

export interface AdminServiceDeps {
  store: ResourceStore
  /** The current mesh version (advanced synchronously by every committed store change). */
  version: () => string
  status: () => Promise<StatusResponse>
  createToken: (identity: Identity) => Promise<IssuedToken>
}

const ACTIONS = { created: 'APPLY_ACTION_CREATED', configured: 'APPLY_ACTION_CONFIGURED', unchanged: 'APPLY_ACTION_UNCHANGED' } as const

function storedKind(kind: string, field = 'kind'): StoredKind {
  if ((STORED_KINDS as readonly string[]).includes(kind)) return kind as StoredKind
  if (kind === 'Proxy') {
    throw rpcError(
      grpc.status.INVALID_ARGUMENT,
      `${field}: Proxy resources are local to each proxy (its --config file); the control plane does not store them`,
    )
  }
  const known = (RESOURCE_KINDS as readonly string[]).filter((k) => k !== 'Proxy').join(', ')
  throw rpcError(grpc.status.INVALID_ARGUMENT, `${field}: unknown kind ${JSON.stringify(kind)}; expected one of ${known}`)
}

export function resourceOf(entry: StoredEntry): Resource {
  const { resource } = entry
  return {
    kind: resource.kind,
    namespace: resource.namespace,
    name: resource.name,
    resourceVersion: String(entry.revision),
    json: JSON.stringify(resource),
  }
}

/**
 * Renumbers validator lines: the store numbers documents by their position in the
 * batch, the user's file by `ApplyDocument.number` (empty documents skipped).
 */
export function renumber(lines: readonly string[], label: string, documents: readonly ApplyDocument__Output[]): string[] {
  const prefix = `${label}: document `
  return lines.map((line) => {
    if (!line.startsWith(prefix)) return line
    const match = /^(\d+)/.exec(line.slice(prefix.length))
    if (match === null) return line
    const position = Number(match[1])
    const number = documents[position - 1]?.number || position
    return `${prefix}${number}${line.slice(prefix.length + (match[1] as string).length)}`
  })
}

async function apply(deps: AdminServiceDeps, documents: readonly ApplyDocument__Output[], source: string): Promise<ApplyResponse> {
  const label = source === '' ? 'request' : source
  const values: unknown[] = []
  const errors: string[] = []
  documents.forEach((document, index) => {
    try {
      values.push(JSON.parse(document.json))
    } catch (err) {
      errors.push(`${label}: document ${document.number || index + 1}: not valid JSON: ${messageOf(err)}`)
    }
  })
  if (errors.length > 0) return { results: [], errors, warnings: [], version: deps.version() }
  let result
  try {
    result = await deps.store.apply(values, { source: label })
  } catch (err) {
    if (err instanceof ConfigError) {
      return { results: [], errors: renumber(err.errors, label, documents), warnings: [], version: deps.version() }
    }
    throw err
  }
  const results: ApplyResult[] = []
  for (const item of result.results) {
    let resourceVersion = String(result.revision)
    if (item.action === 'unchanged') {
      const [entry] = await deps.store.get(item.kind, item.namespace, item.name)
      if (entry !== undefined) resourceVersion = String(entry.revision)
    }
    results.push({
      key: { kind: item.kind, namespace: item.namespace, name: item.name },
      action: ACTIONS[item.action],
      resourceVersion,
    })
  }
  return { results, errors: [], warnings: renumber(result.warnings, label, documents), version: deps.version() }
}

export function adminHandlers(deps: AdminServiceDeps): AdminHandlers {
  const { store } = deps
  return {
    Apply: unary((request) => apply(deps, request.documents, request.source)),

    Get: unary(async (request) => {
      const kinds = request.kind === '' ? [...STORED_KINDS] : [storedKind(request.kind)]
      if (request.name !== '') {
        if (request.kind === '') throw rpcError(grpc.status.INVALID_ARGUMENT, 'kind: required when a name is given')
        const namespace = namespaceOrDefault(request.namespace)
        const [entry] = await store.get(kinds[0] as StoredKind, namespace, request.name)
        if (entry === undefined) {
          throw rpcError(grpc.status.NOT_FOUND, `${request.kind} "${namespace}/${request.name}" not found`)
        }
        return { resources: [resourceOf(entry)], version: deps.version() }
      }
      const namespace = request.namespace === '' ? undefined : request.namespace
      const resources: Resource[] = []
      for (const kind of kinds) for (const entry of await store.get(kind, namespace)) resources.push(resourceOf(entry))
      return { resources, version: deps.version() }
    }),

    Delete: unary(async (request) => {
      const kind = storedKind(requireField(request.kind, 'kind'))
      const name = requireField(request.name, 'name')
      await store.delete(kind, namespaceOrDefault(request.namespace), name)
      return { version: deps.version() }
    }),

    Status: unary(() => deps.status()),

    CreateToken: unary(async (request) => {
      const service = checkName(request.service, 'service')
      const namespace = checkName(namespaceOrDefault(request.namespace), 'namespace')
      const issued = await deps.createToken({ service, namespace })
      return { token: issued.token, tokenId: issued.tokenId, createdAt: timestampFromDate(issued.createdAt) }
    }),
  }
}
