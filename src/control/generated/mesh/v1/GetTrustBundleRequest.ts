// Original file: proto/mesh/v1/identity.proto


export interface GetTrustBundleRequest {
}

export interface GetTrustBundleRequest__Output {
}
