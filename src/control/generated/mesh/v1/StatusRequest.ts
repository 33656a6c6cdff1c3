// Original file: proto/mesh/v1/admin.proto


export interface StatusRequest {
}

export interface StatusRequest__Output {
}
