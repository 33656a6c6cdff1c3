// Original file: proto/mesh/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface DeleteResponse {
  /**
   * Store version after the delete.
   */
  'version'?: (number | string | Long);
}

export interface DeleteResponse__Output {
  /**
   * Store version after the delete.
   */
  'version': (string);
}
