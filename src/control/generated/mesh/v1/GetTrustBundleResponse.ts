// Original file: proto/mesh/v1/identity.proto


export interface GetTrustBundleResponse {
  'trustDomain'?: (string);
  /**
   * Every root, PEM, in the order mesh-control loaded them (its own first).
   */
  'trustBundlePem'?: (string);
}

export interface GetTrustBundleResponse__Output {
  'trustDomain': (string);
  /**
   * Every root, PEM, in the order mesh-control loaded them (its own first).
   */
  'trustBundlePem': (string);
}
