import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Resource as _mesh_v1_Resource, Resource__Output as _mesh_v1_Resource__Output } from './mesh/v1/Resource';
import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from './mesh/v1/ResourceKey';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  mesh: {
    v1: {
      Resource: MessageTypeDefinition<_mesh_v1_Resource, _mesh_v1_Resource__Output>
      ResourceKey: MessageTypeDefinition<_mesh_v1_ResourceKey, _mesh_v1_ResourceKey__Output>
    }
  }
}

