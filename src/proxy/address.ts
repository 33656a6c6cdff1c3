// HOST:PORT strings as operators write them: `127.0.0.1:4191`, `[::1]:4191`, `localhost:4191`.

import { isIP } from 'node:net'

export interface HostPort {
  host: string
  port: number
}

/** Parses `HOST:PORT` (IPv6 in brackets); returns null when it is not one. */
export function parseHostPort(value: string): HostPort | null {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value)
  if (!match) return null
  const host = match[1] ?? match[2] ?? ''
  const port = Number(match[3])
  if (port > 65535) return null
  if (match[1] !== undefined && isIP(host) !== 6) return null
  if (match[2] !== undefined && isIP(host) !== 4 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return null
  return { host, port }
}

/** Formats a host and port back into `HOST:PORT`, bracketing IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
