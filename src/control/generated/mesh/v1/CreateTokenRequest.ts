// Original file: proto/mesh/v1/admin.proto


export interface CreateTokenRequest {
  /**
   * The workload identity the token admits (`meshctl token create --name`).
   */
  'service'?: (string);
  /**
   * Empty: "default".
   */
  'namespace'?: (string);
}

export interface CreateTokenRequest__Output {
  /**
   * The workload identity the token admits (`meshctl token create --name`).
   */
  'service': (string);
  /**
   * Empty: "default".
   */
  'namespace': (string);
}
