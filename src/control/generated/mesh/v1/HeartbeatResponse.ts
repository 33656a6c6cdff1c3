// Original file: proto/mesh/v1/registry.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

export interface HeartbeatResponse {
  /**
   * The renewed TTL, counted from the server's receipt of this heartbeat. May differ
   * from the previous one (the operator changed the policy): proxies reschedule on
   * every response.
   */
  'ttl'?: (_google_protobuf_Duration | null);
}

export interface HeartbeatResponse__Output {
  /**
   * The renewed TTL, counted from the server's receipt of this heartbeat. May differ
   * from the previous one (the operator changed the policy): proxies reschedule on
   * every response.
   */
  'ttl': (_google_protobuf_Duration__Output | null);
}
