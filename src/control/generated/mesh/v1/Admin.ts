// Original file: proto/mesh/v1/admin.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ApplyRequest as _mesh_v1_ApplyRequest, ApplyRequest__Output as _mesh_v1_ApplyRequest__Output } from '../../mesh/v1/ApplyRequest';
import type { ApplyResponse as _mesh_v1_ApplyResponse, ApplyResponse__Output as _mesh_v1_ApplyResponse__Output } from '../../mesh/v1/ApplyResponse';
import type { CreateTokenRequest as _mesh_v1_CreateTokenRequest, CreateTokenRequest__Output as _mesh_v1_CreateTokenRequest__Output } from '../../mesh/v1/CreateTokenRequest';
import type { CreateTokenResponse as _mesh_v1_CreateTokenResponse, CreateTokenResponse__Output as _mesh_v1_CreateTokenResponse__Output } from '../../mesh/v1/CreateTokenResponse';
import type { DeleteRequest as _mesh_v1_DeleteRequest, DeleteRequest__Output as _mesh_v1_DeleteRequest__Output } from '../../mesh/v1/DeleteRequest';
import type { DeleteResponse as _mesh_v1_DeleteResponse, DeleteResponse__Output as _mesh_v1_DeleteResponse__Output } from '../../mesh/v1/DeleteResponse';
import type { GetRequest as _mesh_v1_GetRequest, GetRequest__Output as _mesh_v1_GetRequest__Output } from '../../mesh/v1/GetRequest';
import type { GetResponse as _mesh_v1_GetResponse, GetResponse__Output as _mesh_v1_GetResponse__Output } from '../../mesh/v1/GetResponse';
import type { StatusRequest as _mesh_v1_StatusRequest, StatusRequest__Output as _mesh_v1_StatusRequest__Output } from '../../mesh/v1/StatusRequest';
import type { StatusResponse as _mesh_v1_StatusResponse, StatusResponse__Output as _mesh_v1_StatusResponse__Output } from '../../mesh/v1/StatusResponse';

export interface AdminClient extends grpc.Client {
  /**
   * Validates and stores resources, all or nothing: if any document is invalid, or
   * the resulting set would not validate (a route to a missing Service), nothing of
   * the request is stored.
   */
  Apply(argument: _mesh_v1_ApplyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  Apply(argument: _mesh_v1_ApplyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  Apply(argument: _mesh_v1_ApplyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  Apply(argument: _mesh_v1_ApplyRequest, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Validates and stores resources, all or nothing: if any document is invalid, or
   * the resulting set would not validate (a route to a missing Service), nothing of
   * the request is stored.
   */
  apply(argument: _mesh_v1_ApplyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  apply(argument: _mesh_v1_ApplyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  apply(argument: _mesh_v1_ApplyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  apply(argument: _mesh_v1_ApplyRequest, callback: grpc.requestCallback<_mesh_v1_ApplyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Issues a join token for one workload identity.
   */
  CreateToken(argument: _mesh_v1_CreateTokenRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateToken(argument: _mesh_v1_CreateTokenRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateToken(argument: _mesh_v1_CreateTokenRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  CreateToken(argument: _mesh_v1_CreateTokenRequest, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Issues a join token for one workload identity.
   */
  createToken(argument: _mesh_v1_CreateTokenRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  createToken(argument: _mesh_v1_CreateTokenRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  createToken(argument: _mesh_v1_CreateTokenRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  createToken(argument: _mesh_v1_CreateTokenRequest, callback: grpc.requestCallback<_mesh_v1_CreateTokenResponse__Output>): grpc.ClientUnaryCall;
  
  Delete(argument: _mesh_v1_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _mesh_v1_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _mesh_v1_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _mesh_v1_DeleteRequest, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _mesh_v1_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _mesh_v1_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _mesh_v1_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _mesh_v1_DeleteRequest, callback: grpc.requestCallback<_mesh_v1_DeleteResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Reads stored resources (not the effective ones pushed to proxies: Services come
   * back with the endpoints the operator wrote, not registered ones).
   */
  Get(argument: _mesh_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _mesh_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _mesh_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _mesh_v1_GetRequest, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Reads stored resources (not the effective ones pushed to proxies: Services come
   * back with the endpoints the operator wrote, not registered ones).
   */
  get(argument: _mesh_v1_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _mesh_v1_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _mesh_v1_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _mesh_v1_GetRequest, callback: grpc.requestCallback<_mesh_v1_GetResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Control plane health and the connected proxies, for `meshctl check`.
   */
  Status(argument: _mesh_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _mesh_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _mesh_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _mesh_v1_StatusRequest, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Control plane health and the connected proxies, for `meshctl check`.
   */
  status(argument: _mesh_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _mesh_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _mesh_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _mesh_v1_StatusRequest, callback: grpc.requestCallback<_mesh_v1_StatusResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Validates and stores resources, all or nothing: if any document is invalid, or
   * the resulting set would not validate (a route to a missing Service), nothing of
   * the request is stored.
   */
  Apply: grpc.handleUnaryCall<_mesh_v1_ApplyRequest__Output, _mesh_v1_ApplyResponse>;
  
  /**
   * Issues a join token for one workload identity.
   */
  CreateToken: grpc.handleUnaryCall<_mesh_v1_CreateTokenRequest__Output, _mesh_v1_CreateTokenResponse>;
  
  Delete: grpc.handleUnaryCall<_mesh_v1_DeleteRequest__Output, _mesh_v1_DeleteResponse>;
  
  /**
   * Reads stored resources (not the effective ones pushed to proxies: Services come
   * back with the endpoints the operator wrote, not registered ones).
   */
  Get: grpc.handleUnaryCall<_mesh_v1_GetRequest__Output, _mesh_v1_GetResponse>;
  
  /**
   * Control plane health and the connected proxies, for `meshctl check`.
   */
  Status: grpc.handleUnaryCall<_mesh_v1_StatusRequest__Output, _mesh_v1_StatusResponse>;
  
}

export interface AdminDefinition extends grpc.ServiceDefinition {
  Apply: MethodDefinition<_mesh_v1_ApplyRequest, _mesh_v1_ApplyResponse, _mesh_v1_ApplyRequest__Output, _mesh_v1_ApplyResponse__Output>
  CreateToken: MethodDefinition<_mesh_v1_CreateTokenRequest, _mesh_v1_CreateTokenResponse, _mesh_v1_CreateTokenRequest__Output, _mesh_v1_CreateTokenResponse__Output>
  Delete: MethodDefinition<_mesh_v1_DeleteRequest, _mesh_v1_DeleteResponse, _mesh_v1_DeleteRequest__Output, _mesh_v1_DeleteResponse__Output>
  Get: MethodDefinition<_mesh_v1_GetRequest, _mesh_v1_GetResponse, _mesh_v1_GetRequest__Output, _mesh_v1_GetResponse__Output>
  Status: MethodDefinition<_mesh_v1_StatusRequest, _mesh_v1_StatusResponse, _mesh_v1_StatusRequest__Output, _mesh_v1_StatusResponse__Output>
}
