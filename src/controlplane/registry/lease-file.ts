/**
 * leases.json in the data dir: the live leases and the mesh version ceiling (see
 * ../version.ts), so a control plane restart neither withdraws live endpoints nor moves
 * the version backwards. Written atomically on register, deregister, expiry and ceiling
 * moves; never on heartbeats (those only move an in-memory deadline, and every restored
 * lease gets a fresh TTL anyway).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { INBOUND_PROTOCOLS, MTLS_MODES, parseHostPort, type InboundProtocol, type MtlsMode } from '../../config/index.js'
import { MeshControlError, messageOf } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import type { RegisteredEndpoint } from './endpoints.js'
import type { Lease } from './leases.js'

export const LEASE_FILE = 'leases.json'
const LEASE_FORMAT = 'mesh-control-leases/v1'

export interface LeaseFileContent {
  versionCeiling: bigint
  leases: Lease[]
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0
}

function parseEndpoint(value: unknown): RegisteredEndpoint | undefined {
  if (!isMapping(value) || typeof value.address !== 'string') return undefined
  try {
    parseHostPort(value.address)
  } catch {
    return undefined
  }
  if (!Number.isInteger(value.weight) || (value.weight as number) < 0) return undefined
  if (!(INBOUND_PROTOCOLS as readonly unknown[]).includes(value.protocol)) return undefined
  if (!isMapping(value.labels) || !Object.values(value.labels).every((label) => typeof label === 'string')) return undefined
  return {
    address: value.address,
    weight: value.weight as number,
    labels: { ...(value.labels as Record<string, string>) },
    protocol: value.protocol as InboundProtocol,
    mtls: mtlsModeOf(value.mtls),
  }
}

/** Reads leases.json; an absent file is an empty table. A damaged one stops the start. */
export async function loadLeaseFile(dataDir: string): Promise<LeaseFileContent> {
  const file = join(dataDir, LEASE_FILE)
  const corrupt = (why: string): MeshControlError =>
    new MeshControlError(
      `${file}: corrupt lease file (${why}); move it away to start without registered endpoints (proxies register again within a heartbeat)`,
    )
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { versionCeiling: 0n, leases: [] }
    throw new MeshControlError(`${file}: cannot read lease file: ${messageOf(err)}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw corrupt(text.trim() === '' ? 'empty file' : `not valid JSON: ${messageOf(err)}`)
  }
  if (!isMapping(data) || data.format !== LEASE_FORMAT) throw corrupt(`expected format "${LEASE_FORMAT}"`)
  if (typeof data.versionCeiling !== 'string' || !/^\d{1,20}$/.test(data.versionCeiling)) {
    throw corrupt('versionCeiling is not a decimal string')
  }
  if (!Array.isArray(data.leases)) throw corrupt('leases is not a list')
  const leases = data.leases.map((value: unknown, index): Lease => {
    const bad = (): MeshControlError => corrupt(`leases[${index}] is not a valid lease`)
    if (!isMapping(value)) throw bad()
    const { id, namespace, service, proxyId, registeredAt, endpoints } = value
    if (![id, namespace, service, proxyId, registeredAt].every(isNonEmptyString) || !Array.isArray(endpoints)) throw bad()
    const date = new Date(registeredAt as string)
    if (Number.isNaN(date.getTime())) throw bad()
    const parsed = endpoints.map(parseEndpoint)
    if (parsed.some((endpoint) => endpoint === undefined)) throw bad()
    return {
      id: id as string,
      namespace: namespace as string,
      service: service as string,
      proxyId: proxyId as string,
      registeredAt: date,
      endpoints: parsed as RegisteredEndpoint[],
    }
  })
  return { versionCeiling: BigInt(data.versionCeiling), leases }
}

/**
 * Writes leases.json from `snapshot()`, one write at a time: a save requested while a
 * write runs is folded into one more write afterwards, which reads the state then.
 */
export class LeaseFileWriter {
  readonly file: string
  private running: Promise<void> | undefined
  private next: Promise<void> | undefined

  constructor(
    dataDir: string,
    private readonly snapshot: () => LeaseFileContent,
  ) {
    this.file = join(dataDir, LEASE_FILE)
  }

  /** Resolves once a write that started after this call has completed (rejects if it failed). */
  save(): Promise<void> {
    if (this.running === undefined) {
      this.running = this.write().finally(() => {
        this.running = undefined
      })
      return this.running
    }
    // A write is in flight with older state: queue exactly one more behind it.
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined
        return this.save()
      })
    return this.next
  }

  private async write(): Promise<void> {
    const { versionCeiling, leases } = this.snapshot()
    const content = {
      format: LEASE_FORMAT,
      versionCeiling: versionCeiling.toString(),
      leases: leases.map((lease) => ({
        id: lease.id,
        namespace: lease.namespace,
        service: lease.service,
        proxyId: lease.proxyId,
        registeredAt: lease.registeredAt.toISOString(),
        endpoints: lease.endpoints,
      })),
    }
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(content)}\n`)
    } catch (err) {
      throw new Error(`${this.file}: cannot write lease file: ${messageOf(err)}`)
    }
  }
}

/**
 * Files written before modes were kept hold `true` (an mTLS port: permissive, the default
 * mode) or `false`/nothing (plaintext only).
 */
function mtlsModeOf(value: unknown): MtlsMode {
  if (value === true) return 'permissive'
  return (MTLS_MODES as readonly unknown[]).includes(value) ? (value as MtlsMode) : 'off'
}
