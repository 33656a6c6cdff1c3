// Original file: proto/mesh/v1/admin.proto

import type { Resource as _mesh_v1_Resource, Resource__Output as _mesh_v1_Resource__Output } from '../../mesh/v1/Resource';
import type { Long } from '@grpc/proto-loader';

export interface GetResponse {
  /**
   * Sorted by kind, namespace, name, so output is stable.
   */
  'resources'?: (_mesh_v1_Resource)[];
  'version'?: (number | string | Long);
}

export interface GetResponse__Output {
  /**
   * Sorted by kind, namespace, name, so output is stable.
   */
  'resources': (_mesh_v1_Resource__Output)[];
  'version': (string);
}
