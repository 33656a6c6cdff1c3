// Prometheus text exposition (format 0.0.4) of one engine stats snapshot, with the metric
// names and labels of Linkerd's proxy so its dashboards and queries work unchanged.
// Written directly rather than through prom-client metric objects: the engine already
// aggregates, so a scrape is one walk over the snapshot with no intermediate state.

import type { BindingHttpStats, BindingResponseStats, BindingStats, BindingTcpStats } from '../../native/index.js'

const HTTP_LABELS = ['direction', 'authority', 'dst_service', 'route', 'tls'] as const
const RESPONSE_LABELS = [...HTTP_LABELS, 'status_code', 'classification'] as const
const TCP_LABELS = ['direction', 'dst_service', 'target_addr', 'tls'] as const
const RETRY_LABELS = [...HTTP_LABELS, 'result'] as const
const REFUSAL_LABELS = ['authority', 'dst_service', 'reason'] as const
const AUTHZ_LABELS = ['authority', 'dst_service', 'policy', 'tls'] as const
const BREAKER_LABELS = ['dst_service', 'limit'] as const
const ENDPOINT_LABELS = ['dst_service', 'target_addr'] as const

/** `retry_total`'s `result` label for each retry counter of the engine. */
const RETRY_RESULTS = [
  ['retried', 'retried'],
  ['budgetExhausted', 'budget_exhausted'],
  ['notReplayable', 'not_replayable'],
  ['attemptsExhausted', 'attempts_exhausted'],
] as const

/** Escapes a label value as the text format requires: backslash, double quote, newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'))
}

/** Formats a sample value; the text format spells infinities `+Inf`/`-Inf` and NaN `NaN`. */
export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** Formats a bucket bound the way Linkerd does: `1`, `2`, ..., `50000`, `+Inf`. */
export function formatBucketBound(bound: number): string {
  return bound === Infinity ? '+Inf' : String(bound)
}

/**
 * `client_id` (the peer's SPIFFE id) as Linkerd shows it: only on series of inbound mTLS
 * traffic, so plaintext series keep the label set they always had.
 */
function withClientId(labels: string, clientId: string): string {
  return clientId === '' ? labels : `${labels},client_id="${escapeLabelValue(clientId)}"`
}

function labelSet(names: readonly string[], values: readonly string[]): string {
  let out = ''
  for (let i = 0; i < names.length; i++) {
    out += `${i === 0 ? '' : ','}${names[i]}="${escapeLabelValue(values[i] ?? '')}"`
  }
  return out
}

function httpLabelValues(h: BindingHttpStats): string[] {
  return [h.direction, h.authority, h.dstService, h.route, String(h.tls)]
}

function responseLabelValues(h: BindingHttpStats, r: BindingResponseStats): string[] {
  return [...httpLabelValues(h), String(r.statusCode), r.classification]
}

function tcpLabelValues(t: BindingTcpStats): string[] {
  return [t.direction, t.dstService, t.targetAddr, String(t.tls)]
}

class Family {
  private readonly lines: string[]

  constructor(name: string, type: 'counter' | 'gauge' | 'histogram', help: string) {
    this.lines = [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`]
  }

  sample(name: string, labels: string, value: number): void {
    this.lines.push(`${name}{${labels}} ${formatSampleValue(value)}`)
  }

  text(): string {
    return this.lines.join('\n') + '\n'
  }
}

/**
 * Renders an engine stats snapshot. Every family gets its HELP and TYPE lines even when it
 * has no series yet, so a scraper sees the full set of names from the first scrape.
 */
export function renderEngineStats(stats: BindingStats): string {
  const requests = new Family('request_total', 'counter', 'Total count of HTTP requests.')
  const responses = new Family('response_total', 'counter', 'Total count of HTTP responses.')
  const latency = new Family(
    'response_latency_ms',
    'histogram',
    'Elapsed times between a request\'s headers being received and its response stream completing.',
  )
  const retries = new Family(
    'retry_total',
    'counter',
    'Total count of retries wanted by a retry policy, by result: retried (sent again), budget_exhausted, not_replayable, attempts_exhausted.',
  )
  const circuitOpen = new Family(
    'circuit_open',
    'gauge',
    'Whether a limit of a Service\'s circuit breaker is reached (1) or not (0): connections, pending_requests, requests.',
  )
  const circuitOverflow = new Family(
    'circuit_breaker_overflow_total',
    'counter',
    'Total count of requests refused by a limit of a Service\'s circuit breaker.',
  )
  const ejections = new Family('outlier_ejections_total', 'counter', 'Total count of endpoint ejections by outlier detection.')
  const ejected = new Family('outlier_ejected', 'gauge', 'Whether an endpoint is ejected by outlier detection now (1) or not (0).')
  const tcpOpen = new Family('tcp_open_total', 'counter', 'Total count of opened connections.')
  const tcpOpenNow = new Family('tcp_open_connections', 'gauge', 'Number of currently-open connections.')
  const tcpClose = new Family('tcp_close_total', 'counter', 'Total count of closed connections.')
  const tcpRead = new Family('tcp_read_bytes_total', 'counter', 'Total count of bytes read from peers.')
  const tcpWrite = new Family('tcp_write_bytes_total', 'counter', 'Total count of bytes written to peers.')
  const tlsRefused = new Family(
    'inbound_tls_refused_total',
    'counter',
    'Total count of connections an inbound port closed before serving them, by reason: plaintext (on a port that takes only TLS), no_identity (mtls strict before the proxy holds an identity), handshake (no or untrusted client certificate, failed handshake).',
  )

  const httpDenied = new Family(
    'inbound_http_authz_deny_total',
    'counter',
    'Total count of inbound requests an AuthorizationPolicy refused (403): policy names the deny policy that matched, "" when no allow policy did.',
  )
  const tcpDenied = new Family(
    'inbound_tcp_authz_deny_total',
    'counter',
    'Total count of inbound opaque TCP connections an AuthorizationPolicy refused (closed): policy names the deny policy that matched, "" when no allow policy did.',
  )

  const bounds = stats.latencyBucketsMs.map(formatBucketBound)

  for (const h of stats.http) {
    requests.sample('request_total', withClientId(labelSet(HTTP_LABELS, httpLabelValues(h)), h.clientId), h.requests)
    // Only label sets whose rule retries ever count anything: no zero series for the rest.
    for (const [field, result] of RETRY_RESULTS) {
      const count = h.retries[field]
      if (count > 0) retries.sample('retry_total', withClientId(labelSet(RETRY_LABELS, [...httpLabelValues(h), result]), h.clientId), count)
    }
    for (const r of h.responses) {
      const labels = withClientId(labelSet(RESPONSE_LABELS, responseLabelValues(h, r)), h.clientId)
      responses.sample('response_total', labels, r.count)

      // The engine keeps non-cumulative buckets (one per bound, then +Inf); Prometheus
      // wants each `le` bucket to count everything at or below it.
      let cumulative = 0
      for (let i = 0; i < bounds.length; i++) {
        cumulative += r.latencyBuckets[i] ?? 0
        latency.sample('response_latency_ms_bucket', `${labels},le="${bounds[i]}"`, cumulative)
      }
      // Anything past the last finite bound (normally exactly one +Inf bucket).
      for (let i = bounds.length; i < r.latencyBuckets.length; i++) cumulative += r.latencyBuckets[i] ?? 0
      latency.sample('response_latency_ms_bucket', `${labels},le="+Inf"`, cumulative)
      latency.sample('response_latency_ms_sum', labels, r.latencySumMs)
      latency.sample('response_latency_ms_count', labels, cumulative)
    }
  }

  for (const b of stats.circuitBreakers) {
    const limits = [
      ['connections', b.connectionsOpen, b.connectionsOverflow],
      ['pending_requests', b.pendingRequestsOpen, b.pendingRequestsOverflow],
      ['requests', b.requestsOpen, b.requestsOverflow],
    ] as const
    for (const [limit, open, overflow] of limits) {
      const labels = labelSet(BREAKER_LABELS, [b.dstService, limit])
      circuitOpen.sample('circuit_open', labels, open ? 1 : 0)
      circuitOverflow.sample('circuit_breaker_overflow_total', labels, overflow)
    }
  }
  for (const h of stats.endpointHealth) {
    const labels = labelSet(ENDPOINT_LABELS, [h.dstService, h.targetAddr])
    ejections.sample('outlier_ejections_total', labels, h.ejectionsTotal)
    ejected.sample('outlier_ejected', labels, h.ejected ? 1 : 0)
  }

  for (const t of stats.tcp) {
    const labels = withClientId(labelSet(TCP_LABELS, tcpLabelValues(t)), t.clientId)
    tcpOpen.sample('tcp_open_total', labels, t.openTotal)
    tcpOpenNow.sample('tcp_open_connections', labels, t.openConnections)
    tcpClose.sample('tcp_close_total', labels, t.closeTotal)
    tcpRead.sample('tcp_read_bytes_total', labels, t.readBytes)
    tcpWrite.sample('tcp_write_bytes_total', labels, t.writeBytes)
  }

  for (const r of stats.tlsRefusals) {
    tlsRefused.sample('inbound_tls_refused_total', labelSet(REFUSAL_LABELS, [r.authority, r.dstService, r.reason]), r.count)
  }

  for (const d of stats.authzDenials) {
    const labels = withClientId(labelSet(AUTHZ_LABELS, [d.authority, d.dstService, d.policy, String(d.tls)]), d.clientId)
    if (d.protocol === 'http') httpDenied.sample('inbound_http_authz_deny_total', labels, d.count)
    else tcpDenied.sample('inbound_tcp_authz_deny_total', labels, d.count)
  }

  return [
    requests,
    responses,
    latency,
    retries,
    circuitOpen,
    circuitOverflow,
    ejections,
    ejected,
    tcpOpen,
    tcpOpenNow,
    tcpClose,
    tcpRead,
    tcpWrite,
    tlsRefused,
    httpDenied,
    tcpDenied,
  ]
    .map((f) => f.text())
    .join('')
}
