/**
 * AuthorizationPolicy end to end: a real mesh-control, `meshctl apply`/`delete` of
 * policies, and real connected proxies talking mTLS. Two client workloads (web, batch)
 * call an HTTP workload (orders) and an opaque TCP workload (db); the server proxies
 * judge each request by the client's proven SPIFFE id, path and method, and each TCP
 * connection by the id alone.
 *
 * The tests run in order on one mesh: each applies the policies it needs and leaves
 * none behind.
 */
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { CliProcess, cleanEnv } from '../cli/cli-process.js'
import { startHttpApp, startTcpEchoServer, type HttpApp, type TcpServer } from '../support/apps.js'
import { ControlPlaneProcess } from '../support/control.js'
import { h1, readUntil, tcpConnect, type Reply } from '../support/http.js'
import { parseMetrics, sum } from '../support/metrics.js'
import { freePorts, waitFor } from '../support/ports.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { renderYaml, type Doc } from '../support/resources.js'

const WEB_ID = 'spiffe://mesh.local/ns/default/sa/web'
const BATCH_ID = 'spiffe://mesh.local/ns/default/sa/batch'
const DB_PORT = 5432

interface Workload {
  proc: CliProcess
  adminPort: number
  outboundPort: number
  /** The local port that carries opaque TCP to Service db. */
  dbPort: number
}

function policy(name: string, target: string, extra: Doc): Doc {
  return { apiVersion: 'mesh/v1', kind: 'AuthorizationPolicy', name, namespace: 'default', targetRef: { kind: 'Service', name: target }, ...extra }
}

describe('AuthorizationPolicy between connected proxies', () => {
  const dir = makeTempDir('mesh-authz-e2e-')
  let control: ControlPlaneProcess
  let app: HttpApp
  let echo: TcpServer
  const proxies: CliProcess[] = []
  const clients = new Map<string, Workload>()
  let ordersAdmin = 0
  let dbAdmin = 0
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 })

  async function meshctl(args: string[]): Promise<string> {
    const result = await control.meshctl(args)
    expect(result.code, `meshctl ${args.join(' ')}: ${result.stderr}`).toBe(0)
    return result.stdout
  }

  async function apply(name: string, docs: Doc[]): Promise<void> {
    const file = path.join(dir, `${name}.yaml`)
    fs.writeFileSync(file, renderYaml(docs))
    await meshctl(['apply', '-f', file])
  }

  async function startProxy(name: string, local: Doc): Promise<number> {
    const token = (await meshctl(['token', 'create', '--name', name])).trim()
    const [adminPort] = (await freePorts(1)) as [number]
    const doc = { apiVersion: 'mesh/v1', kind: 'Proxy', name, namespace: 'default', admin: { listen: `127.0.0.1:${adminPort}` }, drainTimeout: '1s', ...local }
    const file = path.join(dir, `${name}-proxy.yaml`)
    fs.writeFileSync(file, renderYaml([doc]))
    const proc = new CliProcess(['--config', file, '--control-plane', control.address, '--name', name], { env: cleanEnv({ MESH_TOKEN: token }) })
    proxies.push(proc)
    await proc.ready(adminPort)
    return adminPort
  }

  async function startClient(name: string): Promise<void> {
    const [outboundPort, dbPort] = (await freePorts(2)) as [number, number]
    const adminPort = await startProxy(name, {
      outbound: { listen: `127.0.0.1:${outboundPort}`, tcp: [{ listen: `127.0.0.1:${dbPort}`, service: 'db' }] },
    })
    clients.set(name, { proc: proxies.at(-1) as CliProcess, adminPort, outboundPort, dbPort })
  }

  const client = (name: string): Workload => clients.get(name) as Workload
  const get = (from: string, urlPath: string, method = 'GET'): Promise<Reply> =>
    h1({ port: client(from).outboundPort, host: 'orders', path: urlPath, method, agent, timeoutMs: 5_000 })

  /** Whether a TCP connection through `from`'s db port echoes, or is closed by the server side. */
  async function tcpEchoes(from: string): Promise<boolean> {
    const socket = await tcpConnect(client(from).dbPort)
    // Errors after the verdict (a reset following the close) are not this check's business.
    socket.on('error', () => undefined)
    try {
      socket.write('ping\n')
      await readUntil(socket, (received) => received.toString().includes('ping\n'))
      return true
    } catch (err) {
      // Closed by the server proxy: a FIN, or a reset when our bytes were still unread.
      if (/connection closed|ECONNRESET|EPIPE/.test((err as Error).message)) return false
      throw err
    } finally {
      socket.destroy()
    }
  }

  async function metric(adminPort: number, name: string, labels: Record<string, string>): Promise<number> {
    return sum(parseMetrics((await adminGet(adminPort, '/metrics')).body), name, labels)
  }

  async function endpointsSeen(adminPort: number, service: string): Promise<number> {
    const config = JSON.parse((await adminGet(adminPort, '/config')).body) as { resources: Doc[] }
    const found = config.resources.find((r) => r.kind === 'Service' && r.name === service) as { endpoints: unknown[] } | undefined
    return found?.endpoints.length ?? 0
  }

  beforeAll(async () => {
    app = await startHttpApp({ name: 'orders' })
    echo = await startTcpEchoServer()
    control = await ControlPlaneProcess.start({})
    await apply('services', [
      { apiVersion: 'mesh/v1', kind: 'Service', name: 'orders', port: 80, protocol: 'http', endpoints: [] },
      { apiVersion: 'mesh/v1', kind: 'Service', name: 'db', port: DB_PORT, protocol: 'tcp', endpoints: [] },
    ])
    const [ordersInbound, dbInbound] = (await freePorts(2)) as [number, number]
    ordersAdmin = await startProxy('orders', {
      inbound: [{ port: ordersInbound, address: '127.0.0.1', forwardTo: app.address, protocol: 'http1', mtls: 'strict' }],
    })
    dbAdmin = await startProxy('db', {
      inbound: [{ port: dbInbound, address: '127.0.0.1', forwardTo: `127.0.0.1:${echo.port}`, protocol: 'tcp', mtls: 'strict' }],
    })
    await startClient('web')
    await startClient('batch')
    for (const name of ['web', 'batch']) {
      await waitFor(`${name} to see the orders and db endpoints`, async () =>
        (await endpointsSeen(client(name).adminPort, 'orders')) === 1 && (await endpointsSeen(client(name).adminPort, 'db')) === 1 ? true : undefined,
      )
    }
  }, 60_000)

  afterAll(async () => {
    for (const proc of proxies) await proc[Symbol.asyncDispose]()
    await control?.kill()
    agent.destroy()
    await app?.close()
    await echo?.close()
  })

  it('lets everyone in while no policy targets a Service', async () => {
    expect((await get('web', '/api/orders')).status).toBe(200)
    expect((await get('batch', '/admin', 'DELETE')).status).toBe(200)
    expect(await tcpEchoes('web')).toBe(true)
    expect(await tcpEchoes('batch')).toBe(true)
    // The server side knows who called, over mTLS.
    expect(await metric(ordersAdmin, 'request_total', { direction: 'inbound', tls: 'true', client_id: BATCH_ID })).toBe(1)
  })

  it('allows by identity, path and method, and answers 403 to the rest', async () => {
    await apply('web-api', [
      policy('web-api', 'orders', { action: 'allow', rules: [{ from: [{ identity: WEB_ID }], to: [{ paths: ['/api/*'], methods: ['GET', 'POST'] }] }] }),
    ])
    await waitFor('the allow policy in force on orders', async () => ((await get('batch', '/api/orders')).status === 403 ? true : undefined), {
      timeoutMs: 5_000,
    })
    const deniedBefore = await metric(ordersAdmin, 'inbound_http_authz_deny_total', { client_id: WEB_ID, policy: '' })
    const appBefore = app.hits

    expect((await get('web', '/api/orders')).status).toBe(200)
    expect((await get('web', '/api/orders', 'POST')).status).toBe(200)
    const wrongMethod = await get('web', '/api/orders', 'DELETE')
    expect(wrongMethod.status).toBe(403)
    expect(wrongMethod.headers['x-mesh-error']).toBe('forbidden')
    expect(wrongMethod.body).toBe(`forbidden: no AuthorizationPolicy of default/orders allows ${WEB_ID} to DELETE /api/orders\n`)
    expect((await get('web', '/admin')).status).toBe(403)
    expect((await get('web', '/api/../admin')).status).toBe(403)
    const other = await get('batch', '/api/orders')
    expect(other.status).toBe(403)
    expect(other.body).toContain(BATCH_ID)

    // Only the two allowed requests reached the app; the denials are counted by client.
    expect(app.hits - appBefore).toBe(2)
    expect((await metric(ordersAdmin, 'inbound_http_authz_deny_total', { client_id: WEB_ID, policy: '' })) - deniedBefore).toBe(3)
    expect(await metric(ordersAdmin, 'inbound_http_authz_deny_total', { client_id: BATCH_ID, tls: 'true' })).toBeGreaterThanOrEqual(2)
    expect(await metric(ordersAdmin, 'response_total', { direction: 'inbound', client_id: WEB_ID, status_code: '403' })).toBeGreaterThanOrEqual(3)
  })

  it('lets a deny policy win over an allow policy, naming it in the metrics', async () => {
    await apply('no-secrets', [policy('no-secrets', 'orders', { action: 'deny', rules: [{ to: [{ paths: ['/api/secret*'] }] }] })])
    await waitFor('the deny policy in force', async () => ((await get('web', '/api/secret')).status === 403 ? true : undefined), { timeoutMs: 5_000 })
    const reply = await get('web', '/api/secrets/keys')
    expect(reply.status).toBe(403)
    expect(reply.body).toBe(`forbidden: AuthorizationPolicy "default/no-secrets" denies ${WEB_ID}\n`)
    expect(await metric(ordersAdmin, 'inbound_http_authz_deny_total', { client_id: WEB_ID, policy: 'default/no-secrets' })).toBeGreaterThanOrEqual(2)
    expect((await get('web', '/api/orders')).status).toBe(200)

    await meshctl(['delete', 'authz', 'no-secrets'])
    await meshctl(['delete', 'authz', 'web-api'])
    await waitFor('the policies gone from orders', async () => ((await get('batch', '/admin', 'DELETE')).status === 200 ? true : undefined), {
      timeoutMs: 5_000,
    })
    expect((await get('web', '/api/secret')).status).toBe(200)
  })

  it('closes opaque TCP connections of clients no policy allows', async () => {
    await apply('db-from-web', [policy('db-from-web', 'db', { action: 'allow', rules: [{ from: [{ identity: WEB_ID }] }] })])
    await waitFor('the db policy in force', async () => ((await tcpEchoes('batch')) ? undefined : true), { timeoutMs: 5_000 })
    expect(await tcpEchoes('web')).toBe(true)
    expect(await tcpEchoes('batch')).toBe(false)
    expect(await metric(dbAdmin, 'inbound_tcp_authz_deny_total', { client_id: BATCH_ID, policy: '', tls: 'true' })).toBeGreaterThanOrEqual(2)
    expect(await metric(dbAdmin, 'inbound_tcp_authz_deny_total', { client_id: WEB_ID })).toBe(0)

    await meshctl(['delete', 'authz', 'db-from-web'])
    await waitFor('batch let in again', async () => ((await tcpEchoes('batch')) ? true : undefined), { timeoutMs: 5_000 })
  })
})
