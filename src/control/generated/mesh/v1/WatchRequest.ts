// Original file: proto/mesh/v1/discovery.proto

import type { Hello as _mesh_v1_Hello, Hello__Output as _mesh_v1_Hello__Output } from '../../mesh/v1/Hello';
import type { Ack as _mesh_v1_Ack, Ack__Output as _mesh_v1_Ack__Output } from '../../mesh/v1/Ack';
import type { Nack as _mesh_v1_Nack, Nack__Output as _mesh_v1_Nack__Output } from '../../mesh/v1/Nack';

export interface WatchRequest {
  /**
   * First message of a stream only.
   */
  'hello'?: (_mesh_v1_Hello | null);
  'ack'?: (_mesh_v1_Ack | null);
  'nack'?: (_mesh_v1_Nack | null);
  'requestType'?: "hello"|"ack"|"nack";
}

export interface WatchRequest__Output {
  /**
   * First message of a stream only.
   */
  'hello'?: (_mesh_v1_Hello__Output | null);
  'ack'?: (_mesh_v1_Ack__Output | null);
  'nack'?: (_mesh_v1_Nack__Output | null);
  'requestType'?: "hello"|"ack"|"nack";
}
