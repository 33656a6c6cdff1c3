import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { CertifyRequest as _mesh_v1_CertifyRequest, CertifyRequest__Output as _mesh_v1_CertifyRequest__Output } from './mesh/v1/CertifyRequest';
import type { CertifyResponse as _mesh_v1_CertifyResponse, CertifyResponse__Output as _mesh_v1_CertifyResponse__Output } from './mesh/v1/CertifyResponse';
import type { GetTrustBundleRequest as _mesh_v1_GetTrustBundleRequest, GetTrustBundleRequest__Output as _mesh_v1_GetTrustBundleRequest__Output } from './mesh/v1/GetTrustBundleRequest';
import type { GetTrustBundleResponse as _mesh_v1_GetTrustBundleResponse, GetTrustBundleResponse__Output as _mesh_v1_GetTrustBundleResponse__Output } from './mesh/v1/GetTrustBundleResponse';
import type { IdentityClient as _mesh_v1_IdentityClient, IdentityDefinition as _mesh_v1_IdentityDefinition } from './mesh/v1/Identity';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  mesh: {
    v1: {
      CertifyRequest: MessageTypeDefinition<_mesh_v1_CertifyRequest, _mesh_v1_CertifyRequest__Output>
      CertifyResponse: MessageTypeDefinition<_mesh_v1_CertifyResponse, _mesh_v1_CertifyResponse__Output>
      GetTrustBundleRequest: MessageTypeDefinition<_mesh_v1_GetTrustBundleRequest, _mesh_v1_GetTrustBundleRequest__Output>
      GetTrustBundleResponse: MessageTypeDefinition<_mesh_v1_GetTrustBundleResponse, _mesh_v1_GetTrustBundleResponse__Output>
      Identity: SubtypeConstructor<typeof grpc.Client, _mesh_v1_IdentityClient> & { service: _mesh_v1_IdentityDefinition }
    }
  }
}

