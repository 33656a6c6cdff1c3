// Original file: proto/mesh/v1/discovery.proto

import type { WorkloadEndpoint as _mesh_v1_WorkloadEndpoint, WorkloadEndpoint__Output as _mesh_v1_WorkloadEndpoint__Output } from '../../mesh/v1/WorkloadEndpoint';
import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from '../../mesh/v1/ResourceKey';
import type { Long } from '@grpc/proto-loader';

/**
 * Who the proxy is and what it wants. Read once per stream: a proxy whose identity or
 * wants change opens a new stream.
 */
export interface Hello {
  /**
   * The workload's service (`mesh-proxy --name`) and namespace ("default" when
   * empty). Must match the join token.
   */
  'service'?: (string);
  'namespace'?: (string);
  /**
   * Unique per proxy process, stable for its lifetime and across its reconnects (for
   * example `<hostname>-<pid>-<random>`). Status rows and registry leases are keyed by
   * it, so a reconnecting proxy replaces its own row instead of adding one.
   */
  'proxyId'?: (string);
  /**
   * The inbound endpoints this proxy serves and will register through Registry.
   * Informational here (shown by Admin.Status and used to pre-compute the scope); the
   * lease held through Registry is what makes them receive traffic, because the
   * endpoints must outlive a broken stream.
   */
  'endpoints'?: (_mesh_v1_WorkloadEndpoint)[];
  /**
   * mesh-proxy's package version (`mesh-proxy --version`), for Status and for the
   * server to refuse or adapt to proxies too old for the resources it would push.
   */
  'buildVersion'?: (string);
  /**
   * Services this proxy's traffic needs, beyond what the server derives. Empty means
   * "whatever my traffic can reach", which the server resolves as follows:
   * * every Service (AuthorizationPolicies are enforced by the called workload's
   * proxy, so they do not narrow what a caller receives);
   * * every HTTPRoute / TCPRoute whose parentRef is one of those Services;
   * * every Service those routes' backendRefs name, transitively;
   * * the proxy's own Service and the AuthorizationPolicies that target it.
   * When not empty, the first item is replaced by the listed Services (kind
   * "Service"; empty namespace means the proxy's namespace), and the rest still
   * applies, so routes always arrive together with their backends.
   */
  'wants'?: (_mesh_v1_ResourceKey)[];
  /**
   * The version of the last push this proxy ACKed, on any earlier stream to any
   * replica; 0 for a proxy that has never applied a pushed config. See "Reconnect".
   */
  'lastAckedVersion'?: (number | string | Long);
  /**
   * The authority id (identity.proto, CertifyResponse.authority_id) of the workload
   * certificate the proxy holds when it opens the stream; empty before its first
   * certificate. Informational: shown by Admin.Status until the proxy is issued a
   * certificate on this replica.
   */
  'authorityId'?: (string);
}

/**
 * Who the proxy is and what it wants. Read once per stream: a proxy whose identity or
 * wants change opens a new stream.
 */
export interface Hello__Output {
  /**
   * The workload's service (`mesh-proxy --name`) and namespace ("default" when
   * empty). Must match the join token.
   */
  'service': (string);
  'namespace': (string);
  /**
   * Unique per proxy process, stable for its lifetime and across its reconnects (for
   * example `<hostname>-<pid>-<random>`). Status rows and registry leases are keyed by
   * it, so a reconnecting proxy replaces its own row instead of adding one.
   */
  'proxyId': (string);
  /**
   * The inbound endpoints this proxy serves and will register through Registry.
   * Informational here (shown by Admin.Status and used to pre-compute the scope); the
   * lease held through Registry is what makes them receive traffic, because the
   * endpoints must outlive a broken stream.
   */
  'endpoints': (_mesh_v1_WorkloadEndpoint__Output)[];
  /**
   * mesh-proxy's package version (`mesh-proxy --version`), for Status and for the
   * server to refuse or adapt to proxies too old for the resources it would push.
   */
  'buildVersion': (string);
  /**
   * Services this proxy's traffic needs, beyond what the server derives. Empty means
   * "whatever my traffic can reach", which the server resolves as follows:
   * * every Service (AuthorizationPolicies are enforced by the called workload's
   * proxy, so they do not narrow what a caller receives);
   * * every HTTPRoute / TCPRoute whose parentRef is one of those Services;
   * * every Service those routes' backendRefs name, transitively;
   * * the proxy's own Service and the AuthorizationPolicies that target it.
   * When not empty, the first item is replaced by the listed Services (kind
   * "Service"; empty namespace means the proxy's namespace), and the rest still
   * applies, so routes always arrive together with their backends.
   */
  'wants': (_mesh_v1_ResourceKey__Output)[];
  /**
   * The version of the last push this proxy ACKed, on any earlier stream to any
   * replica; 0 for a proxy that has never applied a pushed config. See "Reconnect".
   */
  'lastAckedVersion': (string);
  /**
   * The authority id (identity.proto, CertifyResponse.authority_id) of the workload
   * certificate the proxy holds when it opens the stream; empty before its first
   * certificate. Informational: shown by Admin.Status until the proxy is issued a
   * certificate on this replica.
   */
  'authorityId': (string);
}
