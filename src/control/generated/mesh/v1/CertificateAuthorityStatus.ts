// Original file: proto/mesh/v1/admin.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../google/protobuf/Duration';

/**
 * mesh-control's certificate authority (identity.proto). Clients show an unset `ca` as
 * "not configured" rather than a failure (a server of an older version).
 */
export interface CertificateAuthorityStatus {
  /**
   * The CA can sign now: its certificate is within its validity period.
   */
  'valid'?: (boolean);
  /**
   * The signing CA certificate's validity.
   */
  'notBefore'?: (_google_protobuf_Timestamp | null);
  'notAfter'?: (_google_protobuf_Timestamp | null);
  'trustDomain'?: (string);
  /**
   * One line when not valid.
   */
  'error'?: (string);
  /**
   * Number of roots in the trust bundle (more than one during a root rotation).
   */
  'trustBundleRoots'?: (number);
  /**
   * The signing CA certificate's subject (RFC 4514), to tell roots apart.
   */
  'subject'?: (string);
  /**
   * The life of the workload certificates it signs (`--cert-ttl`).
   */
  'certificateTtl'?: (_google_protobuf_Duration | null);
  /**
   * The CA certificate file: `<data dir>/ca/ca.crt`, or the `--ca-cert` path.
   */
  'source'?: (string);
  /**
   * The authority id (identity.proto, CertifyResponse.authority_id) of this CA and
   * trust bundle: what proxies renew to after a restart with another CA or bundle.
   */
  'authorityId'?: (string);
}

/**
 * mesh-control's certificate authority (identity.proto). Clients show an unset `ca` as
 * "not configured" rather than a failure (a server of an older version).
 */
export interface CertificateAuthorityStatus__Output {
  /**
   * The CA can sign now: its certificate is within its validity period.
   */
  'valid': (boolean);
  /**
   * The signing CA certificate's validity.
   */
  'notBefore': (_google_protobuf_Timestamp__Output | null);
  'notAfter': (_google_protobuf_Timestamp__Output | null);
  'trustDomain': (string);
  /**
   * One line when not valid.
   */
  'error': (string);
  /**
   * Number of roots in the trust bundle (more than one during a root rotation).
   */
  'trustBundleRoots': (number);
  /**
   * The signing CA certificate's subject (RFC 4514), to tell roots apart.
   */
  'subject': (string);
  /**
   * The life of the workload certificates it signs (`--cert-ttl`).
   */
  'certificateTtl': (_google_protobuf_Duration__Output | null);
  /**
   * The CA certificate file: `<data dir>/ca/ca.crt`, or the `--ca-cert` path.
   */
  'source': (string);
  /**
   * The authority id (identity.proto, CertifyResponse.authority_id) of this CA and
   * trust bundle: what proxies renew to after a restart with another CA or bundle.
   */
  'authorityId': (string);
}
