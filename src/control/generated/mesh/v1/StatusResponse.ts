// Original file: proto/mesh/v1/admin.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';
import type { StoreStatus as _mesh_v1_StoreStatus, StoreStatus__Output as _mesh_v1_StoreStatus__Output } from '../../mesh/v1/StoreStatus';
import type { CertificateAuthorityStatus as _mesh_v1_CertificateAuthorityStatus, CertificateAuthorityStatus__Output as _mesh_v1_CertificateAuthorityStatus__Output } from '../../mesh/v1/CertificateAuthorityStatus';
import type { ProxyStatus as _mesh_v1_ProxyStatus, ProxyStatus__Output as _mesh_v1_ProxyStatus__Output } from '../../mesh/v1/ProxyStatus';
import type { Long } from '@grpc/proto-loader';

export interface StatusResponse {
  /**
   * mesh-control's package version.
   */
  'serverVersion'?: (string);
  'startedAt'?: (_google_protobuf_Timestamp | null);
  /**
   * Current store version.
   */
  'version'?: (number | string | Long);
  'store'?: (_mesh_v1_StoreStatus | null);
  /**
   * The certificate authority (unset only by servers that predate it).
   */
  'ca'?: (_mesh_v1_CertificateAuthorityStatus | null);
  /**
   * Proxies with an open Discovery stream to this replica, sorted by namespace,
   * service, proxy id.
   */
  'proxies'?: (_mesh_v1_ProxyStatus)[];
}

export interface StatusResponse__Output {
  /**
   * mesh-control's package version.
   */
  'serverVersion': (string);
  'startedAt': (_google_protobuf_Timestamp__Output | null);
  /**
   * Current store version.
   */
  'version': (string);
  'store': (_mesh_v1_StoreStatus__Output | null);
  /**
   * The certificate authority (unset only by servers that predate it).
   */
  'ca': (_mesh_v1_CertificateAuthorityStatus__Output | null);
  /**
   * Proxies with an open Discovery stream to this replica, sorted by namespace,
   * service, proxy id.
   */
  'proxies': (_mesh_v1_ProxyStatus__Output)[];
}
