import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from './google/protobuf/Timestamp';
import type { AdminClient as _mesh_v1_AdminClient, AdminDefinition as _mesh_v1_AdminDefinition } from './mesh/v1/Admin';
import type { ApplyDocument as _mesh_v1_ApplyDocument, ApplyDocument__Output as _mesh_v1_ApplyDocument__Output } from './mesh/v1/ApplyDocument';
import type { ApplyRequest as _mesh_v1_ApplyRequest, ApplyRequest__Output as _mesh_v1_ApplyRequest__Output } from './mesh/v1/ApplyRequest';
import type { ApplyResponse as _mesh_v1_ApplyResponse, ApplyResponse__Output as _mesh_v1_ApplyResponse__Output } from './mesh/v1/ApplyResponse';
import type { ApplyResult as _mesh_v1_ApplyResult, ApplyResult__Output as _mesh_v1_ApplyResult__Output } from './mesh/v1/ApplyResult';
import type { CertificateAuthorityStatus as _mesh_v1_CertificateAuthorityStatus, CertificateAuthorityStatus__Output as _mesh_v1_CertificateAuthorityStatus__Output } from './mesh/v1/CertificateAuthorityStatus';
import type { CreateTokenRequest as _mesh_v1_CreateTokenRequest, CreateTokenRequest__Output as _mesh_v1_CreateTokenRequest__Output } from './mesh/v1/CreateTokenRequest';
import type { CreateTokenResponse as _mesh_v1_CreateTokenResponse, CreateTokenResponse__Output as _mesh_v1_CreateTokenResponse__Output } from './mesh/v1/CreateTokenResponse';
import type { DeleteRequest as _mesh_v1_DeleteRequest, DeleteRequest__Output as _mesh_v1_DeleteRequest__Output } from './mesh/v1/DeleteRequest';
import type { DeleteResponse as _mesh_v1_DeleteResponse, DeleteResponse__Output as _mesh_v1_DeleteResponse__Output } from './mesh/v1/DeleteResponse';
import type { GetRequest as _mesh_v1_GetRequest, GetRequest__Output as _mesh_v1_GetRequest__Output } from './mesh/v1/GetRequest';
import type { GetResponse as _mesh_v1_GetResponse, GetResponse__Output as _mesh_v1_GetResponse__Output } from './mesh/v1/GetResponse';
import type { ProxyStatus as _mesh_v1_ProxyStatus, ProxyStatus__Output as _mesh_v1_ProxyStatus__Output } from './mesh/v1/ProxyStatus';
import type { Resource as _mesh_v1_Resource, Resource__Output as _mesh_v1_Resource__Output } from './mesh/v1/Resource';
import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from './mesh/v1/ResourceKey';
import type { StatusRequest as _mesh_v1_StatusRequest, StatusRequest__Output as _mesh_v1_StatusRequest__Output } from './mesh/v1/StatusRequest';
import type { StatusResponse as _mesh_v1_StatusResponse, StatusResponse__Output as _mesh_v1_StatusResponse__Output } from './mesh/v1/StatusResponse';
import type { StoreStatus as _mesh_v1_StoreStatus, StoreStatus__Output as _mesh_v1_StoreStatus__Output } from './mesh/v1/StoreStatus';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
      Timestamp: MessageTypeDefinition<_google_protobuf_Timestamp, _google_protobuf_Timestamp__Output>
    }
  }
  mesh: {
    v1: {
      Admin: SubtypeConstructor<typeof grpc.Client, _mesh_v1_AdminClient> & { service: _mesh_v1_AdminDefinition }
      ApplyAction: EnumTypeDefinition
      ApplyDocument: MessageTypeDefinition<_mesh_v1_ApplyDocument, _mesh_v1_ApplyDocument__Output>
      ApplyRequest: MessageTypeDefinition<_mesh_v1_ApplyRequest, _mesh_v1_ApplyRequest__Output>
      ApplyResponse: MessageTypeDefinition<_mesh_v1_ApplyResponse, _mesh_v1_ApplyResponse__Output>
      ApplyResult: MessageTypeDefinition<_mesh_v1_ApplyResult, _mesh_v1_ApplyResult__Output>
      CertificateAuthorityStatus: MessageTypeDefinition<_mesh_v1_CertificateAuthorityStatus, _mesh_v1_CertificateAuthorityStatus__Output>
      CreateTokenRequest: MessageTypeDefinition<_mesh_v1_CreateTokenRequest, _mesh_v1_CreateTokenRequest__Output>
      CreateTokenResponse: MessageTypeDefinition<_mesh_v1_CreateTokenResponse, _mesh_v1_CreateTokenResponse__Output>
      DeleteRequest: MessageTypeDefinition<_mesh_v1_DeleteRequest, _mesh_v1_DeleteRequest__Output>
      DeleteResponse: MessageTypeDefinition<_mesh_v1_DeleteResponse, _mesh_v1_DeleteResponse__Output>
      GetRequest: MessageTypeDefinition<_mesh_v1_GetRequest, _mesh_v1_GetRequest__Output>
      GetResponse: MessageTypeDefinition<_mesh_v1_GetResponse, _mesh_v1_GetResponse__Output>
      ProxyStatus: MessageTypeDefinition<_mesh_v1_ProxyStatus, _mesh_v1_ProxyStatus__Output>
      ReplyState: EnumTypeDefinition
      Resource: MessageTypeDefinition<_mesh_v1_Resource, _mesh_v1_Resource__Output>
      ResourceKey: MessageTypeDefinition<_mesh_v1_ResourceKey, _mesh_v1_ResourceKey__Output>
      StatusRequest: MessageTypeDefinition<_mesh_v1_StatusRequest, _mesh_v1_StatusRequest__Output>
      StatusResponse: MessageTypeDefinition<_mesh_v1_StatusResponse, _mesh_v1_StatusResponse__Output>
      StoreStatus: MessageTypeDefinition<_mesh_v1_StoreStatus, _mesh_v1_StoreStatus__Output>
    }
  }
}

