// Original file: proto/mesh/v1/admin.proto

export const ReplyState = {
  /**
   * No push sent yet on the current stream (just connected, scope being computed).
   */
  REPLY_STATE_UNSPECIFIED: 'REPLY_STATE_UNSPECIFIED',
  /**
   * A push is outstanding: no reply yet.
   */
  REPLY_STATE_PENDING: 'REPLY_STATE_PENDING',
  REPLY_STATE_ACK: 'REPLY_STATE_ACK',
  REPLY_STATE_NACK: 'REPLY_STATE_NACK',
} as const;

export type ReplyState =
  /**
   * No push sent yet on the current stream (just connected, scope being computed).
   */
  | 'REPLY_STATE_UNSPECIFIED'
  | 0
  /**
   * A push is outstanding: no reply yet.
   */
  | 'REPLY_STATE_PENDING'
  | 1
  | 'REPLY_STATE_ACK'
  | 2
  | 'REPLY_STATE_NACK'
  | 3

export type ReplyState__Output = typeof ReplyState[keyof typeof ReplyState]
