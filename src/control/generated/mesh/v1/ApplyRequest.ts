// Original file: proto/mesh/v1/admin.proto

import type { ApplyDocument as _mesh_v1_ApplyDocument, ApplyDocument__Output as _mesh_v1_ApplyDocument__Output } from '../../mesh/v1/ApplyDocument';

export interface ApplyRequest {
  'documents'?: (_mesh_v1_ApplyDocument)[];
  /**
   * Label for error messages, normally the file name as the user typed it
   * (`mesh.yaml: document 2 (Service "orders"): port: ...`). Empty: "request".
   */
  'source'?: (string);
}

export interface ApplyRequest__Output {
  'documents': (_mesh_v1_ApplyDocument__Output)[];
  /**
   * Label for error messages, normally the file name as the user typed it
   * (`mesh.yaml: document 2 (Service "orders"): port: ...`). Empty: "request".
   */
  'source': (string);
}
