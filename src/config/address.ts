import { isIP } from 'node:net'
import { describeValue } from './errors.js'

/** A socket address split into its parts; `host` is an IP without brackets. */
export interface HostPort {
  host: string
  port: number
  /** 4 or 6. */
  family: 4 | 6
}

export interface HostPortOptions {
  /** Port 0 asks the kernel for an ephemeral port: fine for listeners, never for a destination. */
  allowPortZero?: boolean
}

const PORT = /^\d{1,5}$/

/**
 * Parses `IPv4:PORT` or `[IPv6]:PORT`. Hostnames are rejected: the data plane connects
 * and binds to IP addresses only (standalone mode has no resolver in the forwarding path).
 * Throws a RangeError whose message is the "expected ..., got ..." text.
 */
export function parseHostPort(value: unknown, options: HostPortOptions = {}): HostPort {
  if (typeof value !== 'string') {
    throw new RangeError(`expected HOST:PORT as a string, got ${describeValue(value)}`)
  }
  let host: string
  let portText: string
  if (value.startsWith('[')) {
    const close = value.indexOf(']')
    if (close < 0 || value[close + 1] !== ':') {
      throw new RangeError(`expected HOST:PORT, got ${describeValue(value)}`)
    }
    host = value.slice(1, close)
    portText = value.slice(close + 2)
    // Zone IDs (fe80::1%eth0) are not accepted by the engine's address parser.
    if (isIP(host) !== 6 || host.includes('%')) {
      throw new RangeError(`expected HOST:PORT with an IPv6 address inside the brackets, got ${describeValue(value)}`)
    }
  } else {
    const colon = value.lastIndexOf(':')
    if (colon < 0) throw new RangeError(`expected HOST:PORT, got ${describeValue(value)}`)
    host = value.slice(0, colon)
    portText = value.slice(colon + 1)
    if (host.includes(':')) {
      throw new RangeError(`expected HOST:PORT with an IPv6 address in brackets (e.g. "[::1]:8080"), got ${describeValue(value)}`)
    }
    if (isIP(host) !== 4) {
      throw new RangeError(`expected HOST:PORT with an IP address, got ${describeValue(value)}`)
    }
  }
  const port = Number(portText)
  const minPort = options.allowPortZero ? 0 : 1
  if (!PORT.test(portText) || port < minPort || port > 65535) {
    throw new RangeError(`expected HOST:PORT with a port from ${minPort} to 65535, got ${describeValue(value)}`)
  }
  return { host, port, family: host.includes(':') ? 6 : 4 }
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** True for 0.0.0.0 and :: (every interface), which overlap any address on the same port. */
export function isUnspecifiedAddress(host: string): boolean {
  return host === '0.0.0.0' || /^[0:]+$/.test(host)
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopbackAddress(host: string): boolean {
  return /^127\./.test(host) || /^(?:0{0,4}:){2,7}0{0,3}1$/.test(host)
}
