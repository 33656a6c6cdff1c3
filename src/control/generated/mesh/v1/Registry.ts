// Original file: proto/mesh/v1/registry.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DeregisterRequest as _mesh_v1_DeregisterRequest, DeregisterRequest__Output as _mesh_v1_DeregisterRequest__Output } from '../../mesh/v1/DeregisterRequest';
import type { DeregisterResponse as _mesh_v1_DeregisterResponse, DeregisterResponse__Output as _mesh_v1_DeregisterResponse__Output } from '../../mesh/v1/DeregisterResponse';
import type { HeartbeatRequest as _mesh_v1_HeartbeatRequest, HeartbeatRequest__Output as _mesh_v1_HeartbeatRequest__Output } from '../../mesh/v1/HeartbeatRequest';
import type { HeartbeatResponse as _mesh_v1_HeartbeatResponse, HeartbeatResponse__Output as _mesh_v1_HeartbeatResponse__Output } from '../../mesh/v1/HeartbeatResponse';
import type { RegisterRequest as _mesh_v1_RegisterRequest, RegisterRequest__Output as _mesh_v1_RegisterRequest__Output } from '../../mesh/v1/RegisterRequest';
import type { RegisterResponse as _mesh_v1_RegisterResponse, RegisterResponse__Output as _mesh_v1_RegisterResponse__Output } from '../../mesh/v1/RegisterResponse';

export interface RegistryClient extends grpc.Client {
  /**
   * Withdraws the lease's endpoints at once (graceful shutdown, before draining).
   * Idempotent: an unknown or already expired lease is not an error, so a proxy
   * shutting down after a control plane outage exits cleanly.
   */
  Deregister(argument: _mesh_v1_DeregisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  Deregister(argument: _mesh_v1_DeregisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  Deregister(argument: _mesh_v1_DeregisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  Deregister(argument: _mesh_v1_DeregisterRequest, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Withdraws the lease's endpoints at once (graceful shutdown, before draining).
   * Idempotent: an unknown or already expired lease is not an error, so a proxy
   * shutting down after a control plane outage exits cleanly.
   */
  deregister(argument: _mesh_v1_DeregisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  deregister(argument: _mesh_v1_DeregisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  deregister(argument: _mesh_v1_DeregisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  deregister(argument: _mesh_v1_DeregisterRequest, callback: grpc.requestCallback<_mesh_v1_DeregisterResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Renews a lease. NOT_FOUND when the lease expired or was replaced: the proxy must
   * call Register again (its endpoints have been, or are about to be, withdrawn).
   * Proxies heartbeat at about a third of the TTL, so two lost heartbeats in a row are
   * survivable.
   */
  Heartbeat(argument: _mesh_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _mesh_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _mesh_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _mesh_v1_HeartbeatRequest, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Renews a lease. NOT_FOUND when the lease expired or was replaced: the proxy must
   * call Register again (its endpoints have been, or are about to be, withdrawn).
   * Proxies heartbeat at about a third of the TTL, so two lost heartbeats in a row are
   * survivable.
   */
  heartbeat(argument: _mesh_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _mesh_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _mesh_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _mesh_v1_HeartbeatRequest, callback: grpc.requestCallback<_mesh_v1_HeartbeatResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Registers all inbound endpoints of one proxy under one lease. Registering again
   * with the same (namespace, service, proxy_id) replaces the endpoints of the earlier
   * lease and invalidates it, so re-registering after a NOT_FOUND heartbeat, or after
   * a restart that kept the proxy id, never leaves duplicates behind.
   * 
   * The Service resource need not exist yet: the endpoints are kept and become visible
   * when a Service of that name is applied, so start-up order does not matter.
   * Invalid endpoints: INVALID_ARGUMENT with one line naming the field
   * (`endpoints[1].port: expected 1-65535, got 0`).
   */
  Register(argument: _mesh_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _mesh_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _mesh_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _mesh_v1_RegisterRequest, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Registers all inbound endpoints of one proxy under one lease. Registering again
   * with the same (namespace, service, proxy_id) replaces the endpoints of the earlier
   * lease and invalidates it, so re-registering after a NOT_FOUND heartbeat, or after
   * a restart that kept the proxy id, never leaves duplicates behind.
   * 
   * The Service resource need not exist yet: the endpoints are kept and become visible
   * when a Service of that name is applied, so start-up order does not matter.
   * Invalid endpoints: INVALID_ARGUMENT with one line naming the field
   * (`endpoints[1].port: expected 1-65535, got 0`).
   */
  register(argument: _mesh_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _mesh_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _mesh_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _mesh_v1_RegisterRequest, callback: grpc.requestCallback<_mesh_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface RegistryHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Withdraws the lease's endpoints at once (graceful shutdown, before draining).
   * Idempotent: an unknown or already expired lease is not an error, so a proxy
   * shutting down after a control plane outage exits cleanly.
   */
  Deregister: grpc.handleUnaryCall<_mesh_v1_DeregisterRequest__Output, _mesh_v1_DeregisterResponse>;
  
  /**
   * Renews a lease. NOT_FOUND when the lease expired or was replaced: the proxy must
   * call Register again (its endpoints have been, or are about to be, withdrawn).
   * Proxies heartbeat at about a third of the TTL, so two lost heartbeats in a row are
   * survivable.
   */
  Heartbeat: grpc.handleUnaryCall<_mesh_v1_HeartbeatRequest__Output, _mesh_v1_HeartbeatResponse>;
  
  /**
   * Registers all inbound endpoints of one proxy under one lease. Registering again
   * with the same (namespace, service, proxy_id) replaces the endpoints of the earlier
   * lease and invalidates it, so re-registering after a NOT_FOUND heartbeat, or after
   * a restart that kept the proxy id, never leaves duplicates behind.
   * 
   * The Service resource need not exist yet: the endpoints are kept and become visible
   * when a Service of that name is applied, so start-up order does not matter.
   * Invalid endpoints: INVALID_ARGUMENT with one line naming the field
   * (`endpoints[1].port: expected 1-65535, got 0`).
   */
  Register: grpc.handleUnaryCall<_mesh_v1_RegisterRequest__Output, _mesh_v1_RegisterResponse>;
  
}

export interface RegistryDefinition extends grpc.ServiceDefinition {
  Deregister: MethodDefinition<_mesh_v1_DeregisterRequest, _mesh_v1_DeregisterResponse, _mesh_v1_DeregisterRequest__Output, _mesh_v1_DeregisterResponse__Output>
  Heartbeat: MethodDefinition<_mesh_v1_HeartbeatRequest, _mesh_v1_HeartbeatResponse, _mesh_v1_HeartbeatRequest__Output, _mesh_v1_HeartbeatResponse__Output>
  Register: MethodDefinition<_mesh_v1_RegisterRequest, _mesh_v1_RegisterResponse, _mesh_v1_RegisterRequest__Output, _mesh_v1_RegisterResponse__Output>
}
