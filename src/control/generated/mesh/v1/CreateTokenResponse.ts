// Original file: proto/mesh/v1/admin.proto

import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../google/protobuf/Timestamp';

export interface CreateTokenResponse {
  /**
   * The secret, shown once: the server stores only a hash of it (SHA-256; tokens are
   * long random strings, so a slow password hash buys nothing), and cannot show it
   * again.
   */
  'token'?: (string);
  /**
   * Non-secret identifier of the token, for listing and revoking later.
   */
  'tokenId'?: (string);
  'createdAt'?: (_google_protobuf_Timestamp | null);
}

export interface CreateTokenResponse__Output {
  /**
   * The secret, shown once: the server stores only a hash of it (SHA-256; tokens are
   * long random strings, so a slow password hash buys nothing), and cannot show it
   * again.
   */
  'token': (string);
  /**
   * Non-secret identifier of the token, for listing and revoking later.
   */
  'tokenId': (string);
  'createdAt': (_google_protobuf_Timestamp__Output | null);
}
