// How meshctl prints what mesh-control answers: kubectl-style tables, JSON, and YAML
// that `meshctl apply -f` accepts back. Pure functions of the decoded messages.

import YAML from 'yaml'

import { formatDuration } from '../../config/index.js'
import {
  durationToMs,
  shortAuthorityId,
  timestampToDate,
  type ApplyResponse__Output,
  type CertificateAuthorityStatus__Output,
  type ProxyStatus__Output,
  type Resource__Output,
  type StatusResponse__Output,
  type Timestamp__Output,
} from '../../control/proto.js'
import { kindWord, MESHCTL_KINDS } from './kinds.js'
import type { OutputFormat } from './args.js'

// ---------------------------------------------------------------- generic

/** Left-aligned columns three spaces apart (kubectl's layout); the last column is not padded. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] as number)))
      .join('   ')
      .trimEnd()
  return [headers, ...rows].map((cells) => `${line(cells)}\n`).join('')
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

/** One YAML document per value, separated by `---` (a stream `meshctl apply -f` reads back). */
export function renderYamlDocuments(values: readonly unknown[]): string {
  return values.map((value) => YAML.stringify(value, { lineWidth: 0 })).join('---\n')
}

/** `json` or `yaml` rendering of one value. */
export function renderStructured(format: Exclude<OutputFormat, 'table'>, value: unknown): string {
  return format === 'json' ? renderJson(value) : renderYamlDocuments([value])
}

function isoTime(timestamp: Timestamp__Output | null | undefined): string | null {
  return timestampToDate(timestamp)?.toISOString() ?? null
}

/** `service/orders`, with the namespace when it is not `default`: `service/orders (namespace shop)`. */
export function describeKey(key: { kind: string; namespace: string; name: string }): string {
  const namespace = key.namespace === '' || key.namespace === 'default' ? '' : ` (namespace ${key.namespace})`
  return `${kindWord(key.kind)}/${key.name}${namespace}`
}

// ---------------------------------------------------------------- resources

/** A stored resource as meshctl shows it: the normalised document and its version. */
export interface ShownResource {
  kind: string
  namespace: string
  name: string
  resourceVersion: string
  document: Record<string, unknown>
}

export function decodeResource(resource: Resource__Output): ShownResource {
  let document: unknown
  try {
    document = JSON.parse(resource.json)
  } catch {
    document = undefined
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new Error(`mesh-control sent ${resource.kind} "${resource.namespace}/${resource.name}" with a body that is not a JSON object`)
  }
  return {
    kind: resource.kind,
    namespace: resource.namespace,
    name: resource.name,
    resourceVersion: resource.resourceVersion,
    document: document as Record<string, unknown>,
  }
}

type Doc = Record<string, unknown>

function asList(value: unknown): Doc[] {
  return Array.isArray(value) ? value.filter((v): v is Doc => typeof v === 'object' && v !== null) : []
}

function asDoc(value: unknown): Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Doc) : {}
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value)
}

/** At most `max` items, then `+N more` (kubectl's endpoints column). */
function shortList(items: readonly string[], max = 3, empty = '<none>'): string {
  if (items.length === 0) return empty
  const shown = items.slice(0, max).join(',')
  return items.length > max ? `${shown} +${items.length - max} more` : shown
}

/** A Service reference as seen from `namespace`: `orders`, `shop/orders`, `orders:8080`. */
function refName(ref: Doc, namespace: string): string {
  const ns = text(ref.namespace)
  const base = ns !== '' && ns !== namespace ? `${ns}/${text(ref.name)}` : text(ref.name)
  return ref.port === undefined ? base : `${base}:${text(ref.port)}`
}

interface KindColumns {
  headers: string[]
  row(resource: ShownResource): string[]
}

function routeColumns(): KindColumns {
  return {
    headers: ['PARENTS', 'RULES', 'BACKENDS'],
    row({ document, namespace }) {
      const parents = asList(document.parentRefs).map((ref) => refName(ref, namespace))
      const rules = asList(document.rules)
      const backends = [...new Set(rules.flatMap((rule) => asList(rule.backendRefs).map((ref) => refName(ref, namespace))))]
      // A rule without backendRefs sends traffic to the parent Service itself.
      return [shortList(parents), String(rules.length), shortList(backends, 3, '<parent>')]
    },
  }
}

const COLUMNS: Record<string, KindColumns> = {
  Service: {
    headers: ['PORT', 'PROTOCOL', 'ENDPOINTS', 'LB'],
    row({ document }) {
      const endpoints = asList(document.endpoints).map((endpoint) => text(endpoint.address))
      const balancer = asDoc(document.loadBalancer)
      return [text(document.port), text(document.protocol), shortList(endpoints), text(balancer.type)]
    },
  },
  HTTPRoute: routeColumns(),
  TCPRoute: routeColumns(),
  AuthorizationPolicy: {
    headers: ['TARGET', 'ACTION', 'RULES'],
    row({ document, namespace }) {
      return [refName(asDoc(document.targetRef), namespace), text(document.action), String(asList(document.rules).length)]
    },
  },
}

/**
 * Tables of resources: one per kind present, in the store's kind order. With
 * `qualifyNames` (listing several kinds) names read `service/orders`, as kubectl does.
 */
export function renderResourceTables(resources: readonly ShownResource[], qualifyNames: boolean): string {
  const tables: string[] = []
  const kinds = [...MESHCTL_KINDS, ...new Set(resources.map((r) => r.kind).filter((k) => !(MESHCTL_KINDS as readonly string[]).includes(k)))]
  for (const kind of kinds) {
    const ofKind = resources.filter((r) => r.kind === kind)
    if (ofKind.length === 0) continue
    const columns = COLUMNS[kind] ?? { headers: [], row: () => [] }
    const headers = ['NAMESPACE', 'NAME', ...columns.headers, 'VERSION']
    const rows = ofKind.map((r) => [
      r.namespace,
      qualifyNames ? `${kindWord(kind)}/${r.name}` : r.name,
      ...columns.row(r),
      r.resourceVersion,
    ])
    tables.push(renderTable(headers, rows))
  }
  return tables.join('\n')
}

// ---------------------------------------------------------------- apply

const ACTION_WORDS: Record<string, string> = {
  APPLY_ACTION_CREATED: 'created',
  APPLY_ACTION_CONFIGURED: 'configured',
  APPLY_ACTION_UNCHANGED: 'unchanged',
}

export function actionWord(action: string): string {
  return ACTION_WORDS[action] ?? action.replace(/^APPLY_ACTION_/, '').toLowerCase()
}

/** `service/orders created`, one line per result. */
export function renderApplyLines(response: ApplyResponse__Output): string {
  return response.results
    .map((result) => {
      const key = result.key ?? { kind: '?', namespace: '', name: '?' }
      return `${describeKey(key)} ${actionWord(result.action)}\n`
    })
    .join('')
}

/** The apply response for -o json|yaml, with readable actions. */
export function applyView(response: ApplyResponse__Output): unknown {
  return {
    version: response.version,
    results: response.results.map((result) => ({
      kind: result.key?.kind ?? '',
      namespace: result.key?.namespace ?? '',
      name: result.key?.name ?? '',
      action: actionWord(result.action),
      resourceVersion: result.resourceVersion,
    })),
    warnings: response.warnings,
  }
}

// ---------------------------------------------------------------- check

export interface CheckResult {
  ok: boolean
  /** `control plane reachable`. */
  name: string
  detail: string
  /** Further lines under the check (one per proxy not in sync). */
  notes: string[]
}

function replyWord(state: string): string {
  return state.replace(/^REPLY_STATE_/, '').toLowerCase()
}

/** `default/orders (proxy orders-1): acked version 5, pushed version 7: NACK: <error>`. */
export function describeUnsyncedProxy(proxy: ProxyStatus__Output): string {
  const who = `${proxy.namespace || 'default'}/${proxy.service} (proxy ${proxy.proxyId})`
  const versions = `acked version ${proxy.ackedVersion}, pushed version ${proxy.pushedVersion}`
  switch (proxy.lastReply) {
    case 'REPLY_STATE_NACK':
      return `${who}: ${versions}: NACK: ${proxy.error}`
    case 'REPLY_STATE_PENDING':
      return `${who}: ${versions}: waiting for its reply`
    case 'REPLY_STATE_UNSPECIFIED':
      return `${who}: nothing pushed yet`
    default:
      return `${who}: ${versions}`
  }
}

/**
 * `trust domain mesh.local, valid until 2036-..., 1 root in the trust bundle, certificates
 * live 24h, authority 3fa9c2e1b7d0`; on failure the server's one line. A server that does not report a CA (one
 * older than the certificate authority) is not a failure.
 */
export function certificateAuthorityCheck(ca: CertificateAuthorityStatus__Output | null): CheckResult {
  const name = 'certificate authority'
  if (ca === null) return { ok: true, name, detail: 'not reported by this mesh-control version', notes: [] }
  const domain = ca.trustDomain === '' ? '' : `trust domain ${ca.trustDomain}`
  if (!ca.valid) {
    return { ok: false, name, detail: [domain, ca.error || 'not valid'].filter((p) => p !== '').join(': '), notes: [] }
  }
  const until = isoTime(ca.notAfter)
  const roots = ca.trustBundleRoots
  const ttlMs = durationToMs(ca.certificateTtl)
  const detail = [
    domain,
    until === null ? '' : `valid until ${until}`,
    roots === 0 ? '' : `${roots} root${roots === 1 ? '' : 's'} in the trust bundle`,
    ttlMs === 0 ? '' : `certificates live ${formatDuration(ttlMs)}`,
    ca.authorityId === '' ? '' : `authority ${shortAuthorityId(ca.authorityId)}`,
  ]
    .filter((p) => p !== '')
    .join(', ')
  return { ok: true, name, detail: detail || 'valid', notes: [] }
}

/**
 * Whether every connected proxy holds a certificate of the server's current authority
 * (what a CA or trust bundle rotation waits for before its next step): `3 of 3 under
 * authority 3fa9c2e1b7d0`, or a note per proxy still under another one. Undefined when
 * no proxy is connected, and for a server that reports no authority id.
 */
export function authorityCheck(status: StatusResponse__Output): CheckResult | undefined {
  const current = status.ca?.authorityId ?? ''
  if (current === '') return undefined
  const name = 'proxy certificates'
  const under = `under authority ${shortAuthorityId(current)}`
  const proxies = status.proxies
  if (proxies.length === 0) return undefined
  const behind = proxies.filter((proxy) => proxy.authorityId !== current)
  return {
    ok: behind.length === 0,
    name,
    detail: `${proxies.length - behind.length} of ${proxies.length} ${under}`,
    notes: behind.map((proxy) => {
      const who = `${proxy.namespace || 'default'}/${proxy.service} (proxy ${proxy.proxyId})`
      return proxy.authorityId === '' ? `${who}: no certificate yet` : `${who}: under authority ${shortAuthorityId(proxy.authorityId)}`
    }),
  }
}

/** The checks of `meshctl check`, from a Status answer. */
export function statusChecks(status: StatusResponse__Output, address: string): CheckResult[] {
  const checks: CheckResult[] = []
  checks.push({
    ok: true,
    name: 'control plane reachable',
    detail: `${address} (mesh-control ${status.serverVersion || 'unknown version'}, store version ${status.version})`,
    notes: [],
  })

  const store = status.store
  if (store === null) {
    checks.push({ ok: false, name: 'store writable', detail: 'mesh-control did not report its store', notes: [] })
  } else {
    const where = [store.type, store.location].filter((part) => part !== '').join(' ')
    // The server's error usually names the location already: say it once.
    const failure =
      store.location !== '' && store.error.includes(store.location)
        ? `${store.type} ${store.error}`
        : `${where}: ${store.error || 'not writable'}`
    checks.push({ ok: store.writable, name: 'store writable', detail: store.writable ? where : failure, notes: [] })
  }

  checks.push(certificateAuthorityCheck(status.ca))

  const proxies = status.proxies
  checks.push({ ok: true, name: 'proxies connected', detail: String(proxies.length), notes: [] })
  const unsynced = proxies.filter((proxy) => !proxy.inSync)
  checks.push({
    ok: unsynced.length === 0,
    name: 'proxies in sync',
    detail:
      proxies.length === 0
        ? 'no proxies connected'
        : unsynced.length === 0
          ? `${proxies.length} of ${proxies.length}`
          : `${unsynced.length} of ${proxies.length} not in sync`,
    notes: unsynced.map(describeUnsyncedProxy),
  })
  const authority = authorityCheck(status)
  if (authority !== undefined) checks.push(authority)
  return checks
}

/** `ok    name: detail` / `FAIL  name: detail`, notes indented below. */
export function renderChecks(checks: readonly CheckResult[]): string {
  return checks
    .map((check) => {
      const head = `${(check.ok ? 'ok' : 'FAIL').padEnd(6)}${check.name}: ${check.detail}\n`
      return head + check.notes.map((note) => `        ${note}\n`).join('')
    })
    .join('')
}

/** The Status answer for -o json|yaml: timestamps as ISO 8601, versions as decimal strings. */
export function statusView(status: StatusResponse__Output): unknown {
  return {
    serverVersion: status.serverVersion,
    startedAt: isoTime(status.startedAt),
    version: status.version,
    store: status.store,
    ca:
      status.ca === null
        ? null
        : {
            ...status.ca,
            notBefore: isoTime(status.ca.notBefore),
            notAfter: isoTime(status.ca.notAfter),
            certificateTtl: status.ca.certificateTtl === null ? null : formatDuration(durationToMs(status.ca.certificateTtl)),
          },
    proxies: status.proxies.map((proxy) => ({
      ...proxy,
      lastReply: replyWord(proxy.lastReply),
      connectedAt: isoTime(proxy.connectedAt),
      lastReplyAt: isoTime(proxy.lastReplyAt),
    })),
  }
}
