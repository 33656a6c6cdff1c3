import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { DeregisterRequest as _mesh_v1_DeregisterRequest, DeregisterRequest__Output as _mesh_v1_DeregisterRequest__Output } from './mesh/v1/DeregisterRequest';
import type { DeregisterResponse as _mesh_v1_DeregisterResponse, DeregisterResponse__Output as _mesh_v1_DeregisterResponse__Output } from './mesh/v1/DeregisterResponse';
import type { HeartbeatRequest as _mesh_v1_HeartbeatRequest, HeartbeatRequest__Output as _mesh_v1_HeartbeatRequest__Output } from './mesh/v1/HeartbeatRequest';
import type { HeartbeatResponse as _mesh_v1_HeartbeatResponse, HeartbeatResponse__Output as _mesh_v1_HeartbeatResponse__Output } from './mesh/v1/HeartbeatResponse';
import type { RegisterRequest as _mesh_v1_RegisterRequest, RegisterRequest__Output as _mesh_v1_RegisterRequest__Output } from './mesh/v1/RegisterRequest';
import type { RegisterResponse as _mesh_v1_RegisterResponse, RegisterResponse__Output as _mesh_v1_RegisterResponse__Output } from './mesh/v1/RegisterResponse';
import type { RegistryClient as _mesh_v1_RegistryClient, RegistryDefinition as _mesh_v1_RegistryDefinition } from './mesh/v1/Registry';
import type { WorkloadEndpoint as _mesh_v1_WorkloadEndpoint, WorkloadEndpoint__Output as _mesh_v1_WorkloadEndpoint__Output } from './mesh/v1/WorkloadEndpoint';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  google: {
    protobuf: {
      Duration: MessageTypeDefinition<_google_protobuf_Duration, _google_protobuf_Duration__Output>
    }
  }
  mesh: {
    v1: {
      DeregisterRequest: MessageTypeDefinition<_mesh_v1_DeregisterRequest, _mesh_v1_DeregisterRequest__Output>
      DeregisterResponse: MessageTypeDefinition<_mesh_v1_DeregisterResponse, _mesh_v1_DeregisterResponse__Output>
      HeartbeatRequest: MessageTypeDefinition<_mesh_v1_HeartbeatRequest, _mesh_v1_HeartbeatRequest__Output>
      HeartbeatResponse: MessageTypeDefinition<_mesh_v1_HeartbeatResponse, _mesh_v1_HeartbeatResponse__Output>
      RegisterRequest: MessageTypeDefinition<_mesh_v1_RegisterRequest, _mesh_v1_RegisterRequest__Output>
      RegisterResponse: MessageTypeDefinition<_mesh_v1_RegisterResponse, _mesh_v1_RegisterResponse__Output>
      Registry: SubtypeConstructor<typeof grpc.Client, _mesh_v1_RegistryClient> & { service: _mesh_v1_RegistryDefinition }
      WorkloadEndpoint: MessageTypeDefinition<_mesh_v1_WorkloadEndpoint, _mesh_v1_WorkloadEndpoint__Output>
    }
  }
}

