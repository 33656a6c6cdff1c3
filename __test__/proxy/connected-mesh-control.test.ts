/**
 * MeshProxy in connected mode against the real MeshControl (not the fake): applied
 * resources reach the proxy and route traffic, a route change shifts it, the proxy's
 * registered inbound endpoint becomes its Service's endpoint for everyone (here: itself,
 * through its outbound), Status shows it in sync, and close() withdraws it.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AdminClient, type AdminClientType, type ApplyResponse__Output } from '../../src/control/proto.js'
import { MeshControl } from '../../src/controlplane/index.js'
import { MeshProxy, type MeshProxyEvent } from '../../src/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'
import { h1, seen } from '../support/http.js'
import { adminGet } from '../support/proxy.js'
import { freePorts, waitFor } from '../support/ports.js'
import { httpRouteDoc, proxyDoc, serviceDoc, type Doc } from '../support/resources.js'

let appV1: HttpApp
let appV2: HttpApp
let local: HttpApp
let control: MeshControl
let admin: AdminClientType

beforeAll(async () => {
  appV1 = await startHttpApp({ name: 'v1' })
  appV2 = await startHttpApp({ name: 'v2' })
  local = await startHttpApp({ name: 'local-workload' })
  control = await MeshControl.start({
    listen: '127.0.0.1:0',
    dataDir: join(mkdtempSync(join(tmpdir(), 'mesh-control-')), 'data'),
    leaseTtlMs: 3_000,
    logger: null,
  })
  admin = new (AdminClient())(control.address, grpc.credentials.createInsecure())
})

afterAll(async () => {
  admin?.close()
  await control?.close()
  await Promise.all([appV1?.close(), appV2?.close(), local?.close()])
})

function apply(docs: Doc[]): Promise<ApplyResponse__Output> {
  return new Promise((resolve, reject) =>
    admin.Apply(
      { documents: docs.map((doc, i) => ({ number: i + 1, json: JSON.stringify(doc) })), source: 'test.yaml' },
      (err, response) => (err || !response ? reject(err) : resolve(response)),
    ),
  )
}

async function mustApply(docs: Doc[]): Promise<void> {
  const response = await apply(docs)
  if (response.errors.length > 0) throw new Error(`apply failed:\n${response.errors.join('\n')}`)
}

function mesh(backend: 'v1' | 'v2'): Doc[] {
  return [
    serviceDoc('orders', [appV1.port]),
    serviceDoc('orders-v1', [appV1.port]),
    serviceDoc('orders-v2', [appV2.port]),
    httpRouteDoc('orders-split', 'orders', [{ backendRefs: [{ name: `orders-${backend}` }] }]),
    // The proxy's own Service: no static endpoints, the registered one fills it.
    { apiVersion: 'mesh/v1', kind: 'Service', name: 'e2e', port: 80, protocol: 'http', endpoints: [] },
  ]
}

describe('MeshProxy with the real mesh-control', () => {
  it('applies, routes, registers itself, reports in sync, and withdraws on close', async () => {
    await mustApply(mesh('v1'))
    const { token } = await control.createToken('e2e', 'default')
    const [adminPort, outbound, inbound] = (await freePorts(3)) as [number, number, number]
    const events: MeshProxyEvent[] = []
    const proxy = await MeshProxy.start({
      resources: [proxyDoc({ adminPort, outboundPort: outbound, inbound: [{ port: inbound, forwardTo: local.address, protocol: 'http1' }] })],
      logger: null,
      onEvent: (e) => events.push(e),
      controlPlane: { address: control.address, name: 'e2e', token, backoff: { baseMs: 50, capMs: 500 } },
    })
    try {
      await waitFor('ready', async () => (await adminGet(adminPort, '/ready')).status === 200)
      expect(seen(await h1({ port: outbound, host: 'orders' })).instance).toBe('v1')

      await mustApply(mesh('v2'))
      await waitFor('traffic on v2', async () => seen(await h1({ port: outbound, host: 'orders' })).instance === 'v2')

      // The registered inbound endpoint is now Service e2e's endpoint.
      await waitFor('the registered endpoint in the push', async () => {
        const reply = await h1({ port: outbound, host: 'e2e' })
        return reply.status === 200 && seen(reply).instance === 'local-workload'
      })

      await waitFor('in sync in Status', async () => {
        const status = await control.status()
        const row = (status.proxies ?? []).find((p) => p.proxyId === proxy.proxyId)
        return row?.inSync === true && row.lastReply === 'REPLY_STATE_ACK' && row.ackedVersion === proxy.controlPlaneVersion
      })
      expect(events.some((e) => e.type === 'connected')).toBe(true)
      expect(events.some((e) => e.type === 'registered')).toBe(true)
    } finally {
      await proxy.close({ drainTimeoutMs: 0 })
    }
    // Deregistered at close: a second proxy sees Service e2e without endpoints (503, not the workload).
    const { token: other } = await control.createToken('watcher', 'default')
    const [adminPort2, outbound2] = (await freePorts(2)) as [number, number]
    const watcher = await MeshProxy.start({
      resources: [{ ...proxyDoc({ adminPort: adminPort2, outboundPort: outbound2 }), name: 'watcher' }],
      logger: null,
      controlPlane: { address: control.address, name: 'watcher', token: other },
    })
    try {
      await waitFor('ready', async () => (await adminGet(adminPort2, '/ready')).status === 200)
      const reply = await h1({ port: outbound2, host: 'e2e' })
      expect(reply.status).toBe(503)
    } finally {
      await watcher.close({ drainTimeoutMs: 0 })
    }
  })

  it('a resource the proxy cannot apply is NACKed and shown by Status', async () => {
    await mustApply(mesh('v2'))
    const { token } = await control.createToken('nacker', 'default')
    const [adminPort, outbound] = (await freePorts(2)) as [number, number]
    const proxy = await MeshProxy.start({
      resources: [{ ...proxyDoc({ adminPort, outboundPort: outbound }), name: 'nacker' }],
      logger: null,
      controlPlane: { address: control.address, name: 'nacker', token, backoff: { baseMs: 50, capMs: 500 } },
    })
    try {
      await waitFor('ready', async () => (await adminGet(adminPort, '/ready')).status === 200)
      const version = proxy.version
      // Passes the shared validator (so mesh-control stores it) but not the engine's regex compiler.
      await mustApply([httpRouteDoc('huge', 'orders-v1', [{ matches: [{ path: { type: 'RegularExpression', value: '/(a{1000}){1000}' } }] }])])
      const row = await waitFor('a NACK in Status', async () => {
        const status = await control.status()
        const found = (status.proxies ?? []).find((p) => p.proxyId === proxy.proxyId)
        return found?.lastReply === 'REPLY_STATE_NACK' ? found : undefined
      })
      expect(row.error).toMatch(/^control-plane: HTTPRoute "default\/huge": rules\[0\]\.matches\[0\]\.path\.value: regular expression too large/)
      expect(proxy.version).toBe(version)
      expect(seen(await h1({ port: outbound, host: 'orders' })).instance).toBe('v2')
    } finally {
      await proxy.close({ drainTimeoutMs: 0 })
    }
  })
})
