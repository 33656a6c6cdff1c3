// Original file: proto/mesh/v1/resource.proto


/**
 * Identifies one resource. Kind and namespace use the resource model's spelling
 * exactly ("Service", "HTTPRoute", ...; namespace "default" when the document had
 * none): keys are compared byte for byte, so no aliasing happens on the wire.
 */
export interface ResourceKey {
  'kind'?: (string);
  'namespace'?: (string);
  'name'?: (string);
}

/**
 * Identifies one resource. Kind and namespace use the resource model's spelling
 * exactly ("Service", "HTTPRoute", ...; namespace "default" when the document had
 * none): keys are compared byte for byte, so no aliasing happens on the wire.
 */
export interface ResourceKey__Output {
  'kind': (string);
  'namespace': (string);
  'name': (string);
}
