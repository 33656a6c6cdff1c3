/**
 * The resource model (apiVersion mesh/v1) after validation: every default applied,
 * enums normalised, so consumers never re-check or re-default. A normalised resource is
 * itself a valid input document (it round-trips through the validator unchanged).
 * Durations stay as written (`2s`); parse them with parseDuration.
 */
import type { Duration } from './duration.js'

export type { Duration }

export const API_VERSION = 'mesh/v1'
export const RESOURCE_KINDS = ['Proxy', 'Service', 'HTTPRoute', 'TCPRoute', 'AuthorizationPolicy'] as const
export type ResourceKind = (typeof RESOURCE_KINDS)[number]

interface ResourceBase<K extends ResourceKind> {
  apiVersion: typeof API_VERSION
  kind: K
  name: string
  /** Default `default`. */
  namespace: string
}

// ---------------------------------------------------------------- Proxy

export const INBOUND_PROTOCOLS = ['auto', 'http1', 'http2', 'grpc', 'tcp'] as const
/** `auto` sniffs HTTP/1 or the HTTP/2 preface and falls back to opaque TCP. */
export type InboundProtocol = (typeof INBOUND_PROTOCOLS)[number]

export const MTLS_MODES = ['strict', 'permissive', 'off'] as const
export type MtlsMode = (typeof MTLS_MODES)[number]

/** Traffic to the local workload. */
export interface InboundPort {
  /** Port the proxy listens on; 0 binds an ephemeral port. */
  port: number
  /** IP the proxy listens on (default 0.0.0.0: all interfaces). */
  address: string
  /** `IP:PORT` of the local workload. */
  forwardTo: string
  /** Default `auto`. */
  protocol: InboundProtocol
  /**
   * Mesh mTLS. `strict`: only mTLS clients whose certificate the trust bundle verifies
   * (every connection is refused while the proxy holds no identity); `permissive`: a TLS
   * ClientHello gets mTLS once the proxy holds an identity, anything else plaintext;
   * `off`: plaintext. Absent: permissive.
   */
  mtls?: MtlsMode
  /**
   * Ingress TLS termination for clients outside the mesh, with a user-given certificate;
   * no client certificate is asked and plaintext is refused. Excludes `mtls` (but off).
   */
  tls?: ServerTls
  /**
   * Local rate limit of the port: HTTP requests over it are answered 429 with
   * Retry-After; opaque TCP connections over it are closed.
   */
  rateLimit?: RateLimit
}

/** A server certificate of the user's: PEM files, read by the proxy. */
export interface ServerTls {
  /** The certificate, followed by its intermediates. */
  certificate: string
  /** Its private key (PKCS#8, PKCS#1 or SEC1). */
  key: string
}

/** An opaque local port whose every connection goes to one Service. */
export interface TcpOutboundPort {
  /** `IP:PORT`; port 0 binds an ephemeral port. */
  listen: string
  /** Name of the Service. */
  service: string
  /** Namespace of the Service (default: the Proxy's). */
  namespace: string
}

/** Traffic from the local workload. */
export interface OutboundSpec {
  /** HTTP listener routed by Host / :authority (also absolute-form and CONNECT); none when absent. */
  listen?: string
  /** Requests for hosts that name no Service go straight to host:port (default true). */
  passthrough: boolean
  tcp: TcpOutboundPort[]
}

export interface AdminSpec {
  /** Default 127.0.0.1:4191. */
  listen: string
}

/** Proxy defaults, shared by the schema and the runtime settings used when no Proxy is given. */
export const PROXY_DEFAULTS = {
  workerThreads: 1,
  drainTimeout: '10s',
  detectTimeout: '1s',
  connectTimeout: '1s',
  poolIdleTimeout: '90s',
  adminListen: '127.0.0.1:4191',
} as const

export interface ProxyResource extends ResourceBase<'Proxy'> {
  inbound: InboundPort[]
  outbound?: OutboundSpec
  admin: AdminSpec
  /** Data-plane worker threads (default 1). */
  workerThreads: number
  /** How long shutdown waits for in-flight requests (default 10s). */
  drainTimeout: Duration
  /** How long `auto` waits for the client's first bytes before treating it as TCP (default 1s, at most 10s). */
  detectTimeout: Duration
  /** Upstream TCP connect timeout (default 1s). */
  connectTimeout: Duration
  /** Idle upstream HTTP/1 connections are closed after this (default 90s). */
  poolIdleTimeout: Duration
}

// ---------------------------------------------------------------- Service

export const SERVICE_PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const
export type ServiceProtocol = (typeof SERVICE_PROTOCOLS)[number]

export const LOAD_BALANCERS = ['ewma', 'round_robin', 'least_request', 'random', 'ring_hash'] as const
export type LoadBalancerType = (typeof LOAD_BALANCERS)[number]

/** `loadBalancer: round_robin` is normalised to `{ type: round_robin }`. */
export interface LoadBalancerSpec {
  type: LoadBalancerType
  /** ring_hash only: hash this request header (lower-case); without it, the client IP. */
  hashHeader?: string
}

export interface Endpoint {
  /** `IP:PORT`. */
  address: string
  /** Relative share of traffic (default 1). */
  weight: number
  labels: Record<string, string>
  /**
   * The SPIFFE id the endpoint's proxy serves mTLS with (mesh-control fills it for
   * registered endpoints). When every endpoint of a Service has one and the proxy holds
   * an identity, traffic to the Service is mTLS and each endpoint must prove its id.
   */
  identity?: string
}

/** Not enforced in this version. Without `path` the check is a TCP connect. */
export interface HealthCheck {
  path?: string
  interval: Duration
  timeout: Duration
  unhealthyThreshold: number
  healthyThreshold: number
}

/**
 * Limits on what this proxy puts on the Service (over a limit: 503 with `x-mesh-error:
 * max-connections | max-pending-requests | max-requests`), and outlier ejection: an
 * endpoint failing `consecutiveFailures` times in a row (5xx, connect failures, resets,
 * timeouts) leaves the balancer for `ejection`, longer each time it is ejected again.
 */
export interface CircuitBreaker {
  /** Upstream connections open to the Service's endpoints at once (default 1024). */
  maxConnections: number
  /** Requests waiting for a connection at the connection limit (default 1024). */
  maxPendingRequests: number
  /** Requests in flight to the Service at once (default 1024). */
  maxRequests: number
  /** Failures in a row that eject an endpoint (default 5). */
  consecutiveFailures: number
  /** Base ejection time, multiplied by the endpoint's recent ejections (default 30s, at most 5m unless longer). */
  ejection: Duration
  /** At most this share of the Service's endpoints is ejected at once (default 50). */
  maxEjectionPercent: number
}

export interface ServiceResource extends ResourceBase<'Service'> {
  /** The port clients address (default 80). */
  port: number
  /** Default `http`. */
  protocol: ServiceProtocol
  endpoints: Endpoint[]
  /** Default `{ type: ewma }`. */
  loadBalancer: LoadBalancerSpec
  healthCheck?: HealthCheck
  circuitBreaker?: CircuitBreaker
}

// ---------------------------------------------------------------- routes

/** A reference to a Service (GAMMA-style parentRef, or a backendRef). */
export interface ServiceRef {
  /** Always `Service` (the only kind routes attach to). */
  kind: 'Service'
  name: string
  /** Default: the referring resource's namespace. */
  namespace: string
  /** When given, must equal the Service's port. */
  port?: number
}

export interface BackendRef extends ServiceRef {
  /** Relative share of the rule's traffic (default 1; 0 sends none). */
  weight: number
}

export const PATH_MATCH_TYPES = ['Exact', 'PathPrefix', 'RegularExpression'] as const
export type PathMatchType = (typeof PATH_MATCH_TYPES)[number]

export interface PathMatch {
  /** Default `PathPrefix`. */
  type: PathMatchType
  value: string
}

export const HEADER_MATCH_TYPES = ['Exact', 'RegularExpression'] as const
export type HeaderMatchType = (typeof HEADER_MATCH_TYPES)[number]

export interface HeaderMatch {
  /** Header name (case-insensitive on the wire). */
  name: string
  value: string
  /** Default `Exact`. */
  type: HeaderMatchType
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const
export type HttpMethod = (typeof HTTP_METHODS)[number]

/** Every condition given must hold. */
export interface HttpRouteMatch {
  path?: PathMatch
  headers: HeaderMatch[]
  /** Upper-case. */
  method?: HttpMethod
}

export interface HttpRouteTimeouts {
  /** The whole request, all attempts included; `0s` disables. */
  request?: Duration
  /** One attempt to one endpoint; `0s` disables. */
  backendRequest?: Duration
}

/**
 * Retries of a rule's failed attempts. Connect failures are always retried (nothing was
 * sent). The listed statuses, resets before a response, `backendRequest` timeouts and,
 * for gRPC, trailers-only responses with grpc-status UNAVAILABLE are retried for
 * idempotent methods (all methods with `nonIdempotent`) whose body fits the replay
 * buffer. Every retry goes to a freshly picked endpoint.
 */
export interface RetryPolicy {
  /** Retries after the first attempt (default 1). */
  attempts: number
  /** Response statuses that are retried (default 502, 503, 504). */
  codes: number[]
  /** Wait before the first retry, doubled per retry up to 1s (or this), with jitter (default 25ms). */
  backoff: Duration
  /** Retries may add at most this percentage of extra load over the window (default 20)... */
  budget: number
  /** ...plus this many retries per second whatever the traffic (default 10). */
  minRetriesPerSecond: number
  /** The window the budget is computed over (default 10s, 1s to 60s). */
  budgetWindow: Duration
  /** Requests with a larger body (or still streaming one when a retry is due) are not retried (default 65536). */
  maxRequestBytes: number
  /** Also retry POST, PATCH and other non-idempotent methods (default false). */
  nonIdempotent: boolean
}

/** Delays a share of the rule's requests by a fixed time before forwarding them. */
export interface FaultDelay {
  /** Default 100. */
  percent: number
  fixed: Duration
}

/**
 * Answers a share of the rule's requests with `status` instead of forwarding them; gRPC
 * requests get a trailers-only response whose grpc-status is the gRPC mapping of `status`.
 */
export interface FaultAbort {
  /** Default 100. */
  percent: number
  status: number
}

/** Both may be given: the delay comes first, the abort draw is independent of it. */
export interface FaultInjection {
  delay?: FaultDelay
  abort?: FaultAbort
}

/** A local token bucket: `burst` requests at once, refilled at `requestsPerSecond`. */
export interface RateLimit {
  requestsPerSecond: number
  /** Default: requestsPerSecond rounded up. */
  burst: number
}

export interface HttpRouteRule {
  /** Any one match selects the rule; empty matches everything. */
  matches: HttpRouteMatch[]
  /** Empty sends traffic to the parent Service itself. */
  backendRefs: BackendRef[]
  timeouts?: HttpRouteTimeouts
  retry?: RetryPolicy
  faults?: FaultInjection
  rateLimit?: RateLimit
}

export interface HTTPRouteResource extends ResourceBase<'HTTPRoute'> {
  parentRefs: ServiceRef[]
  /** Default: one rule that matches everything and goes to the parent. */
  rules: HttpRouteRule[]
}

export interface TcpRouteRule {
  backendRefs: BackendRef[]
}

/** Not enforced in this version. */
export interface TCPRouteResource extends ResourceBase<'TCPRoute'> {
  parentRefs: ServiceRef[]
  rules: TcpRouteRule[]
}

// ---------------------------------------------------------------- policy

export const AUTHORIZATION_ACTIONS = ['allow', 'deny'] as const
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number]

export interface AuthorizationSource {
  /** `spiffe://<trust-domain>/<path>`; a trailing `*` matches any suffix. */
  identity: string
}

export interface AuthorizationOperation {
  /** Exact paths, or with one `*` at the start or end as a wildcard; empty means any. */
  paths: string[]
  /** Empty means any. */
  methods: HttpMethod[]
}

export interface AuthorizationRule {
  /** Empty means any source. */
  from: AuthorizationSource[]
  /** Empty means any operation. */
  to: AuthorizationOperation[]
}

/**
 * Enforced by the proxy of the target Service on every inbound port: a request (or
 * opaque TCP connection) is refused when a rule of a deny policy matches it; otherwise,
 * when the Service has any allow policy, one of their rules must match. A policy
 * without rules matches nothing.
 */
export interface AuthorizationPolicyResource extends ResourceBase<'AuthorizationPolicy'> {
  targetRef: Omit<ServiceRef, 'port'>
  /** Default `allow`. A Service with any allow policy denies the rest. */
  action: AuthorizationAction
  rules: AuthorizationRule[]
}

export type MeshResource =
  | ProxyResource
  | ServiceResource
  | HTTPRouteResource
  | TCPRouteResource
  | AuthorizationPolicyResource

/** `namespace/name`: how the engine and references name a resource. */
export function resourceKey(resource: { namespace: string; name: string }): string {
  return `${resource.namespace}/${resource.name}`
}
