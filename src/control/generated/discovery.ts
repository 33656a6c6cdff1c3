import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from './google/protobuf/Duration';
import type { Ack as _mesh_v1_Ack, Ack__Output as _mesh_v1_Ack__Output } from './mesh/v1/Ack';
import type { DeregisterRequest as _mesh_v1_DeregisterRequest, DeregisterRequest__Output as _mesh_v1_DeregisterRequest__Output } from './mesh/v1/DeregisterRequest';
import type { DeregisterResponse as _mesh_v1_DeregisterResponse, DeregisterResponse__Output as _mesh_v1_DeregisterResponse__Output } from './mesh/v1/DeregisterResponse';
import type { DiscoveryClient as _mesh_v1_DiscoveryClient, DiscoveryDefinition as _mesh_v1_DiscoveryDefinition } from './mesh/v1/Discovery';
import type { HeartbeatRequest as _mesh_v1_HeartbeatRequest, HeartbeatRequest__Output as _mesh_v1_HeartbeatRequest__Output } from './mesh/v1/HeartbeatRequest';
import type { HeartbeatResponse as _mesh_v1_HeartbeatResponse, HeartbeatResponse__Output as _mesh_v1_HeartbeatResponse__Output } from './mesh/v1/HeartbeatResponse';
import type { Hello as _mesh_v1_Hello, Hello__Output as _mesh_v1_Hello__Output } from './mesh/v1/Hello';
import type { Nack as _mesh_v1_Nack, Nack__Output as _mesh_v1_Nack__Output } from './mesh/v1/Nack';
import type { RegisterRequest as _mesh_v1_RegisterRequest, RegisterRequest__Output as _mesh_v1_RegisterRequest__Output } from './mesh/v1/RegisterRequest';
import type { RegisterResponse as _mesh_v1_RegisterResponse, RegisterResponse__Output as _mesh_v1_RegisterResponse__Output } from './mesh/v1/RegisterResponse';
import type { RegistryClient as _mesh_v1_RegistryClient, RegistryDefinition as _mesh_v1_RegistryDefinition } from './mesh/v1/Registry';
import type { Resource as _mesh_v1_Resource, Resource__Output as _mesh_v1_Resource__Output } from './mesh/v1/Resource';
import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from './mesh/v1/ResourceKey';
import type { WatchRequest as _mesh_v1_WatchRequest, WatchRequest__Output as _mesh_v1_WatchRequest__Output } from './mesh/v1/WatchRequest';
import type { WatchResponse as _mesh_v1_WatchResponse, WatchResponse__Output as _mesh_v1_WatchResponse__Output } from './mesh/v1/WatchResponse';
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
      Ack: MessageTypeDefinition<_mesh_v1_Ack, _mesh_v1_Ack__Output>
      DeregisterRequest: MessageTypeDefinition<_mesh_v1_DeregisterRequest, _mesh_v1_DeregisterRequest__Output>
      DeregisterResponse: MessageTypeDefinition<_mesh_v1_DeregisterResponse, _mesh_v1_DeregisterResponse__Output>
      Discovery: SubtypeConstructor<typeof grpc.Client, _mesh_v1_DiscoveryClient> & { service: _mesh_v1_DiscoveryDefinition }
      HeartbeatRequest: MessageTypeDefinition<_mesh_v1_HeartbeatRequest, _mesh_v1_HeartbeatRequest__Output>
      HeartbeatResponse: MessageTypeDefinition<_mesh_v1_HeartbeatResponse, _mesh_v1_HeartbeatResponse__Output>
      Hello: MessageTypeDefinition<_mesh_v1_Hello, _mesh_v1_Hello__Output>
      Nack: MessageTypeDefinition<_mesh_v1_Nack, _mesh_v1_Nack__Output>
      RegisterRequest: MessageTypeDefinition<_mesh_v1_RegisterRequest, _mesh_v1_RegisterRequest__Output>
      RegisterResponse: MessageTypeDefinition<_mesh_v1_RegisterResponse, _mesh_v1_RegisterResponse__Output>
      Registry: SubtypeConstructor<typeof grpc.Client, _mesh_v1_RegistryClient> & { service: _mesh_v1_RegistryDefinition }
      Resource: MessageTypeDefinition<_mesh_v1_Resource, _mesh_v1_Resource__Output>
      ResourceKey: MessageTypeDefinition<_mesh_v1_ResourceKey, _mesh_v1_ResourceKey__Output>
      WatchRequest: MessageTypeDefinition<_mesh_v1_WatchRequest, _mesh_v1_WatchRequest__Output>
      WatchResponse: MessageTypeDefinition<_mesh_v1_WatchResponse, _mesh_v1_WatchResponse__Output>
      WorkloadEndpoint: MessageTypeDefinition<_mesh_v1_WorkloadEndpoint, _mesh_v1_WorkloadEndpoint__Output>
    }
  }
}

