import { describe, expect, it } from 'vitest'

import type { BindingStats } from '../../native/index.js'
import { escapeLabelValue, ProxyMetrics, renderEngineStats } from '../../src/metrics/index.js'

const BOUNDS = [1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000]

function buckets(counts: Record<number, number>): number[] {
  // One slot per bound plus the +Inf slot at index BOUNDS.length.
  return Array.from({ length: BOUNDS.length + 1 }, (_, i) => counts[i] ?? 0)
}

const stats: BindingStats = {
  latencyBucketsMs: BOUNDS,
  http: [
    {
      direction: 'outbound',
      authority: 'orders.default:80',
      dstService: 'default/orders-v2',
      route: 'orders-canary',
      tls: false,
      clientId: '',
      requests: 7,
      retries: { retried: 3, budgetExhausted: 1, notReplayable: 0, attemptsExhausted: 2 },
      responses: [
        // 2 at <=1ms, 3 at <=5ms (index 4), 1 at <=100ms (index 10): cumulative 2, 5, 6.
        { statusCode: 200, classification: 'success', count: 6, latencyBuckets: buckets({ 0: 2, 4: 3, 10: 1 }), latencySumMs: 87.5 },
        // One past the last bound: only +Inf counts it.
        { statusCode: 504, classification: 'failure', count: 1, latencyBuckets: buckets({ 25: 1 }), latencySumMs: 60001 },
      ],
    },
    {
      direction: 'inbound',
      authority: '0.0.0.0:4143',
      dstService: 'we"ird\\name\nx',
      route: 'default',
      tls: true,
      clientId: '',
      requests: 0,
      retries: { retried: 0, budgetExhausted: 0, notReplayable: 0, attemptsExhausted: 0 },
      responses: [],
    },
    {
      direction: 'inbound',
      authority: '0.0.0.0:4143',
      dstService: 'default/orders',
      route: 'default',
      tls: true,
      clientId: 'spiffe://mesh.local/ns/shop/sa/web',
      requests: 4,
      retries: { retried: 0, budgetExhausted: 0, notReplayable: 0, attemptsExhausted: 0 },
      responses: [],
    },
  ],
  tcp: [
    {
      direction: 'outbound',
      dstService: 'default/postgres',
      targetAddr: '127.0.0.1:5432',
      tls: false,
      clientId: '',
      openTotal: 3,
      openConnections: 1,
      closeTotal: 2,
      readBytes: 1024,
      writeBytes: 2048,
    },
  ],
  circuitBreakers: [
    {
      dstService: 'default/orders',
      connectionsOpen: false,
      pendingRequestsOpen: false,
      requestsOpen: true,
      connectionsOverflow: 0,
      pendingRequestsOverflow: 2,
      requestsOverflow: 5,
      connections: 3,
      requests: 100,
    },
  ],
  endpointHealth: [
    { dstService: 'default/orders', targetAddr: '127.0.0.1:18080', ejected: true, ejectionsTotal: 2 },
    { dstService: 'default/orders', targetAddr: '127.0.0.1:18081', ejected: false, ejectionsTotal: 0 },
  ],
  tlsRefusals: [
    { authority: '0.0.0.0:4143', dstService: 'default/orders', reason: 'plaintext', count: 3 },
    { authority: '0.0.0.0:4143', dstService: 'default/orders', reason: 'handshake', count: 1 },
  ],
  authzDenials: [
    {
      protocol: 'http',
      authority: '0.0.0.0:4143',
      dstService: 'default/orders',
      policy: 'default/no-admin',
      tls: true,
      clientId: 'spiffe://mesh.local/ns/shop/sa/web',
      count: 2,
    },
    { protocol: 'tcp', authority: '0.0.0.0:4143', dstService: 'default/orders', policy: '', tls: false, clientId: '', count: 5 },
  ],
}

const OK_LABELS =
  'direction="outbound",authority="orders.default:80",dst_service="default/orders-v2",route="orders-canary",tls="false",status_code="200",classification="success"'
const TIMEOUT_LABELS =
  'direction="outbound",authority="orders.default:80",dst_service="default/orders-v2",route="orders-canary",tls="false",status_code="504",classification="failure"'

function sampleValue(text: string, series: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line?.slice(series.length + 1)
}

describe('renderEngineStats', () => {
  const text = renderEngineStats(stats)

  it('writes HELP and TYPE once per family, with Linkerd names and types', () => {
    const types = text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.slice('# TYPE '.length))
    expect(types).toEqual([
      'request_total counter',
      'response_total counter',
      'response_latency_ms histogram',
      'retry_total counter',
      'circuit_open gauge',
      'circuit_breaker_overflow_total counter',
      'outlier_ejections_total counter',
      'outlier_ejected gauge',
      'tcp_open_total counter',
      'tcp_open_connections gauge',
      'tcp_close_total counter',
      'tcp_read_bytes_total counter',
      'tcp_write_bytes_total counter',
      'inbound_tls_refused_total counter',
      'inbound_http_authz_deny_total counter',
      'inbound_tcp_authz_deny_total counter',
    ])
    expect(text.split('\n').filter((l) => l.startsWith('# HELP ')).length).toBe(16)
    expect(text.endsWith('\n')).toBe(true)
  })

  it('renders request and response counters with their labels', () => {
    expect(
      sampleValue(
        text,
        'request_total{direction="outbound",authority="orders.default:80",dst_service="default/orders-v2",route="orders-canary",tls="false"}',
      ),
    ).toBe('7')
    expect(sampleValue(text, `response_total{${OK_LABELS}}`)).toBe('6')
    expect(sampleValue(text, `response_total{${TIMEOUT_LABELS}}`)).toBe('1')
  })

  it('turns non-cumulative engine buckets into cumulative le buckets', () => {
    const le = (labels: string, bound: string) => sampleValue(text, `response_latency_ms_bucket{${labels},le="${bound}"}`)
    expect(le(OK_LABELS, '1')).toBe('2')
    expect(le(OK_LABELS, '2')).toBe('2')
    expect(le(OK_LABELS, '4')).toBe('2')
    expect(le(OK_LABELS, '5')).toBe('5')
    expect(le(OK_LABELS, '50')).toBe('5')
    expect(le(OK_LABELS, '100')).toBe('6')
    expect(le(OK_LABELS, '50000')).toBe('6')
    expect(le(OK_LABELS, '+Inf')).toBe('6')
    expect(sampleValue(text, `response_latency_ms_sum{${OK_LABELS}}`)).toBe('87.5')
    expect(sampleValue(text, `response_latency_ms_count{${OK_LABELS}}`)).toBe('6')

    expect(le(TIMEOUT_LABELS, '50000')).toBe('0')
    expect(le(TIMEOUT_LABELS, '+Inf')).toBe('1')
    expect(sampleValue(text, `response_latency_ms_count{${TIMEOUT_LABELS}}`)).toBe('1')

    const okBuckets = text.split('\n').filter((l) => l.startsWith(`response_latency_ms_bucket{${OK_LABELS},`))
    expect(okBuckets.length).toBe(BOUNDS.length + 1)
    // Bounds are spelled like Linkerd's, never 1.0 or 1e3.
    expect(okBuckets.map((l) => /le="([^"]+)"/.exec(l)?.[1])).toEqual([...BOUNDS.map(String), '+Inf'])
  })

  it('renders retry_total by result, with no zero series', () => {
    const labels = 'direction="outbound",authority="orders.default:80",dst_service="default/orders-v2",route="orders-canary",tls="false"'
    expect(sampleValue(text, `retry_total{${labels},result="retried"}`)).toBe('3')
    expect(sampleValue(text, `retry_total{${labels},result="budget_exhausted"}`)).toBe('1')
    expect(sampleValue(text, `retry_total{${labels},result="attempts_exhausted"}`)).toBe('2')
    expect(text).not.toContain('result="not_replayable"')
    expect(text.split('\n').filter((l) => l.startsWith('retry_total{')).length).toBe(3)
  })

  it('renders circuit breakers per limit and outlier ejection per endpoint', () => {
    expect(sampleValue(text, 'circuit_open{dst_service="default/orders",limit="connections"}')).toBe('0')
    expect(sampleValue(text, 'circuit_open{dst_service="default/orders",limit="pending_requests"}')).toBe('0')
    expect(sampleValue(text, 'circuit_open{dst_service="default/orders",limit="requests"}')).toBe('1')
    expect(sampleValue(text, 'circuit_breaker_overflow_total{dst_service="default/orders",limit="requests"}')).toBe('5')
    expect(sampleValue(text, 'circuit_breaker_overflow_total{dst_service="default/orders",limit="pending_requests"}')).toBe('2')
    expect(sampleValue(text, 'outlier_ejections_total{dst_service="default/orders",target_addr="127.0.0.1:18080"}')).toBe('2')
    expect(sampleValue(text, 'outlier_ejected{dst_service="default/orders",target_addr="127.0.0.1:18080"}')).toBe('1')
    expect(sampleValue(text, 'outlier_ejected{dst_service="default/orders",target_addr="127.0.0.1:18081"}')).toBe('0')
  })

  it('escapes label values', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd')
    expect(text).toContain('dst_service="we\\"ird\\\\name\\nx"')
    expect(
      sampleValue(text, 'request_total{direction="inbound",authority="0.0.0.0:4143",dst_service="we\\"ird\\\\name\\nx",route="default",tls="true"}'),
    ).toBe('0')
  })

  it('adds client_id to mTLS series only, and renders TLS refusals', () => {
    expect(
      sampleValue(
        text,
        'request_total{direction="inbound",authority="0.0.0.0:4143",dst_service="default/orders",route="default",tls="true",client_id="spiffe://mesh.local/ns/shop/sa/web"}',
      ),
    ).toBe('4')
    expect(text.split('\n').filter((l) => l.startsWith('request_total') && l.includes('client_id=')).length).toBe(1)
    expect(sampleValue(text, 'inbound_tls_refused_total{authority="0.0.0.0:4143",dst_service="default/orders",reason="plaintext"}')).toBe('3')
    expect(sampleValue(text, 'inbound_tls_refused_total{authority="0.0.0.0:4143",dst_service="default/orders",reason="handshake"}')).toBe('1')
  })

  it('renders authorization denials by protocol, with the policy and the client', () => {
    expect(
      sampleValue(
        text,
        'inbound_http_authz_deny_total{authority="0.0.0.0:4143",dst_service="default/orders",policy="default/no-admin",tls="true",client_id="spiffe://mesh.local/ns/shop/sa/web"}',
      ),
    ).toBe('2')
    expect(sampleValue(text, 'inbound_tcp_authz_deny_total{authority="0.0.0.0:4143",dst_service="default/orders",policy="",tls="false"}')).toBe('5')
  })

  it('renders the TCP families', () => {
    const labels = 'direction="outbound",dst_service="default/postgres",target_addr="127.0.0.1:5432",tls="false"'
    expect(sampleValue(text, `tcp_open_total{${labels}}`)).toBe('3')
    expect(sampleValue(text, `tcp_open_connections{${labels}}`)).toBe('1')
    expect(sampleValue(text, `tcp_close_total{${labels}}`)).toBe('2')
    expect(sampleValue(text, `tcp_read_bytes_total{${labels}}`)).toBe('1024')
    expect(sampleValue(text, `tcp_write_bytes_total{${labels}}`)).toBe('2048')
  })

  it('keeps every line in the text format', () => {
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{([a-z_]+="([^"\\\n]|\\.)*",?)*\} (\d+(\.\d+)?|\+Inf|NaN)$/
    for (const line of text.trimEnd().split('\n')) {
      if (line.startsWith('#')) continue
      expect(line).toMatch(sample)
    }
  })
})

describe('ProxyMetrics', () => {
  it('adds config and process metrics from a registry of its own', async () => {
    let version = 3
    const a = new ProxyMetrics({ configVersion: () => version, engineStats: () => stats })
    const b = new ProxyMetrics({ configVersion: () => 1, engineStats: () => null })
    a.recordReload('failure')
    a.recordReload('failure')
    a.recordReload('success')

    const textA = await a.render()
    expect(sampleValue(textA, 'config_version')).toBe('3')
    expect(sampleValue(textA, 'config_reload_total{result="failure"}')).toBe('2')
    expect(sampleValue(textA, 'config_reload_total{result="success"}')).toBe('1')
    expect(textA).toContain('# TYPE process_cpu_user_seconds_total counter')
    expect(textA).toContain('# TYPE nodejs_heap_size_total_bytes gauge')
    expect(sampleValue(textA, `response_total{${OK_LABELS}}`)).toBe('6')

    version = 4
    expect(sampleValue(await a.render(), 'config_version')).toBe('4')

    // The second proxy's counters are its own; without an engine it has no engine series.
    const textB = await b.render()
    expect(sampleValue(textB, 'config_reload_total{result="failure"}')).toBe('0')
    expect(sampleValue(textB, 'config_version')).toBe('1')
    expect(textB).not.toContain('response_total')
  })
})
