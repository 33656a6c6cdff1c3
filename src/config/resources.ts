/**
 * The schema of every resource kind, declared once. The walker in schema.ts does the
 * checking, defaulting and error collection; cross-field rules live in `check` hooks,
 * cross-document rules in validate.ts.
 */
import { isIP } from 'node:net'
import { formatHostPort, isLoopbackAddress, isUnspecifiedAddress, parseHostPort } from './address.js'
import { parseDuration } from './duration.js'
import {
  API_VERSION,
  AUTHORIZATION_ACTIONS,
  HEADER_MATCH_TYPES,
  HTTP_METHODS,
  INBOUND_PROTOCOLS,
  LOAD_BALANCERS,
  MTLS_MODES,
  PATH_MATCH_TYPES,
  PROXY_DEFAULTS,
  SERVICE_PROTOCOLS,
  type AdminSpec,
  type AuthorizationOperation,
  type AuthorizationPolicyResource,
  type AuthorizationRule,
  type AuthorizationSource,
  type BackendRef,
  type CircuitBreaker,
  type Endpoint,
  type FaultAbort,
  type FaultDelay,
  type FaultInjection,
  type HeaderMatch,
  type HealthCheck,
  type HTTPRouteResource,
  type HttpRouteMatch,
  type HttpRouteRule,
  type HttpRouteTimeouts,
  type InboundPort,
  type LoadBalancerSpec,
  type MeshResource,
  type OutboundSpec,
  type PathMatch,
  type ProxyResource,
  type RateLimit,
  type ResourceKind,
  type RetryPolicy,
  type ServerTls,
  type ServiceRef,
  type ServiceResource,
  type TCPRouteResource,
  type TcpOutboundPort,
  type TcpRouteRule,
} from './types.js'
import {
  array,
  boolean,
  byShape,
  duration,
  formatPath,
  hostPort,
  integer,
  map,
  notEnforced,
  numberAbove,
  object,
  oneOf,
  optional,
  percent,
  record,
  required,
  string,
  withDefault,
  type FieldPath,
  type ParseContext,
  type Schema,
} from './schema.js'

// ---------------------------------------------------------------- shared field types

const MAX_WEIGHT = 1_000_000

/** Service and Proxy names are DNS labels: they appear in authorities (`orders.default.svc`). */
export const dnsLabel = string({
  pattern: /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/,
  maxLength: 63,
  expected: 'a DNS label (lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters)',
})

/** Route and policy names may also contain dots, as in Kubernetes. */
const dnsSubdomain = string({
  pattern: /^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$/,
  maxLength: 253,
  expected: 'a DNS name (lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters)',
})

/** RFC 9110 token; the engine compares header names in lower case, so they are normalised. */
const headerName = map(
  string({ pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, expected: 'an HTTP header name' }),
  (name) => name.toLowerCase(),
)

const port = integer(1, 65535)
const listenPort = integer(0, 65535)
const weight = integer(0, MAX_WEIGHT)
const positiveDuration = duration({ minMs: 1 })
const listenAddress = hostPort({ allowPortZero: true })
const destinationAddress = hostPort()
const httpMethod = oneOf(HTTP_METHODS, { caseInsensitive: true })
const namespaceField = withDefault(dnsLabel, 'default')
/** References default to the namespace of the resource that holds them. */
const refNamespace = withDefault(dnsLabel, (ctx: ParseContext) => ctx.namespace)

const ipAddress = string({
  expected: 'an IP address',
  // Zone IDs (fe80::1%eth0) are not accepted by the engine's address parser.
  check: (value) => (isIP(value) === 0 || value.includes('%') ? 'expected an IP address' : undefined),
})

const pathPattern = /^\/[^\s?#]*$/
const PATH_EXPECTED = 'a path starting with "/" (no spaces, "?" or "#")'

/**
 * The engine uses Rust's regex crate: no lookaround or backreferences, and a few
 * spellings JavaScript lacks (inline flags `(?i)`, `(?P<name>...)`). Reject the former,
 * bridge the latter, and let JavaScript's parser catch plain syntax errors (unbalanced
 * groups, nothing to repeat) so the message names the field.
 */
function regexProblem(source: string): string | undefined {
  if (/\(\?<?[=!]/.test(source) || /\\[1-9]|\\k</.test(source)) {
    return 'expected a regular expression without lookaround or backreferences'
  }
  const jsSource = source
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsxuU-]+\)/g, '')
    .replace(/\(\?[imsxuU-]+:/g, '(?:')
  try {
    new RegExp(jsSource)
  } catch (err) {
    // "Invalid regular expression: /(a/: Unterminated group" -> "Unterminated group"
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')
    return `expected a valid regular expression (${reason})`
  }
  return undefined
}

function durationMs(value: string | undefined): number {
  return value === undefined ? 0 : parseDuration(value)
}

/** Parent or backend reference to a Service. */
function serviceRefFields() {
  return {
    kind: withDefault(oneOf(['Service'] as const), 'Service' as const),
    name: required(dnsLabel),
    namespace: refNamespace,
    port: optional(port),
  }
}

const serviceRef = object<ServiceRef>(serviceRefFields())

const backendRef = object<BackendRef>({ ...serviceRefFields(), weight: withDefault(weight, 1) })

const backendRefs = array(backendRef, {
  check: (refs, path, ctx) => {
    if (refs.length > 0 && refs.every((ref) => ref.weight === 0)) {
      ctx.error(path, 'expected at least one backend with a weight above 0')
    }
  },
})

/** A token bucket; `burst` defaults to the rate rounded up (at least one request). */
const MAX_RATE = 1_000_000_000
const rateLimitFields = object<{ requestsPerSecond: number; burst?: number }>(
  {
    requestsPerSecond: required(numberAbove(0)),
    burst: optional(integer(1, MAX_RATE)),
  },
  {
    check: (r, path, ctx) => {
      if (r.requestsPerSecond > MAX_RATE) {
        ctx.error([...path, 'requestsPerSecond'], `expected at most ${MAX_RATE}, got the number ${r.requestsPerSecond}`)
      }
    },
  },
)
const rateLimit: Schema<RateLimit> = map(rateLimitFields, (r) => ({
  requestsPerSecond: r.requestsPerSecond,
  burst: r.burst ?? Math.ceil(r.requestsPerSecond),
}))

// ---------------------------------------------------------------- Proxy

/** PEM files are read by the proxy when the config is applied (errors name the file then). */
const serverTls = object<ServerTls>({
  certificate: required(string({ expected: 'a file path' })),
  key: required(string({ expected: 'a file path' })),
})

const inboundPort = object<InboundPort>(
  {
    port: required(listenPort),
    address: withDefault(ipAddress, '0.0.0.0'),
    forwardTo: required(destinationAddress),
    protocol: withDefault(oneOf(INBOUND_PROTOCOLS), 'auto'),
    mtls: optional(oneOf(MTLS_MODES)),
    tls: optional(serverTls),
    rateLimit: optional(rateLimit),
  },
  {
    check: (inbound, path, ctx) => {
      if (inbound.tls !== undefined && inbound.mtls !== undefined && inbound.mtls !== 'off') {
        ctx.error(
          [...path, 'mtls'],
          `a port with tls terminates TLS for clients outside the mesh and cannot also take mesh mTLS; remove mtls or set it to off`,
        )
      }
      // Forwarding to the listener itself would loop; a remote IP on the same port is fine.
      const target = parseHostPort(inbound.forwardTo)
      const reachesListener =
        target.host === inbound.address ||
        (isUnspecifiedAddress(inbound.address) && (isLoopbackAddress(target.host) || isUnspecifiedAddress(target.host)))
      if (target.port === inbound.port && reachesListener) {
        ctx.error([...path, 'forwardTo'], `${inbound.forwardTo} is this listener's own address (a forwarding loop)`)
      }
    },
  },
)

const tcpOutboundPort = object<TcpOutboundPort>({
  listen: required(listenAddress),
  service: required(dnsLabel),
  namespace: refNamespace,
})

const outbound = object<OutboundSpec>({
  listen: optional(listenAddress),
  passthrough: withDefault(boolean(), true),
  tcp: withDefault(array(tcpOutboundPort), []),
})

const admin = object<AdminSpec>({ listen: withDefault(listenAddress, PROXY_DEFAULTS.adminListen) })

interface Listener {
  path: FieldPath
  host: string
  port: number
}

/** Two listeners collide on the same port when their IPs are equal or either is 0.0.0.0 / ::. */
function checkListenerConflicts(proxy: ProxyResource, path: FieldPath, ctx: ParseContext): void {
  const listeners: Listener[] = []
  proxy.inbound.forEach((inbound, i) =>
    listeners.push({ path: [...path, 'inbound', i, 'port'], host: inbound.address, port: inbound.port }),
  )
  if (proxy.outbound?.listen !== undefined) {
    listeners.push({ path: [...path, 'outbound', 'listen'], ...parseHostPort(proxy.outbound.listen, { allowPortZero: true }) })
  }
  proxy.outbound?.tcp.forEach((tcp, i) =>
    listeners.push({ path: [...path, 'outbound', 'tcp', i, 'listen'], ...parseHostPort(tcp.listen, { allowPortZero: true }) }),
  )
  listeners.push({ path: [...path, 'admin', 'listen'], ...parseHostPort(proxy.admin.listen, { allowPortZero: true }) })

  listeners.forEach((listener, i) => {
    if (listener.port === 0) return // ephemeral: the kernel picks distinct ports
    const earlier = listeners
      .slice(0, i)
      .find(
        (other) =>
          other.port === listener.port &&
          (other.host === listener.host || isUnspecifiedAddress(other.host) || isUnspecifiedAddress(listener.host)),
      )
    if (earlier) {
      ctx.error(listener.path, `port ${listener.port} is already used by ${formatPath(earlier.path)}`)
    }
  })
}

const proxyFields = {
  apiVersion: required(oneOf([API_VERSION] as const)),
  kind: required(oneOf(['Proxy'] as const)),
  name: required(dnsLabel),
  namespace: namespaceField,
  inbound: withDefault(array(inboundPort), []),
  outbound: optional(outbound),
  admin: withDefault(admin, { listen: PROXY_DEFAULTS.adminListen }),
  workerThreads: withDefault(integer(1, 1024), PROXY_DEFAULTS.workerThreads),
  drainTimeout: withDefault(duration(), PROXY_DEFAULTS.drainTimeout),
  detectTimeout: withDefault(duration({ minMs: 1, maxMs: 10_000 }), PROXY_DEFAULTS.detectTimeout),
  connectTimeout: withDefault(positiveDuration, PROXY_DEFAULTS.connectTimeout),
  poolIdleTimeout: withDefault(positiveDuration, PROXY_DEFAULTS.poolIdleTimeout),
}

const resourceHints = {
  metadata: 'put name and namespace at the top level of the document',
  spec: 'put the fields at the top level of the document, beside kind and name',
}

const proxy = object<ProxyResource>(proxyFields, {
  hints: resourceHints,
  check: (value, path, ctx) => checkListenerConflicts(value, path, ctx),
})

// ---------------------------------------------------------------- Service

/** The exact SPIFFE id an endpoint's proxy must prove (no wildcard). */
const endpointIdentity = string({
  pattern: /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._~%!$&'()+,;=:@-]+)+$/,
  expected: 'a SPIFFE ID such as "spiffe://mesh.local/ns/default/sa/web"',
})

const endpoint = object<Endpoint>({
  address: required(destinationAddress),
  weight: withDefault(integer(1, MAX_WEIGHT), 1),
  labels: withDefault(record(string({ expected: 'a string' })), {}),
  identity: optional(endpointIdentity),
})

const endpoints = array(endpoint, {
  check: (list, path, ctx) => {
    const seen = new Map<string, number>()
    list.forEach((ep, i) => {
      const { host, port: epPort } = parseHostPort(ep.address)
      const key = formatHostPort(host.toLowerCase(), epPort)
      const first = seen.get(key)
      if (first !== undefined) ctx.error([...path, i, 'address'], `duplicate of endpoints[${first}].address`)
      else seen.set(key, i)
    })
  },
})

const loadBalancerObject = object<LoadBalancerSpec>(
  { type: required(oneOf(LOAD_BALANCERS)), hashHeader: optional(headerName) },
  {
    check: (lb, path, ctx) => {
      if (lb.hashHeader !== undefined && lb.type !== 'ring_hash') {
        ctx.error([...path, 'hashHeader'], `only valid with type ring_hash, not ${lb.type}`)
      }
    },
  },
)

const loadBalancer: Schema<LoadBalancerSpec> = byShape(
  `one of ${LOAD_BALANCERS.join(', ')}, or a mapping such as { type: ring_hash, hashHeader: x-user }`,
  { string: map(oneOf(LOAD_BALANCERS), (type) => ({ type })), mapping: loadBalancerObject },
)

const healthCheck = object<HealthCheck>({
  path: optional(string({ pattern: pathPattern, expected: PATH_EXPECTED })),
  interval: withDefault(positiveDuration, '5s'),
  timeout: withDefault(positiveDuration, '1s'),
  unhealthyThreshold: withDefault(integer(1, 1000), 3),
  healthyThreshold: withDefault(integer(1, 1000), 2),
})

const MAX_LIMIT = 4_294_967_295
const circuitBreaker = object<CircuitBreaker>({
  maxConnections: withDefault(integer(1, MAX_LIMIT), 1024),
  maxPendingRequests: withDefault(integer(1, MAX_LIMIT), 1024),
  maxRequests: withDefault(integer(1, MAX_LIMIT), 1024),
  consecutiveFailures: withDefault(integer(1, 1_000_000), 5),
  ejection: withDefault(positiveDuration, '30s'),
  maxEjectionPercent: withDefault(percent(), 50),
})

const service = object<ServiceResource>(
  {
    apiVersion: required(oneOf([API_VERSION] as const)),
    kind: required(oneOf(['Service'] as const)),
    name: required(dnsLabel),
    namespace: namespaceField,
    port: withDefault(port, 80),
    protocol: withDefault(oneOf(SERVICE_PROTOCOLS), 'http'),
    endpoints: withDefault(endpoints, []),
    loadBalancer: withDefault(loadBalancer, { type: 'ewma' }),
    // Active checks run in mesh-control; a standalone proxy does not run them.
    healthCheck: notEnforced(optional(healthCheck), (_, ctx) => !ctx.activeHealthChecks),
    circuitBreaker: optional(circuitBreaker),
  },
  {
    hints: resourceHints,
    check: (svc, path, ctx) => {
      if (svc.healthCheck?.path !== undefined && svc.protocol === 'tcp') {
        ctx.error([...path, 'healthCheck', 'path'], 'HTTP health checks need an HTTP protocol; a tcp Service is checked by connecting')
      }
    },
  },
)

// ---------------------------------------------------------------- HTTPRoute

const pathMatch = object<PathMatch>(
  {
    type: withDefault(oneOf(PATH_MATCH_TYPES), 'PathPrefix'),
    value: required(string({ expected: 'a path' })),
  },
  {
    check: (match, path, ctx) => {
      const problem =
        match.type === 'RegularExpression'
          ? regexProblem(match.value)
          : pathPattern.test(match.value)
            ? undefined
            : `expected ${PATH_EXPECTED}`
      if (problem !== undefined) ctx.error([...path, 'value'], `${problem}, got ${JSON.stringify(match.value)}`)
    },
  },
)

const headerMatch = object<HeaderMatch>(
  {
    name: required(headerName),
    value: required(string({ expected: 'a string' })),
    type: withDefault(oneOf(HEADER_MATCH_TYPES), 'Exact'),
  },
  {
    check: (match, path, ctx) => {
      const problem = match.type === 'RegularExpression' ? regexProblem(match.value) : undefined
      if (problem !== undefined) ctx.error([...path, 'value'], `${problem}, got ${JSON.stringify(match.value)}`)
    },
  },
)

const httpRouteMatch = object<HttpRouteMatch>({
  path: optional(pathMatch),
  headers: withDefault(array(headerMatch), []),
  method: optional(httpMethod),
})

const timeouts = object<HttpRouteTimeouts>(
  { request: optional(duration()), backendRequest: optional(duration()) },
  {
    check: (t, path, ctx) => {
      const request = durationMs(t.request)
      const backend = durationMs(t.backendRequest)
      if (request > 0 && backend > request) {
        ctx.error([...path, 'backendRequest'], `expected at most timeouts.request (${t.request}), got ${JSON.stringify(t.backendRequest)}`)
      }
    },
  },
)

const statusCode = integer(100, 599)

const retry = object<RetryPolicy>({
  attempts: withDefault(integer(1, 100), 1),
  codes: withDefault(array(statusCode, { minItems: 1 }), [502, 503, 504]),
  backoff: withDefault(duration(), '25ms'),
  budget: withDefault(percent(), 20),
  minRetriesPerSecond: withDefault(integer(0, 1_000_000), 10),
  budgetWindow: withDefault(duration({ minMs: 1_000, maxMs: 60_000 }), '10s'),
  maxRequestBytes: withDefault(integer(0, 64 * 1024 * 1024), 64 * 1024),
  nonIdempotent: withDefault(boolean(), false),
})

const faultDelay = object<FaultDelay>({ percent: withDefault(percent(), 100), fixed: required(positiveDuration) })
const faultAbort = object<FaultAbort>({ percent: withDefault(percent(), 100), status: required(integer(200, 599)) })
const faults = object<FaultInjection>(
  { delay: optional(faultDelay), abort: optional(faultAbort) },
  {
    check: (f, path, ctx) => {
      if (f.delay === undefined && f.abort === undefined) ctx.error(path, 'expected delay, abort or both')
    },
  },
)

const httpRouteRule = object<HttpRouteRule>({
  matches: withDefault(array(httpRouteMatch), []),
  backendRefs: withDefault(backendRefs, []),
  timeouts: optional(timeouts),
  retry: optional(retry),
  faults: optional(faults),
  rateLimit: optional(rateLimit),
})

const httpRoute = object<HTTPRouteResource>(
  {
    apiVersion: required(oneOf([API_VERSION] as const)),
    kind: required(oneOf(['HTTPRoute'] as const)),
    name: required(dnsSubdomain),
    namespace: namespaceField,
    parentRefs: required(array(serviceRef, { minItems: 1 })),
    rules: withDefault(array(httpRouteRule, { minItems: 1 }), [{ matches: [], backendRefs: [] }]),
  },
  { hints: resourceHints },
)

// ---------------------------------------------------------------- TCPRoute

const tcpRouteRule = object<TcpRouteRule>({ backendRefs: required(backendRefs) })

const tcpRoute = object<TCPRouteResource>(
  {
    apiVersion: required(oneOf([API_VERSION] as const)),
    kind: required(oneOf(['TCPRoute'] as const)),
    name: required(dnsSubdomain),
    namespace: namespaceField,
    parentRefs: required(array(serviceRef, { minItems: 1 })),
    rules: required(array(tcpRouteRule, { minItems: 1 })),
  },
  { hints: resourceHints },
)

// ---------------------------------------------------------------- AuthorizationPolicy

const spiffeIdentity = string({
  pattern: /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._~%!$&'()*+,;=:@-]+)*$/,
  expected: 'a SPIFFE ID such as "spiffe://mesh.local/ns/default/sa/web"',
  check: (value) => (value.indexOf('*') >= 0 && value.indexOf('*') !== value.length - 1 ? 'expected "*" only at the end' : undefined),
})

const policyPath = string({
  expected: 'a path starting with "/", with at most one "*" at its start or end',
  check: (value) => {
    const body = value.replace(/^\*|\*$/g, '')
    if (value === '*') return undefined
    if (body.includes('*') || /[\s?#]/.test(body)) return 'expected a path with at most one "*" at its start or end'
    if (!value.startsWith('/') && !value.startsWith('*')) return `expected ${PATH_EXPECTED}`
    return undefined
  },
})

const authorizationRule = object<AuthorizationRule>({
  from: withDefault(array(object<AuthorizationSource>({ identity: required(spiffeIdentity) })), []),
  to: withDefault(
    array(
      object<AuthorizationOperation>({
        paths: withDefault(array(policyPath), []),
        methods: withDefault(array(httpMethod), []),
      }),
    ),
    [],
  ),
})

const { port: _targetPort, ...targetRefFields } = serviceRefFields()

const authorizationPolicy = object<AuthorizationPolicyResource>(
  {
    apiVersion: required(oneOf([API_VERSION] as const)),
    kind: required(oneOf(['AuthorizationPolicy'] as const)),
    name: required(dnsSubdomain),
    namespace: namespaceField,
    targetRef: required(object<Omit<ServiceRef, 'port'>>(targetRefFields)),
    action: withDefault(oneOf(AUTHORIZATION_ACTIONS), 'allow'),
    rules: withDefault(array(authorizationRule), []),
  },
  { hints: resourceHints },
)

/** The schema of each kind. */
export const RESOURCE_SCHEMAS: { readonly [K in ResourceKind]: Schema<Extract<MeshResource, { kind: K }>> } = {
  Proxy: proxy,
  Service: service,
  HTTPRoute: httpRoute,
  TCPRoute: tcpRoute,
  AuthorizationPolicy: authorizationPolicy,
}

/** Kinds that this version validates but does not act on (one warning per resource). */
export const NOT_ENFORCED_KINDS: ReadonlySet<ResourceKind> = new Set<ResourceKind>(['TCPRoute'])
