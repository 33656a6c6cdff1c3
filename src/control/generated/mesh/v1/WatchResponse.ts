// Original file: proto/mesh/v1/discovery.proto

import type { Resource as _mesh_v1_Resource, Resource__Output as _mesh_v1_Resource__Output } from '../../mesh/v1/Resource';
import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from '../../mesh/v1/ResourceKey';
import type { Long } from '@grpc/proto-loader';

export interface WatchResponse {
  /**
   * See "Versions".
   */
  'version'?: (number | string | Long);
  /**
   * Unique per push within a stream; the reply must echo it. Versions say what state
   * was sent, the nonce says which send is being answered, so a late or duplicated
   * reply can never be mistaken for the answer to the current push.
   */
  'nonce'?: (string);
  /**
   * true: `resources` is the complete scope; the proxy drops anything it holds that is
   * not listed, and `removed` is empty. false: a delta against the last state this
   * proxy ACKed; each listed resource replaces the held one with the same key whole
   * (no field-level patching), and `removed` lists the keys to drop. A key never
   * appears in both lists.
   */
  'full'?: (boolean);
  /**
   * Services carry their effective endpoints: the static ones from the resource,
   * plus the registered ones whose lease is live, minus those an active health check
   * currently marks unhealthy. The body is still a valid normalised Service.
   */
  'resources'?: (_mesh_v1_Resource)[];
  'removed'?: (_mesh_v1_ResourceKey)[];
  /**
   * The authority id of the server (identity.proto, CertifyResponse.authority_id):
   * what it signs workload certificates with and trusts now. The same on every push of
   * a stream; set on every push so that the first push of a new stream (a reconnect,
   * a restarted mesh-control) tells the proxy at once. A proxy whose certificate was
   * issued under another id renews it promptly (after a random delay of at most a
   * second), which is how a CA or trust bundle change reaches every proxy without
   * waiting for its certificate's renewal time. Empty from a server that does not
   * report one: the proxy then renews on its own schedule only. Not part of the
   * resource state: it does not affect ACK, NACK or versions.
   */
  'authorityId'?: (string);
}

export interface WatchResponse__Output {
  /**
   * See "Versions".
   */
  'version': (string);
  /**
   * Unique per push within a stream; the reply must echo it. Versions say what state
   * was sent, the nonce says which send is being answered, so a late or duplicated
   * reply can never be mistaken for the answer to the current push.
   */
  'nonce': (string);
  /**
   * true: `resources` is the complete scope; the proxy drops anything it holds that is
   * not listed, and `removed` is empty. false: a delta against the last state this
   * proxy ACKed; each listed resource replaces the held one with the same key whole
   * (no field-level patching), and `removed` lists the keys to drop. A key never
   * appears in both lists.
   */
  'full': (boolean);
  /**
   * Services carry their effective endpoints: the static ones from the resource,
   * plus the registered ones whose lease is live, minus those an active health check
   * currently marks unhealthy. The body is still a valid normalised Service.
   */
  'resources': (_mesh_v1_Resource__Output)[];
  'removed': (_mesh_v1_ResourceKey__Output)[];
  /**
   * The authority id of the server (identity.proto, CertifyResponse.authority_id):
   * what it signs workload certificates with and trusts now. The same on every push of
   * a stream; set on every push so that the first push of a new stream (a reconnect,
   * a restarted mesh-control) tells the proxy at once. A proxy whose certificate was
   * issued under another id renews it promptly (after a random delay of at most a
   * second), which is how a CA or trust bundle change reaches every proxy without
   * waiting for its certificate's renewal time. Empty from a server that does not
   * report one: the proxy then renews on its own schedule only. Not part of the
   * resource state: it does not affect ACK, NACK or versions.
   */
  'authorityId': (string);
}
