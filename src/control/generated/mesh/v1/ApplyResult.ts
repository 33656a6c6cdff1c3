// Original file: proto/mesh/v1/admin.proto

import type { ResourceKey as _mesh_v1_ResourceKey, ResourceKey__Output as _mesh_v1_ResourceKey__Output } from '../../mesh/v1/ResourceKey';
import type { ApplyAction as _mesh_v1_ApplyAction, ApplyAction__Output as _mesh_v1_ApplyAction__Output } from '../../mesh/v1/ApplyAction';
import type { Long } from '@grpc/proto-loader';

export interface ApplyResult {
  'key'?: (_mesh_v1_ResourceKey | null);
  'action'?: (_mesh_v1_ApplyAction);
  /**
   * The resource's version after the apply (unchanged for APPLY_ACTION_UNCHANGED).
   */
  'resourceVersion'?: (number | string | Long);
}

export interface ApplyResult__Output {
  'key': (_mesh_v1_ResourceKey__Output | null);
  'action': (_mesh_v1_ApplyAction__Output);
  /**
   * The resource's version after the apply (unchanged for APPLY_ACTION_UNCHANGED).
   */
  'resourceVersion': (string);
}
