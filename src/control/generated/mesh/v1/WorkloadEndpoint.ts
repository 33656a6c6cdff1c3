// Original file: proto/mesh/v1/registry.proto


/**
 * One address a workload serves on. Mirrors the resource model's Service endpoint
 * (`address: IP:PORT`, weight, labels) with the host and port split, because the
 * registering proxy knows them separately (the advertise address, the inbound port).
 */
export interface WorkloadEndpoint {
  /**
   * IP address (v4 or v6, no brackets, no port). By default the proxy sends the local
   * address of its connection to the control plane; `--advertise-address` overrides.
   */
  'address'?: (string);
  /**
   * 1-65535.
   */
  'port'?: (number);
  /**
   * What the inbound port speaks, in the resource model's vocabulary for
   * Proxy inbound[].protocol: "auto" | "http1" | "http2" | "grpc" | "tcp". A string,
   * not an enum, so the single list of valid values stays the TS validator's.
   */
  'protocol'?: (string);
  /**
   * Copied into the Service endpoint's `labels`.
   */
  'labels'?: ({[key: string]: string});
  /**
   * Relative share of traffic. 0 means "not set" and is stored as the model's
   * default, 1.
   */
  'weight'?: (number);
  /**
   * The inbound port's mesh mTLS mode, in the resource model's vocabulary for Proxy
   * inbound[].mtls: "strict" | "permissive" | "off". Ports that take mTLS ("strict",
   * "permissive") are pushed to clients with the workload's SPIFFE id, so clients
   * originate mTLS to them and check that id; "off", or empty (a proxy that predates
   * this field), are pushed without one and reached in plaintext.
   */
  'mtls'?: (string);
}

/**
 * One address a workload serves on. Mirrors the resource model's Service endpoint
 * (`address: IP:PORT`, weight, labels) with the host and port split, because the
 * registering proxy knows them separately (the advertise address, the inbound port).
 */
export interface WorkloadEndpoint__Output {
  /**
   * IP address (v4 or v6, no brackets, no port). By default the proxy sends the local
   * address of its connection to the control plane; `--advertise-address` overrides.
   */
  'address': (string);
  /**
   * 1-65535.
   */
  'port': (number);
  /**
   * What the inbound port speaks, in the resource model's vocabulary for
   * Proxy inbound[].protocol: "auto" | "http1" | "http2" | "grpc" | "tcp". A string,
   * not an enum, so the single list of valid values stays the TS validator's.
   */
  'protocol': (string);
  /**
   * Copied into the Service endpoint's `labels`.
   */
  'labels': ({[key: string]: string});
  /**
   * Relative share of traffic. 0 means "not set" and is stored as the model's
   * default, 1.
   */
  'weight': (number);
  /**
   * The inbound port's mesh mTLS mode, in the resource model's vocabulary for Proxy
   * inbound[].mtls: "strict" | "permissive" | "off". Ports that take mTLS ("strict",
   * "permissive") are pushed to clients with the workload's SPIFFE id, so clients
   * originate mTLS to them and check that id; "off", or empty (a proxy that predates
   * this field), are pushed without one and reached in plaintext.
   */
  'mtls': (string);
}
