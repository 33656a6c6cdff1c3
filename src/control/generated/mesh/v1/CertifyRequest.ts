// Original file: proto/mesh/v1/identity.proto


export interface CertifyRequest {
  /**
   * PEM "CERTIFICATE REQUEST" (PKCS#10), ECDSA P-256 key, signed ecdsa-with-SHA256, at
   * most 16 KiB. Names in it are ignored.
   */
  'csrPem'?: (string);
  /**
   * The identity the proxy runs as (`mesh-proxy --name` / `--namespace`); must be the one
   * the join token admits. Stated by the proxy so that a token of the wrong workload
   * fails here, plainly, rather than yielding a certificate for another identity.
   * Empty namespace means "default".
   */
  'service'?: (string);
  'namespace'?: (string);
}

export interface CertifyRequest__Output {
  /**
   * PEM "CERTIFICATE REQUEST" (PKCS#10), ECDSA P-256 key, signed ecdsa-with-SHA256, at
   * most 16 KiB. Names in it are ignored.
   */
  'csrPem': (string);
  /**
   * The identity the proxy runs as (`mesh-proxy --name` / `--namespace`); must be the one
   * the join token admits. Stated by the proxy so that a token of the wrong workload
   * fails here, plainly, rather than yielding a certificate for another identity.
   * Empty namespace means "default".
   */
  'service': (string);
  'namespace': (string);
}
