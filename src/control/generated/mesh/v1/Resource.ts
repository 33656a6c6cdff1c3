// Original file: proto/mesh/v1/resource.proto

import type { Long } from '@grpc/proto-loader';

export interface Resource {
  /**
   * Same as key.kind etc.; flattened because every consumer reads them and a nested
   * message would be null-checked at every use.
   */
  'kind'?: (string);
  'namespace'?: (string);
  'name'?: (string);
  /**
   * Store revision at which this resource last changed (monotonic per control plane
   * store, shared by all replicas of an etcd-backed store). Lets a receiver skip
   * re-validating and re-compiling a resource it already holds at this version, and
   * lets `meshctl get` show it.
   */
  'resourceVersion'?: (number | string | Long);
  /**
   * The normalised resource (every default applied, enums canonical) as one JSON
   * object, UTF-8. A normalised resource is itself a valid input document: it passes
   * the validator unchanged, which is exactly what the receiver does with it.
   * 
   * `string`, not `bytes`: proto3 guarantees a string is valid UTF-8 (checked on
   * decode by both protobufjs and other runtimes), JSON is text by definition, the
   * TS side hands it straight to JSON.parse without a Buffer round trip, and tools
   * such as grpcurl show it readably.
   */
  'json'?: (string);
}

export interface Resource__Output {
  /**
   * Same as key.kind etc.; flattened because every consumer reads them and a nested
   * message would be null-checked at every use.
   */
  'kind': (string);
  'namespace': (string);
  'name': (string);
  /**
   * Store revision at which this resource last changed (monotonic per control plane
   * store, shared by all replicas of an etcd-backed store). Lets a receiver skip
   * re-validating and re-compiling a resource it already holds at this version, and
   * lets `meshctl get` show it.
   */
  'resourceVersion': (string);
  /**
   * The normalised resource (every default applied, enums canonical) as one JSON
   * object, UTF-8. A normalised resource is itself a valid input document: it passes
   * the validator unchanged, which is exactly what the receiver does with it.
   * 
   * `string`, not `bytes`: proto3 guarantees a string is valid UTF-8 (checked on
   * decode by both protobufjs and other runtimes), JSON is text by definition, the
   * TS side hands it straight to JSON.parse without a Buffer round trip, and tools
   * such as grpcurl show it readably.
   */
  'json': (string);
}
