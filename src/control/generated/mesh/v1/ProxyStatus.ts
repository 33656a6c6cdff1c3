// Original file: proto/mesh/v1/admin.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { ReplyState as _mesh_v1_ReplyState, ReplyState__Output as _mesh_v1_ReplyState__Output } from '../../mesh/v1/ReplyState';
import type { Long } from '@grpc/proto-loader';

export interface ProxyStatus {
  'proxyId'?: (string);
  'service'?: (string);
  'namespace'?: (string);
  'buildVersion'?: (string);
  /**
   * Remote address of the Discovery stream (`IP:PORT`).
   */
  'peerAddress'?: (string);
  'connectedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * The latest version sent to this proxy.
   */
  'pushedVersion'?: (number | string | Long);
  /**
   * The latest version it ACKed: the config it runs.
   */
  'ackedVersion'?: (number | string | Long);
  /**
   * The reply to the latest push.
   */
  'lastReply'?: (_mesh_v1_ReplyState);
  'lastReplyAt'?: (_google_protobuf_Timestamp | null);
  /**
   * The NACK error of the latest push when last_reply is NACK; empty otherwise (an
   * older NACK followed by an ACK is history, not a problem).
   */
  'error'?: (string);
  /**
   * Computed by the server, the only side that knows the proxy's scope: the proxy
   * ACKed the latest state of its scope and no push is outstanding. A proxy can be
   * in sync with an acked_version below the store's version, because changes outside
   * its scope do not concern it.
   */
  'inSync'?: (boolean);
  /**
   * Number of resources in its current scope.
   */
  'resourceCount'?: (number);
  /**
   * The authority id its workload certificate was issued under, as far as this server
   * knows: the server's own (CertificateAuthorityStatus.authority_id) once it issued the
   * proxy a certificate since it started, otherwise what the proxy's Hello said. Empty:
   * no certificate yet. During a CA or trust bundle rotation, wait until every proxy
   * shows the server's id before the next step.
   */
  'authorityId'?: (string);
}

export interface ProxyStatus__Output {
  'proxyId': (string);
  'service': (string);
  'namespace': (string);
  'buildVersion': (string);
  /**
   * Remote address of the Discovery stream (`IP:PORT`).
   */
  'peerAddress': (string);
  'connectedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * The latest version sent to this proxy.
   */
  'pushedVersion': (string);
  /**
   * The latest version it ACKed: the config it runs.
   */
  'ackedVersion': (string);
  /**
   * The reply to the latest push.
   */
  'lastReply': (_mesh_v1_ReplyState__Output);
  'lastReplyAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * The NACK error of the latest push when last_reply is NACK; empty otherwise (an
   * older NACK followed by an ACK is history, not a problem).
   */
  'error': (string);
  /**
   * Computed by the server, the only side that knows the proxy's scope: the proxy
   * ACKed the latest state of its scope and no push is outstanding. A proxy can be
   * in sync with an acked_version below the store's version, because changes outside
   * its scope do not concern it.
   */
  'inSync': (boolean);
  /**
   * Number of resources in its current scope.
   */
  'resourceCount': (number);
  /**
   * The authority id its workload certificate was issued under, as far as this server
   * knows: the server's own (CertificateAuthorityStatus.authority_id) once it issued the
   * proxy a certificate since it started, otherwise what the proxy's Hello said. Empty:
   * no certificate yet. During a CA or trust bundle rotation, wait until every proxy
   * shows the server's id before the next step.
   */
  'authorityId': (string);
}
