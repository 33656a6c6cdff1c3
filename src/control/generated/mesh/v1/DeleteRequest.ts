// Original file: proto/mesh/v1/admin.proto


export interface DeleteRequest {
  'kind'?: (string);
  /**
   * Empty: "default".
   */
  'namespace'?: (string);
  'name'?: (string);
}

export interface DeleteRequest__Output {
  'kind': (string);
  /**
   * Empty: "default".
   */
  'namespace': (string);
  'name': (string);
}
