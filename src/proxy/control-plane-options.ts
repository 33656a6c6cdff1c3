// The embedding API's connected-mode options, checked once at start so a mistake is one
// clear TypeError naming the option, not a failure deep inside a retry loop.

import { isIP } from 'node:net'

import { checkBackoffOptions } from '../control/backoff.js'
import type { ResourceKey } from '../control/proto.js'
import { formatHostPort, parseHostPort } from './address.js'

export interface ControlPlaneOptions {
  /** mesh-control's `HOST:PORT` (a host name or IP; IPv6 in brackets). */
  address: string
  /** The workload's service name, a DNS label: the Proxy's name and the Service it registers under. */
  name: string
  /** Default `default`. */
  namespace?: string
  /** The join token (`meshctl token create`); sent as `authorization: Bearer <token>` metadata. */
  token: string
  /**
   * The IP registered for the inbound ports. Default: the local address of a TCP
   * connection to the control plane (the interface the control plane sees this host on).
   */
  advertiseAddress?: string
  /**
   * The Services this proxy's traffic needs, `name` (in `namespace`) or `name.namespace`;
   * routes to them and their backends come along. Default: every Service in the mesh.
   */
  services?: readonly string[]
  /**
   * Reconnect and retry schedule: exponential from `baseMs` (default 250) up to `capMs`
   * (default 10000), equal jitter; reset once a stream delivers a push.
   */
  backoff?: { baseMs?: number; capMs?: number }
  /** How long `close()` waits for Deregister before draining (default 1000 ms). */
  deregisterTimeoutMs?: number
  /** Default `<hostname>-<pid>-<random>`, unique per proxy and stable for its life. */
  proxyId?: string
}

/** The options after checking: defaults applied, address canonical, services as keys. */
export interface ControlPlaneSettings {
  address: string
  name: string
  namespace: string
  token: string
  advertiseAddress?: string
  wants: ResourceKey[]
  backoff?: { baseMs?: number; capMs?: number }
  deregisterTimeoutMs: number
  proxyId?: string
}

/** The resource model's rule for Service and Proxy names and namespaces. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/

export function isDnsLabel(value: string): boolean {
  return value.length <= 63 && DNS_LABEL.test(value)
}

export const DNS_LABEL_EXPECTED = 'a DNS label (lower-case letters, digits and "-", at most 63 characters)'

/** `orders` or `orders.shop` -> the Service key (namespace '' means the proxy's own); null if malformed. */
export function parseWantedService(text: string): { name: string; namespace: string } | null {
  const dot = text.indexOf('.')
  const name = dot === -1 ? text : text.slice(0, dot)
  const namespace = dot === -1 ? '' : text.slice(dot + 1)
  if (!isDnsLabel(name)) return null
  if (dot !== -1 && !isDnsLabel(namespace)) return null
  return { name, namespace }
}

export function checkControlPlaneOptions(options: ControlPlaneOptions): ControlPlaneSettings {
  const where = 'controlPlane'
  const address = typeof options.address === 'string' ? parseHostPort(options.address) : null
  if (address === null || address.port === 0) {
    throw new TypeError(`${where}.address: expected HOST:PORT, got ${JSON.stringify(options.address)}`)
  }
  if (typeof options.name !== 'string' || !isDnsLabel(options.name)) {
    throw new TypeError(`${where}.name: expected ${DNS_LABEL_EXPECTED}, got ${JSON.stringify(options.name)}`)
  }
  const namespace = options.namespace ?? 'default'
  if (typeof namespace !== 'string' || !isDnsLabel(namespace)) {
    throw new TypeError(`${where}.namespace: expected ${DNS_LABEL_EXPECTED}, got ${JSON.stringify(options.namespace)}`)
  }
  if (typeof options.token !== 'string' || options.token.trim() === '' || /\s/.test(options.token)) {
    throw new TypeError(`${where}.token: expected a join token (non-empty, no spaces)`)
  }
  if (options.advertiseAddress !== undefined && isIP(options.advertiseAddress) === 0) {
    throw new TypeError(`${where}.advertiseAddress: expected an IP address, got ${JSON.stringify(options.advertiseAddress)}`)
  }
  const wants: ResourceKey[] = []
  for (const [i, text] of (options.services ?? []).entries()) {
    const parsed = typeof text === 'string' ? parseWantedService(text) : null
    if (parsed === null) {
      throw new TypeError(`${where}.services[${i}]: expected NAME or NAME.NAMESPACE (DNS labels), got ${JSON.stringify(text)}`)
    }
    wants.push({ kind: 'Service', namespace: parsed.namespace || namespace, name: parsed.name })
  }
  if (options.backoff !== undefined) checkBackoffOptions(options.backoff, `${where}.backoff`)
  const deregisterTimeoutMs = options.deregisterTimeoutMs ?? 1_000
  if (!(Number.isFinite(deregisterTimeoutMs) && deregisterTimeoutMs >= 0)) {
    throw new TypeError(`${where}.deregisterTimeoutMs: expected a number of ms, got ${options.deregisterTimeoutMs}`)
  }
  if (options.proxyId !== undefined && (typeof options.proxyId !== 'string' || options.proxyId === '')) {
    throw new TypeError(`${where}.proxyId: expected a non-empty string`)
  }
  return {
    address: formatHostPort(address.host, address.port),
    name: options.name,
    namespace,
    token: options.token,
    ...(options.advertiseAddress === undefined ? {} : { advertiseAddress: options.advertiseAddress }),
    wants,
    ...(options.backoff === undefined ? {} : { backoff: { ...options.backoff } }),
    deregisterTimeoutMs,
    ...(options.proxyId === undefined ? {} : { proxyId: options.proxyId }),
  }
}
