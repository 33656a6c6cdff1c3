/**
 * Validated resources -> the engine's snapshot input (BindingProxyConfig). Pure: no I/O,
 * no defaults of its own beyond those the resource model already applied, so the same
 * resources always compile to the same config.
 */
import type {
  BindingAuthorizationPolicy,
  BindingFaults,
  BindingHttpMatch,
  BindingHttpRoute,
  BindingHttpRule,
  BindingInbound,
  BindingProxyConfig,
  BindingRateLimit,
  BindingRetry,
  BindingService,
  BindingTcpOutbound,
} from '../../native/index.js'
import { formatHostPort } from '../config/address.js'
import { parseDuration } from '../config/duration.js'
import {
  PROXY_DEFAULTS,
  resourceKey,
  type AuthorizationPolicyResource,
  type FaultInjection,
  type HTTPRouteResource,
  type HttpRouteMatch,
  type HttpRouteRule,
  type MeshResource,
  type ProxyResource,
  type RateLimit,
  type RetryPolicy,
  type ServiceResource,
} from '../config/types.js'

export interface CompileOptions {
  /** Where the resources came from (file path, control plane); echoed in /config. */
  source: string
}

/** The Proxy-level settings the runtime acts on itself (not the engine snapshot). */
export interface ProxySettings {
  name: string
  namespace: string
  /** Data-plane worker threads, fixed when the engine starts. */
  workerThreads: number
  /** How long shutdown waits for in-flight requests. */
  drainTimeoutMs: number
  /** `IP:PORT` of the admin server. */
  adminListen: string
}


function findProxy(resources: readonly MeshResource[]): ProxyResource | undefined {
  return resources.find((r): r is ProxyResource => r.kind === 'Proxy')
}

/**
 * The Proxy resource's runtime settings; defaults when there is none (name `proxy`,
 * namespace `default`).
 */
export function proxySettings(resources: readonly MeshResource[]): ProxySettings {
  const proxy = findProxy(resources)
  if (proxy === undefined) {
    return {
      name: 'proxy',
      namespace: 'default',
      workerThreads: PROXY_DEFAULTS.workerThreads,
      drainTimeoutMs: parseDuration(PROXY_DEFAULTS.drainTimeout),
      adminListen: PROXY_DEFAULTS.adminListen,
    }
  }
  return {
    name: proxy.name,
    namespace: proxy.namespace,
    workerThreads: proxy.workerThreads,
    drainTimeoutMs: parseDuration(proxy.drainTimeout),
    adminListen: proxy.admin.listen,
  }
}

function compileInbound(proxy: ProxyResource): BindingInbound[] {
  return proxy.inbound.map((inbound) => ({
    listen: formatHostPort(inbound.address, inbound.port),
    forwardTo: inbound.forwardTo,
    protocol: inbound.protocol,
    service: `${proxy.namespace}/${proxy.name}`,
    ...(inbound.rateLimit !== undefined ? { rateLimit: compileRateLimit(inbound.rateLimit) } : {}),
    ...(inbound.mtls !== undefined ? { mtls: inbound.mtls } : {}),
    ...(inbound.tls !== undefined ? { tls: { certificateFile: inbound.tls.certificate, keyFile: inbound.tls.key } } : {}),
  }))
}

function compileRateLimit(limit: RateLimit): BindingRateLimit {
  return { requestsPerSecond: limit.requestsPerSecond, burst: limit.burst }
}

function compileTcpOutbound(proxy: ProxyResource): BindingTcpOutbound[] {
  return (proxy.outbound?.tcp ?? []).map((tcp) => ({
    listen: tcp.listen,
    service: `${tcp.namespace}/${tcp.service}`,
  }))
}

function compileService(service: ServiceResource): BindingService {
  const compiled: BindingService = {
    name: service.name,
    namespace: service.namespace,
    port: service.port,
    protocol: service.protocol,
    endpoints: service.endpoints.map((endpoint) => ({
      address: endpoint.address,
      weight: endpoint.weight,
      ...(Object.keys(endpoint.labels).length > 0 ? { labels: { ...endpoint.labels } } : {}),
      ...(endpoint.identity !== undefined ? { identity: endpoint.identity } : {}),
    })),
    loadBalancer: service.loadBalancer.type,
  }
  if (service.loadBalancer.hashHeader !== undefined) compiled.hashHeader = service.loadBalancer.hashHeader.toLowerCase()
  const breaker = service.circuitBreaker
  if (breaker !== undefined) {
    compiled.circuitBreaker = {
      maxConnections: breaker.maxConnections,
      maxPendingRequests: breaker.maxPendingRequests,
      maxRequests: breaker.maxRequests,
      consecutiveFailures: breaker.consecutiveFailures,
      ejectionMs: parseDuration(breaker.ejection),
      maxEjectionPercent: breaker.maxEjectionPercent,
    }
  }
  return compiled
}

function compileMatch(match: HttpRouteMatch): BindingHttpMatch {
  const compiled: BindingHttpMatch = {
    headers: match.headers.map((header) => ({ name: header.name.toLowerCase(), kind: header.type, value: header.value })),
  }
  if (match.path !== undefined) compiled.path = { kind: match.path.type, value: match.path.value }
  if (match.method !== undefined) compiled.method = match.method.toUpperCase()
  return compiled
}

/** `0s` disables a timeout (Gateway API); the engine takes "absent" for that. */
function timeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = parseDuration(value)
  return ms > 0 ? ms : undefined
}

function compileFaults(faults: FaultInjection): BindingFaults {
  const compiled: BindingFaults = {}
  if (faults.delay !== undefined) compiled.delay = { percent: faults.delay.percent, fixedMs: parseDuration(faults.delay.fixed) }
  if (faults.abort !== undefined) compiled.abort = { percent: faults.abort.percent, status: faults.abort.status }
  return compiled
}

function compileRetry(retry: RetryPolicy): BindingRetry {
  return {
    attempts: retry.attempts,
    codes: [...retry.codes],
    backoffMs: parseDuration(retry.backoff),
    budgetPercent: retry.budget,
    minRetriesPerSecond: retry.minRetriesPerSecond,
    budgetWindowMs: parseDuration(retry.budgetWindow),
    maxRequestBytes: retry.maxRequestBytes,
    nonIdempotent: retry.nonIdempotent,
  }
}

function compileRule(rule: HttpRouteRule): BindingHttpRule {
  const compiled: BindingHttpRule = {
    matches: rule.matches.map(compileMatch),
    backends: rule.backendRefs.map((ref) => ({ service: resourceKey(ref), weight: ref.weight })),
  }
  const request = timeoutMs(rule.timeouts?.request)
  const backendRequest = timeoutMs(rule.timeouts?.backendRequest)
  if (request !== undefined) compiled.requestTimeoutMs = request
  if (backendRequest !== undefined) compiled.backendRequestTimeoutMs = backendRequest
  if (rule.faults !== undefined) compiled.faults = compileFaults(rule.faults)
  if (rule.rateLimit !== undefined) compiled.rateLimit = compileRateLimit(rule.rateLimit)
  if (rule.retry !== undefined) compiled.retry = compileRetry(rule.retry)
  return compiled
}

function compileHttpRoute(route: HTTPRouteResource): BindingHttpRoute {
  return {
    name: route.name,
    namespace: route.namespace,
    parents: route.parentRefs.map(resourceKey),
    rules: route.rules.map(compileRule),
  }
}

/**
 * The AuthorizationPolicies this proxy enforces: those targeting its own Service (the
 * Proxy's namespace/name). Policies for other Services are theirs to enforce.
 */
function compileAuthorization(resources: readonly MeshResource[], proxy: ProxyResource): BindingAuthorizationPolicy[] {
  return resources
    .filter(
      (r): r is AuthorizationPolicyResource =>
        r.kind === 'AuthorizationPolicy' && r.targetRef.name === proxy.name && r.targetRef.namespace === proxy.namespace,
    )
    .map((policy) => ({
      name: policy.name,
      namespace: policy.namespace,
      action: policy.action,
      rules: policy.rules.map((rule) => ({
        from: rule.from.map((source) => source.identity),
        to: rule.to.map((operation) => ({ paths: [...operation.paths], methods: operation.methods.map((m) => m.toUpperCase()) })),
      })),
    }))
}

/**
 * Compiles validated resources (from loadResourcesFrom* / validateResources) into the
 * engine's config. Without a Proxy resource there are no listeners and the engine's
 * default timeouts apply. TCPRoutes are not enforced in this version and compile to
 * nothing (the loader has warned about them).
 */
export function compileProxyConfig(resources: readonly MeshResource[], options: CompileOptions): BindingProxyConfig {
  const proxy = findProxy(resources)
  const outboundListen = proxy?.outbound?.listen
  const config: BindingProxyConfig = {
    source: options.source,
    inbound: proxy ? compileInbound(proxy) : [],
    ...(outboundListen !== undefined && proxy?.outbound
      ? { outbound: { listen: outboundListen, passthrough: proxy.outbound.passthrough } }
      : {}),
    tcpOutbound: proxy ? compileTcpOutbound(proxy) : [],
    services: resources.filter((r): r is ServiceResource => r.kind === 'Service').map(compileService),
    httpRoutes: resources.filter((r): r is HTTPRouteResource => r.kind === 'HTTPRoute').map(compileHttpRoute),
    authorization: proxy ? compileAuthorization(resources, proxy) : [],
  }
  if (proxy !== undefined) {
    config.timeouts = {
      detectMs: parseDuration(proxy.detectTimeout),
      connectMs: parseDuration(proxy.connectTimeout),
      poolIdleMs: parseDuration(proxy.poolIdleTimeout),
    }
  }
  return config
}
