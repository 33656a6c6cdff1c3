// Original file: proto/mesh/v1/admin.proto

export const ApplyAction = {
  /**
   * Never sent; the zero value guards against a peer that forgot to set the field.
   */
  APPLY_ACTION_UNSPECIFIED: 'APPLY_ACTION_UNSPECIFIED',
  /**
   * The key did not exist before.
   */
  APPLY_ACTION_CREATED: 'APPLY_ACTION_CREATED',
  /**
   * The key existed and its normalised body changed.
   */
  APPLY_ACTION_CONFIGURED: 'APPLY_ACTION_CONFIGURED',
  /**
   * The key existed with an identical normalised body: no write, no version change,
   * no push to any proxy (re-applying a file is free).
   */
  APPLY_ACTION_UNCHANGED: 'APPLY_ACTION_UNCHANGED',
} as const;

export type ApplyAction =
  /**
   * Never sent; the zero value guards against a peer that forgot to set the field.
   */
  | 'APPLY_ACTION_UNSPECIFIED'
  | 0
  /**
   * The key did not exist before.
   */
  | 'APPLY_ACTION_CREATED'
  | 1
  /**
   * The key existed and its normalised body changed.
   */
  | 'APPLY_ACTION_CONFIGURED'
  | 2
  /**
   * The key existed with an identical normalised body: no write, no version change,
   * no push to any proxy (re-applying a file is free).
   */
  | 'APPLY_ACTION_UNCHANGED'
  | 3

export type ApplyAction__Output = typeof ApplyAction[keyof typeof ApplyAction]
