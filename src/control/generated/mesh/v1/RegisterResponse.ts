// Original file: proto/mesh/v1/registry.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface RegisterResponse {
  /**
   * Opaque and unguessable; only meaningful to the control plane that issued it (and
   * its replicas sharing the store).
   */
  'leaseId'?: (string);
  /**
   * How long the lease lives without a heartbeat. Chosen by the server (one policy
   * for the whole mesh), not requested by the proxy.
   */
  'ttl'?: (_google_protobuf_Duration | null);
}

export interface RegisterResponse__Output {
  /**
   * Opaque and unguessable; only meaningful to the control plane that issued it (and
   * its replicas sharing the store).
   */
  'leaseId': (string);
  /**
   * How long the lease lives without a heartbeat. Chosen by the server (one policy
   * for the whole mesh), not requested by the proxy.
   */
  'ttl': (_google_protobuf_Duration__Output | null);
}
