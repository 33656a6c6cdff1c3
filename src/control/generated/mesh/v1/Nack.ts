// Original file: proto/mesh/v1/discovery.proto

import type { Long } from '@grpc/proto-loader';

export interface Nack {
  'version'?: (number | string | Long);
  'nonce'?: (string);
  /**
   * One line, naming what was wrong and where, in the validator's format
   * (`control-plane: document 3 (HTTPRoute "r"): rules[0].backendRefs[0].name: ...`)
   * or the engine's apply error (`listen 0.0.0.0:4143: address in use`). Shown
   * verbatim by `meshctl check`. When there are several problems, the first one
   * followed by "(and N more)".
   */
  'error'?: (string);
}

export interface Nack__Output {
  'version': (string);
  'nonce': (string);
  /**
   * One line, naming what was wrong and where, in the validator's format
   * (`control-plane: document 3 (HTTPRoute "r"): rules[0].backendRefs[0].name: ...`)
   * or the engine's apply error (`listen 0.0.0.0:4143: address in use`). Shown
   * verbatim by `meshctl check`. When there are several problems, the first one
   * followed by "(and N more)".
   */
  'error': (string);
}
