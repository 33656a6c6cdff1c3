// Original file: proto/mesh/v1/discovery.proto

import type { Long } from '@grpc/proto-loader';

export interface Ack {
  'version'?: (number | string | Long);
  'nonce'?: (string);
}

export interface Ack__Output {
  'version': (string);
  'nonce': (string);
}
