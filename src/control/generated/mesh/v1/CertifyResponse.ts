// Original file: proto/mesh/v1/identity.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface CertifyResponse {
  /**
   * The leaf first, then the CA's intermediates (none when mesh-control signs with a
   * root). Never the root: roots come from the trust bundle.
   */
  'certificateChainPem'?: (string);
  /**
   * Every root of the trust domain, PEM; the proxy verifies the chain above against it
   * before installing, and peers' chains from then on.
   */
  'trustBundlePem'?: (string);
  /**
   * The certificate's validity, as in the certificate (whole seconds).
   */
  'notBefore'?: (_google_protobuf_Timestamp | null);
  'notAfter'?: (_google_protobuf_Timestamp | null);
  /**
   * The certified identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`.
   */
  'spiffeId'?: (string);
  /**
   * The authority this certificate was issued under: lowercase hex SHA-256 over the
   * SHA-256 digests (32 bytes each) of the DER of the signing CA certificate, followed
   * by the digests of every root of trust_bundle_pem, sorted. The same CA and
   * the same set of roots give the same id, whatever the order of the files; changing
   * the CA or adding or removing a root gives another. The proxy compares it with
   * WatchResponse.authority_id to know when to renew.
   */
  'authorityId'?: (string);
}

export interface CertifyResponse__Output {
  /**
   * The leaf first, then the CA's intermediates (none when mesh-control signs with a
   * root). Never the root: roots come from the trust bundle.
   */
  'certificateChainPem': (string);
  /**
   * Every root of the trust domain, PEM; the proxy verifies the chain above against it
   * before installing, and peers' chains from then on.
   */
  'trustBundlePem': (string);
  /**
   * The certificate's validity, as in the certificate (whole seconds).
   */
  'notBefore': (_google_protobuf_Timestamp__Output | null);
  'notAfter': (_google_protobuf_Timestamp__Output | null);
  /**
   * The certified identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`.
   */
  'spiffeId': (string);
  /**
   * The authority this certificate was issued under: lowercase hex SHA-256 over the
   * SHA-256 digests (32 bytes each) of the DER of the signing CA certificate, followed
   * by the digests of every root of trust_bundle_pem, sorted. The same CA and
   * the same set of roots give the same id, whatever the order of the files; changing
   * the CA or adding or removing a root gives another. The proxy compares it with
   * WatchResponse.authority_id to know when to renew.
   */
  'authorityId': (string);
}
