// Original file: proto/mesh/v1/registry.proto


export interface HeartbeatRequest {
  'leaseId'?: (string);
}

export interface HeartbeatRequest__Output {
  'leaseId': (string);
}
