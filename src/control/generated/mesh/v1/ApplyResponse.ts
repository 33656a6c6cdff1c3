// Original file: proto/mesh/v1/admin.proto

import type { ApplyResult as _mesh_v1_ApplyResult, ApplyResult__Output as _mesh_v1_ApplyResult__Output } from '../../mesh/v1/ApplyResult';
import type { Long } from '@grpc/proto-loader';

export interface ApplyResponse {
  /**
   * One per document, in request order. Empty when `errors` is not.
   */
  'results'?: (_mesh_v1_ApplyResult)[];
  /**
   * Every problem found, one self-contained line each, in the validator's format.
   * Non-empty means nothing was stored. Carried in the response rather than as an
   * RPC status because a status holds a single message and meshctl must print them
   * all.
   */
  'errors'?: (string)[];
  /**
   * Store version after the apply.
   */
  'version'?: (number | string | Long);
  /**
   * Accepted-but-not-enforced notices, exactly as the standalone proxy prints them.
   */
  'warnings'?: (string)[];
}

export interface ApplyResponse__Output {
  /**
   * One per document, in request order. Empty when `errors` is not.
   */
  'results': (_mesh_v1_ApplyResult__Output)[];
  /**
   * Every problem found, one self-contained line each, in the validator's format.
   * Non-empty means nothing was stored. Carried in the response rather than as an
   * RPC status because a status holds a single message and meshctl must print them
   * all.
   */
  'errors': (string)[];
  /**
   * Store version after the apply.
   */
  'version': (string);
  /**
   * Accepted-but-not-enforced notices, exactly as the standalone proxy prints them.
   */
  'warnings': (string)[];
}
