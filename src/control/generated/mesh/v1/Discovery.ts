// Original file: proto/mesh/v1/discovery.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { WatchRequest as _mesh_v1_WatchRequest, WatchRequest__Output as _mesh_v1_WatchRequest__Output } from '../../mesh/v1/WatchRequest';
import type { WatchResponse as _mesh_v1_WatchResponse, WatchResponse__Output as _mesh_v1_WatchResponse__Output } from '../../mesh/v1/WatchResponse';

export interface DiscoveryClient extends grpc.Client {
  Watch(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_mesh_v1_WatchRequest, _mesh_v1_WatchResponse__Output>;
  Watch(options?: grpc.CallOptions): grpc.ClientDuplexStream<_mesh_v1_WatchRequest, _mesh_v1_WatchResponse__Output>;
  watch(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_mesh_v1_WatchRequest, _mesh_v1_WatchResponse__Output>;
  watch(options?: grpc.CallOptions): grpc.ClientDuplexStream<_mesh_v1_WatchRequest, _mesh_v1_WatchResponse__Output>;
  
}

export interface DiscoveryHandlers extends grpc.UntypedServiceImplementation {
  Watch: grpc.handleBidiStreamingCall<_mesh_v1_WatchRequest__Output, _mesh_v1_WatchResponse>;
  
}

export interface DiscoveryDefinition extends grpc.ServiceDefinition {
  Watch: MethodDefinition<_mesh_v1_WatchRequest, _mesh_v1_WatchResponse, _mesh_v1_WatchRequest__Output, _mesh_v1_WatchResponse__Output>
}
