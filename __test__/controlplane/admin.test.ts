import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { compareVersions, type GetResponse__Output, type StatusResponse__Output } from '../../src/control/proto.js'
import { MeshControl, MeshControlError, hashToken } from '../../src/controlplane/index.js'
import { applyDocs, call, callError, httpRoute, mustApply, service, startHarness, type Harness } from './harness.js'

let h: Harness
beforeEach(async () => {
  h = await startHarness()
})
afterEach(async () => {
  await h.cleanup()
})

const orders = service('orders', { endpoints: [{ address: '127.0.0.1:8080' }] })
const payments = service('payments', { endpoints: [{ address: '127.0.0.1:8081' }] })

describe('Admin.Apply', () => {
  it('stores a batch, reports created / unchanged / configured, and advances the version only on change', async () => {
    const first = await applyDocs(h, [orders, payments, httpRoute('split', 'orders', ['payments'])])
    expect(first.errors).toEqual([])
    expect(first.results.map((r) => [r.key?.kind, r.key?.name, r.action])).toEqual([
      ['Service', 'orders', 'APPLY_ACTION_CREATED'],
      ['Service', 'payments', 'APPLY_ACTION_CREATED'],
      ['HTTPRoute', 'split', 'APPLY_ACTION_CREATED'],
    ])
    expect(first.version).toBe(h.control.version)
    const again = await applyDocs(h, [orders])
    expect(again.results[0]?.action).toBe('APPLY_ACTION_UNCHANGED')
    expect(again.results[0]?.resourceVersion).toBe(first.results[0]?.resourceVersion)
    expect(again.version).toBe(first.version)

    const changed = await applyDocs(h, [service('orders', { endpoints: [{ address: '127.0.0.1:9090' }] })])
    expect(changed.results[0]?.action).toBe('APPLY_ACTION_CONFIGURED')
    expect(compareVersions(changed.version, first.version)).toBeGreaterThan(0)
    expect(compareVersions(changed.results[0]!.resourceVersion, first.results[0]!.resourceVersion)).toBeGreaterThan(0)
  })

  it('refuses a bad document with the precise line, numbered as in the file, and stores nothing of it', async () => {
    const response = await call<unknown, { errors: string[]; results: unknown[] }>(h.admin, 'Apply', {
      source: 'mesh.yaml',
      documents: [
        { number: 1, json: JSON.stringify(orders) },
        // document 2 of the file was empty and skipped by meshctl
        { number: 3, json: JSON.stringify(service('bad', { endpoints: [{ address: 'localhost' }] })) },
      ],
    })
    expect(response.results).toEqual([])
    expect(response.errors).toEqual([
      'mesh.yaml: document 3 (Service "bad"): endpoints[0].address: expected HOST:PORT, got "localhost"',
    ])
    const all = await call<unknown, GetResponse__Output>(h.admin, 'Get', {})
    expect(all.resources).toEqual([])
  })

  it('reports a document that is not JSON by its number, and a route to a missing Service', async () => {
    const notJson = await call<unknown, { errors: string[] }>(h.admin, 'Apply', {
      source: 'x.yaml',
      documents: [
        { number: 1, json: JSON.stringify(orders) },
        { number: 2, json: '{"kind": ' },
      ],
    })
    expect(notJson.errors).toHaveLength(1)
    expect(notJson.errors[0]).toMatch(/^x\.yaml: document 2: not valid JSON: /)

    const missing = await applyDocs(h, [httpRoute('r', 'orders', ['nowhere'])], 'r.yaml')
    expect(missing.errors.length).toBeGreaterThan(0)
    expect(missing.errors.join('\n')).toContain('r.yaml: document 1 (HTTPRoute "r")')
    expect((await call<unknown, GetResponse__Output>(h.admin, 'Get', {})).resources).toEqual([])
  })

  it('labels lines "request" when no source is given and refuses Proxy documents', async () => {
    const response = await call<unknown, { errors: string[] }>(h.admin, 'Apply', {
      documents: [{ number: 1, json: JSON.stringify({ apiVersion: 'mesh/v1', kind: 'Proxy', name: 'p', inbound: [] }) }],
    })
    expect(response.errors.some((line) => line.startsWith('request: document 1 (Proxy "p"): Proxy resources are local'))).toBe(true)
  })
})

describe('Admin.Get and Delete', () => {
  beforeEach(async () => {
    await mustApply(h, [orders, payments, service('web', { namespace: 'shop' }), httpRoute('split', 'orders', ['payments'])])
  })

  it('lists everything, one kind, one namespace, or one resource as stored', async () => {
    const all = await call<unknown, GetResponse__Output>(h.admin, 'Get', {})
    expect(all.resources.map((r) => `${r.kind}/${r.namespace}/${r.name}`)).toEqual([
      'Service/default/orders',
      'Service/default/payments',
      'Service/shop/web',
      'HTTPRoute/default/split',
    ])
    expect(all.version).toBe(h.control.version)
    const services = await call<unknown, GetResponse__Output>(h.admin, 'Get', { kind: 'Service', namespace: 'shop' })
    expect(services.resources.map((r) => r.name)).toEqual(['web'])
    const one = await call<unknown, GetResponse__Output>(h.admin, 'Get', { kind: 'Service', name: 'orders' })
    expect(one.resources).toHaveLength(1)
    const body = JSON.parse(one.resources[0]!.json)
    expect(body).toMatchObject({ kind: 'Service', name: 'orders', namespace: 'default', port: 80, protocol: 'http' })
    expect(body.endpoints).toEqual([{ address: '127.0.0.1:8080', weight: 1, labels: {} }])
  })

  it('answers NOT_FOUND and INVALID_ARGUMENT as admin.proto says', async () => {
    const missing = await callError(call(h.admin, 'Get', { kind: 'Service', name: 'nope' }))
    expect(missing.code).toBe(grpc.status.NOT_FOUND)
    expect(missing.details).toBe('Service "default/nope" not found')
    const noKind = await callError(call(h.admin, 'Get', { name: 'orders' }))
    expect(noKind.code).toBe(grpc.status.INVALID_ARGUMENT)
    const badKind = await callError(call(h.admin, 'Get', { kind: 'Services' }))
    expect(badKind.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(badKind.details).toContain('unknown kind "Services"')
    const proxy = await callError(call(h.admin, 'Get', { kind: 'Proxy' }))
    expect(proxy.code).toBe(grpc.status.INVALID_ARGUMENT)
  })

  it('deletes, refuses to break a reference with FAILED_PRECONDITION, and NOT_FOUND for unknown', async () => {
    const referenced = await callError(call(h.admin, 'Delete', { kind: 'Service', name: 'payments' }))
    expect(referenced.code).toBe(grpc.status.FAILED_PRECONDITION)
    expect(referenced.details).toContain('still referenced by HTTPRoute "default/split"')
    const before = h.control.version
    const deleted = await call<unknown, { version: string }>(h.admin, 'Delete', { kind: 'HTTPRoute', name: 'split' })
    expect(compareVersions(deleted.version, before)).toBeGreaterThan(0)
    await call(h.admin, 'Delete', { kind: 'Service', name: 'payments' })
    const gone = await callError(call(h.admin, 'Delete', { kind: 'Service', name: 'payments' }))
    expect(gone.code).toBe(grpc.status.NOT_FOUND)
    const noName = await callError(call(h.admin, 'Delete', { kind: 'Service' }))
    expect(noName.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(noName.details).toBe('name: required')
  })
})

describe('Admin.Status and CreateToken', () => {
  it('reports server version, start time, version and a probed, writable store', async () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
    const status = await call<unknown, StatusResponse__Output>(h.admin, 'Status', {})
    expect(status.serverVersion).toBe(pkg.version)
    expect(status.version).toBe(h.control.version)
    expect(status.store).toEqual({ type: 'file', writable: true, error: '', location: h.dataDir })
    // The CA's details are tested in identity.test.ts.
    expect(status.ca).toMatchObject({ valid: true, trustDomain: 'mesh.local', trustBundleRoots: 1, source: join(h.dataDir, 'ca', 'ca.crt') })
    expect(status.proxies).toEqual([])
    expect(Number(status.startedAt?.seconds)).toBeGreaterThan(Date.now() / 1000 - 60)
    expect(existsSync(join(h.dataDir, '.write-probe'))).toBe(false)
  })

  it('issues tokens stored only as a hash, and validates the name', async () => {
    const issued = await call<unknown, { token: string; tokenId: string }>(h.admin, 'CreateToken', { service: 'orders' })
    expect(issued.token).toMatch(/^mesh_[A-Za-z0-9_-]{43}$/)
    const hash = hashToken(issued.token)
    expect(issued.tokenId).toBe(hash.slice('sha256:'.length, 'sha256:'.length + 12))
    const state = readFileSync(join(h.dataDir, 'state.json'), 'utf8')
    expect(state).toContain(hash)
    expect(state).not.toContain(issued.token)
    expect(h.logs.join('\n')).not.toContain(issued.token)
    expect(h.logs).toContain(`token ${issued.tokenId} issued for default/orders`)
    const bad = await callError(call(h.admin, 'CreateToken', { service: 'Orders!' }))
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT)
    expect(bad.details).toMatch(/^service: expected a DNS label/)
    await expect(h.control.createToken('', 'default')).rejects.toThrow(MeshControlError)
  })
})

describe('MeshControl.start', () => {
  it('refuses a listen address in use with one line, and a corrupt store with the store line', async () => {
    const busy = await MeshControl.start({ listen: h.control.address, dataDir: `${h.dataDir}-2`, logger: null }).catch((err: unknown) => err)
    expect(busy).toBeInstanceOf(MeshControlError)
    expect((busy as Error).message).toBe(`--listen ${h.control.address}: address in use`)
    const badListen = await MeshControl.start({ listen: 'localhost:1', dataDir: `${h.dataDir}-2`, logger: null }).catch((err: unknown) => err)
    expect((badListen as Error).message).toMatch(/^--listen localhost:1: expected HOST:PORT with an IP address/)

    await h.stop()
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(h.dataDir, 'state.json'), '{ broken')
    const corrupt = await MeshControl.start({ listen: '127.0.0.1:0', dataDir: h.dataDir, logger: null }).catch((err: unknown) => err)
    expect(corrupt).toBeInstanceOf(MeshControlError)
    expect((corrupt as Error).message).toMatch(/state\.json: corrupt store state \(not valid JSON/)
  })
})
