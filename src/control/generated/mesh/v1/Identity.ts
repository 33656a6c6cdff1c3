// Original file: proto/mesh/v1/identity.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CertifyRequest as _mesh_v1_CertifyRequest, CertifyRequest__Output as _mesh_v1_CertifyRequest__Output } from '../../mesh/v1/CertifyRequest';
import type { CertifyResponse as _mesh_v1_CertifyResponse, CertifyResponse__Output as _mesh_v1_CertifyResponse__Output } from '../../mesh/v1/CertifyResponse';
import type { GetTrustBundleRequest as _mesh_v1_GetTrustBundleRequest, GetTrustBundleRequest__Output as _mesh_v1_GetTrustBundleRequest__Output } from '../../mesh/v1/GetTrustBundleRequest';
import type { GetTrustBundleResponse as _mesh_v1_GetTrustBundleResponse, GetTrustBundleResponse__Output as _mesh_v1_GetTrustBundleResponse__Output } from '../../mesh/v1/GetTrustBundleResponse';

export interface IdentityClient extends grpc.Client {
  /**
   * Signs a certificate for the (namespace, service) of the caller's join token.
   */
  Certify(argument: _mesh_v1_CertifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _mesh_v1_CertifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _mesh_v1_CertifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  Certify(argument: _mesh_v1_CertifyRequest, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Signs a certificate for the (namespace, service) of the caller's join token.
   */
  certify(argument: _mesh_v1_CertifyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _mesh_v1_CertifyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _mesh_v1_CertifyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  certify(argument: _mesh_v1_CertifyRequest, callback: grpc.requestCallback<_mesh_v1_CertifyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The trust bundle of the mesh, for clients that need the roots without a certificate.
   */
  GetTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  GetTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  GetTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  GetTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The trust bundle of the mesh, for clients that need the roots without a certificate.
   */
  getTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  getTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  getTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  getTrustBundle(argument: _mesh_v1_GetTrustBundleRequest, callback: grpc.requestCallback<_mesh_v1_GetTrustBundleResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface IdentityHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Signs a certificate for the (namespace, service) of the caller's join token.
   */
  Certify: grpc.handleUnaryCall<_mesh_v1_CertifyRequest__Output, _mesh_v1_CertifyResponse>;
  
  /**
   * The trust bundle of the mesh, for clients that need the roots without a certificate.
   */
  GetTrustBundle: grpc.handleUnaryCall<_mesh_v1_GetTrustBundleRequest__Output, _mesh_v1_GetTrustBundleResponse>;
  
}

export interface IdentityDefinition extends grpc.ServiceDefinition {
  Certify: MethodDefinition<_mesh_v1_CertifyRequest, _mesh_v1_CertifyResponse, _mesh_v1_CertifyRequest__Output, _mesh_v1_CertifyResponse__Output>
  GetTrustBundle: MethodDefinition<_mesh_v1_GetTrustBundleRequest, _mesh_v1_GetTrustBundleResponse, _mesh_v1_GetTrustBundleRequest__Output, _mesh_v1_GetTrustBundleResponse__Output>
}
