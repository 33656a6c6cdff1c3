// Original file: proto/mesh/v1/admin.proto


export interface GetRequest {
  /**
   * Canonical kind ("Service", "HTTPRoute", ...). meshctl maps the user's spellings
   * (`svc`, `services`, `httproutes`) before calling. Empty: every kind.
   */
  'kind'?: (string);
  /**
   * Empty: every namespace.
   */
  'namespace'?: (string);
  /**
   * Empty: every resource of the kind. Given: exactly one, or NOT_FOUND; requires
   * `kind` (INVALID_ARGUMENT otherwise); empty namespace then means "default".
   */
  'name'?: (string);
}

export interface GetRequest__Output {
  /**
   * Canonical kind ("Service", "HTTPRoute", ...). meshctl maps the user's spellings
   * (`svc`, `services`, `httproutes`) before calling. Empty: every kind.
   */
  'kind': (string);
  /**
   * Empty: every namespace.
   */
  'namespace': (string);
  /**
   * Empty: every resource of the kind. Given: exactly one, or NOT_FOUND; requires
   * `kind` (INVALID_ARGUMENT otherwise); empty namespace then means "default".
   */
  'name': (string);
}
