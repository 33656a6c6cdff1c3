import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { LeaseFileWriter, loadLeaseFile } from '../../src/controlplane/registry/lease-file.js'
import { LeaseTable, type LeaseEvent } from '../../src/controlplane/registry/leases.js'
import { CEILING_STEP, MeshVersion } from '../../src/controlplane/version.js'

describe('MeshVersion', () => {
  it('starts above the persisted ceiling and the store revision, and moves the ceiling ahead before reaching it', () => {
    const persisted: bigint[] = []
    const version = new MeshVersion(500n, 20n, (ceiling) => persisted.push(ceiling))
    expect(version.value).toBe(500n)
    expect(version.initialCeiling).toBe(500n + CEILING_STEP)
    const handedOut: bigint[] = []
    for (let i = 0; i < Number(CEILING_STEP) * 2; i++) handedOut.push(version.advance())
    // Every version handed out stays below the ceiling persisted before it was reached.
    const max = handedOut.at(-1) as bigint
    expect(max).toBe(500n + 2n * CEILING_STEP)
    expect(persisted.length).toBeGreaterThanOrEqual(3)
    let durable = version.initialCeiling
    let next = 0
    for (const value of handedOut) {
      while (next < persisted.length && (persisted[next] as bigint) - CEILING_STEP <= value) durable = persisted[next++] as bigint
      expect(value < durable).toBe(true)
    }
    // A restart from the last ceiling (even after kill -9) never repeats a version.
    const restarted = new MeshVersion(persisted.at(-1) as bigint, 0n, () => undefined)
    expect(restarted.value > max).toBe(true)
    // A store revision above the ceiling (a restored store) wins.
    expect(new MeshVersion(10n, 99n, () => undefined).value).toBe(99n)
  })
})

describe('leases.json', () => {
  const dirs: string[] = []
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  it('round-trips leases and the ceiling, writing once more for saves made during a write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-leases-'))
    dirs.push(dir)
    expect(await loadLeaseFile(dir)).toEqual({ versionCeiling: 0n, leases: [] })
    const events: LeaseEvent[] = []
    const table = new LeaseTable({ ttlMs: 60_000, onChange: (event) => events.push(event) })
    let ceiling = 10n
    const writer = new LeaseFileWriter(dir, () => ({ versionCeiling: ceiling, leases: table.all() }))
    const lease = table.register({ namespace: 'default', service: 'orders' }, 'p1', [
      { address: '127.0.0.1:4143', weight: 1, labels: { zone: 'a' }, protocol: 'http1', mtls: 'off' },
    ])
    const first = writer.save()
    ceiling = 20n
    table.register({ namespace: 'default', service: 'orders' }, 'p2', [])
    const second = writer.save()
    const third = writer.save()
    await Promise.all([first, second, third])
    const loaded = await loadLeaseFile(dir)
    expect(loaded.versionCeiling).toBe(20n)
    expect(loaded.leases.map((l) => [l.id, l.proxyId, l.endpoints])).toEqual([
      [lease.id, 'p1', lease.endpoints],
      [expect.stringMatching(/^lease_/), 'p2', []],
    ])
    expect(JSON.parse(readFileSync(join(dir, 'leases.json'), 'utf8')).format).toBe('mesh-control-leases/v1')
    expect(events.map((e) => e.type)).toEqual(['registered', 'registered'])
    table.close()
  })

  it('expires a lease without heartbeats and renews one with them', async () => {
    const events: LeaseEvent[] = []
    const table = new LeaseTable({ ttlMs: 150, onChange: (event) => events.push(event) })
    const identity = { namespace: 'default', service: 'orders' }
    const kept = table.register(identity, 'kept', [])
    const lapsed = table.register(identity, 'lapsed', [])
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(table.heartbeat(kept.id)).toBeDefined()
    }
    expect(table.get(lapsed.id)).toBeUndefined()
    expect(events.filter((e) => e.type === 'expired').map((e) => e.lease.proxyId)).toEqual(['lapsed'])
    expect(table.heartbeat(lapsed.id)).toBeUndefined()
    table.close()
  })
})
