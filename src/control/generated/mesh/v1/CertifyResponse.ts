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
}
