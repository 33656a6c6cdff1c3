// Original file: proto/mesh/v1/admin.proto


export interface StoreStatus {
  /**
   * "file" or "etcd".
   */
  'type'?: (string);
  /**
   * The server proved it can write (a probe write, not just an open handle).
   */
  'writable'?: (boolean);
  /**
   * One line when not writable; empty otherwise.
   */
  'error'?: (string);
  /**
   * For "file": the data dir; for "etcd": the endpoints. Shown by `meshctl check`.
   */
  'location'?: (string);
}

export interface StoreStatus__Output {
  /**
   * "file" or "etcd".
   */
  'type': (string);
  /**
   * The server proved it can write (a probe write, not just an open handle).
   */
  'writable': (boolean);
  /**
   * One line when not writable; empty otherwise.
   */
  'error': (string);
  /**
   * For "file": the data dir; for "etcd": the endpoints. Shown by `meshctl check`.
   */
  'location': (string);
}
