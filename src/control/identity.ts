// Who a proxy says it is to the control plane, beyond its service name.

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { packageVersion } from '../version.js'

/**
 * `<hostname>-<pid>-<random>`: unique per proxy (two embedded in one process differ by the
 * random part), stable for its lifetime and across its reconnects, and readable in
 * `meshctl check` (which host, which process).
 */
export function newProxyId(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-') || 'host'
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`
}

/** mesh-core's package version, sent in the Hello. */
export const buildVersion = packageVersion
