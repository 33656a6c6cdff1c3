/**
 * Registered endpoints: checking what a proxy sends in RegisterRequest and turning it
 * into the resource model's Service endpoints. Everything accepted here must keep the
 * effective Service valid for the shared validator on the proxies, so the checks end
 * with that validator itself.
 */
import { isIP } from 'node:net'
import {
  API_VERSION,
  ConfigError,
  INBOUND_PROTOCOLS,
  MTLS_MODES,
  formatHostPort,
  validateResources,
  type Endpoint,
  type InboundProtocol,
  type MtlsMode,
} from '../../config/index.js'
import type { WorkloadEndpoint__Output } from '../../control/proto.js'

/** A registered endpoint: the model's Endpoint plus what the inbound port speaks. */
export interface RegisteredEndpoint extends Endpoint {
  protocol: InboundProtocol
  /** The inbound port's mesh mTLS mode: strict and permissive ports take mTLS. */
  mtls: MtlsMode
}

/** Thrown with one line naming the field (`endpoints[1].port: expected 1-65535, got 0`). */
export class EndpointError extends Error {}

const MAX_ENDPOINTS = 64

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || /^[0:]+$/.test(ip)
}

/**
 * Checks and converts the endpoints of one registration. Throws an EndpointError for
 * the first problem.
 */
export function toRegisteredEndpoints(
  endpoints: readonly WorkloadEndpoint__Output[],
  service: { namespace: string; name: string },
): RegisteredEndpoint[] {
  if (endpoints.length > MAX_ENDPOINTS) {
    throw new EndpointError(`endpoints: expected at most ${MAX_ENDPOINTS} endpoints, got ${endpoints.length}`)
  }
  const seen = new Map<string, number>()
  const converted = endpoints.map((endpoint, index): RegisteredEndpoint => {
    const field = `endpoints[${index}]`
    const ip = endpoint.address
    if (isIP(ip) === 0 || ip.includes('%')) {
      throw new EndpointError(`${field}.address: expected an IP address without port or brackets, got ${JSON.stringify(ip)}`)
    }
    if (isUnspecified(ip)) {
      // A listen address, not a destination: the proxy must advertise a reachable one.
      throw new EndpointError(`${field}.address: expected a reachable IP address, got ${JSON.stringify(ip)} (set --advertise-address)`)
    }
    if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65535) {
      throw new EndpointError(`${field}.port: expected 1-65535, got ${endpoint.port}`)
    }
    const protocol = endpoint.protocol === '' ? 'auto' : endpoint.protocol
    if (!(INBOUND_PROTOCOLS as readonly string[]).includes(protocol)) {
      throw new EndpointError(`${field}.protocol: expected one of ${INBOUND_PROTOCOLS.join(', ')}; got ${JSON.stringify(protocol)}`)
    }
    const mtls = endpoint.mtls === '' ? 'off' : endpoint.mtls
    if (!(MTLS_MODES as readonly string[]).includes(mtls)) {
      throw new EndpointError(`${field}.mtls: expected one of ${MTLS_MODES.join(', ')}; got ${JSON.stringify(mtls)}`)
    }
    const address = formatHostPort(ip.toLowerCase(), endpoint.port)
    const first = seen.get(address)
    if (first !== undefined) throw new EndpointError(`${field}.address: ${address} is a duplicate of endpoints[${first}]`)
    seen.set(address, index)
    return {
      address,
      weight: endpoint.weight === 0 ? 1 : endpoint.weight,
      labels: { ...endpoint.labels },
      protocol: protocol as InboundProtocol,
      mtls: mtls as MtlsMode,
    }
  })
  // Weights and labels: exactly the model's rules, with the model's messages (the field
  // paths coincide: endpoints[N].weight, endpoints[N].labels["k"]).
  try {
    validateResources(
      [
        {
          apiVersion: API_VERSION,
          kind: 'Service',
          name: service.name,
          namespace: service.namespace,
          endpoints: converted.map(({ address, weight, labels }) => ({ address, weight, labels })),
        },
      ],
      { requireProxy: false, fileLabel: 'register' },
    )
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const line = err.errors[0] as string
    throw new EndpointError(line.replace(/^register: document 1(?: \([^)]*\))?: /, ''))
  }
  return converted
}

/** The model's Endpoint for a registered one (protocol is informational). */
export function asServiceEndpoint(endpoint: RegisteredEndpoint): Endpoint {
  return { address: endpoint.address, weight: endpoint.weight, labels: endpoint.labels }
}
