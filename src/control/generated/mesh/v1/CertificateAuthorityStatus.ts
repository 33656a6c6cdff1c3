// Original file: proto/mesh/v1/admin.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

/**
 * Filled by the identity issue (the control plane's certificate authority). Until
 * that lands the server leaves StatusResponse.ca unset, and clients show
 * "not configured" rather than a failure.
 */
export interface CertificateAuthorityStatus {
  'valid'?: (boolean);
  'notBefore'?: (_google_protobuf_Timestamp | null);
  'notAfter'?: (_google_protobuf_Timestamp | null);
  'trustDomain'?: (string);
  /**
   * One line when not valid.
   */
  'error'?: (string);
}

/**
 * Filled by the identity issue (the control plane's certificate authority). Until
 * that lands the server leaves StatusResponse.ca unset, and clients show
 * "not configured" rather than a failure.
 */
export interface CertificateAuthorityStatus__Output {
  'valid': (boolean);
  'notBefore': (_google_protobuf_Timestamp__Output | null);
  'notAfter': (_google_protobuf_Timestamp__Output | null);
  'trustDomain': (string);
  /**
   * One line when not valid.
   */
  'error': (string);
}
