// Original file: proto/mesh/v1/registry.proto

import type { WorkloadEndpoint as _mesh_v1_WorkloadEndpoint, WorkloadEndpoint__Output as _mesh_v1_WorkloadEndpoint__Output } from '../../mesh/v1/WorkloadEndpoint';

export interface RegisterRequest {
  /**
   * The workload's service name and namespace (`mesh-proxy --name` / `--namespace`);
   * must match the join token's. Empty namespace means "default".
   */
  'service'?: (string);
  'namespace'?: (string);
  /**
   * Unique per proxy process and stable for its lifetime (the same value the proxy
   * sends in its Discovery Hello). Used to replace a previous lease of the same proxy
   * and to join Status rows with endpoints.
   */
  'proxyId'?: (string);
  'endpoints'?: (_mesh_v1_WorkloadEndpoint)[];
}

export interface RegisterRequest__Output {
  /**
   * The workload's service name and namespace (`mesh-proxy --name` / `--namespace`);
   * must match the join token's. Empty namespace means "default".
   */
  'service': (string);
  'namespace': (string);
  /**
   * Unique per proxy process and stable for its lifetime (the same value the proxy
   * sends in its Discovery Hello). Used to replace a previous lease of the same proxy
   * and to join Status rows with endpoints.
   */
  'proxyId': (string);
  'endpoints': (_mesh_v1_WorkloadEndpoint__Output)[];
}
