// Original file: proto/mesh/v1/registry.proto


export interface DeregisterRequest {
  'leaseId'?: (string);
}

export interface DeregisterRequest__Output {
  'leaseId': (string);
}
