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
  /**
   * The proxy's Hello.proxy_id (discovery.proto), so that mesh-control can show in its
   * Status which connected proxies hold a certificate of its current authority.
   * Informational; empty is accepted (the certificate is issued all the same).
   */
  'proxyId'?: (string);
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
  /**
   * The proxy's Hello.proxy_id (discovery.proto), so that mesh-control can show in its
   * Status which connected proxies hold a certificate of its current authority.
   * Informational; empty is accepted (the certificate is issued all the same).
   */
  'proxyId': (string);
}
