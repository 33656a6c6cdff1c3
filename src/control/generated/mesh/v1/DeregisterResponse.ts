// Original file: proto/mesh/v1/registry.proto


export interface DeregisterResponse {
}

export interface DeregisterResponse__Output {
}
