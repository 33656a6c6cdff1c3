/**
 * The engine's mTLS through the N-API surface: a workload identity made and installed in
 * Rust is handed to the engine with setIdentity (the key never crosses), a strict inbound
 * port then serves only clients with a certificate of the mesh CA, and stats carry the
 * client's SPIFFE id. The client here is Node's TLS with a key made by openssl and a
 * certificate the CA signed from its CSR.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { inspect } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BindingCertificateAuthority, BindingEngine, BindingWorkloadIdentity, type BindingStats } from '../../native/index.js'
import { startHttpApp, type HttpApp } from '../support/apps.js'

const APP = 'spiffe://mesh.local/ns/default/sa/app'
const WEB = 'spiffe://mesh.local/ns/shop/sa/web'

let dir: string
let app: HttpApp
let engine: BindingEngine
let ca: BindingCertificateAuthority
let port: number
let client: { key: string; cert: string }

/** A client key and CSR made by openssl, the CSR signed by `signer` for `id`. */
function clientCertificate(signer: BindingCertificateAuthority, id: string): { key: string; cert: string } {
  const keyFile = join(dir, 'client.key')
  const csrFile = join(dir, 'client.csr')
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], { stdio: 'ignore' })
  execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=client', '-out', csrFile], { stdio: 'ignore' })
  const issued = signer.sign(readFileSync(csrFile, 'utf8'), id, 3600)
  return { key: readFileSync(keyFile, 'utf8'), cert: issued.certificateChainPem }
}

/** One HTTP/1.1 GET over mTLS; the status line, or null when the proxy refused the client. */
function mtlsGet(path: string, creds: { key?: string; cert?: string }): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...creds,
      ca: ca.rootsPem,
      servername: 'app',
      ALPNProtocols: ['http/1.1'],
      // Mesh servers are named by their SPIFFE id (a URI SAN), not by a DNS name.
      checkServerIdentity: (_host, peer) =>
        peer.subjectaltname === `URI:${APP}` ? undefined : new Error(`unexpected server ${peer.subjectaltname}`),
    })
    let received = ''
    socket.on('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n`))
    socket.setEncoding('utf8').on('data', (d: string) => (received += d))
    socket.on('close', () => resolve(received === '' ? null : received.split('\r\n')[0]!))
    socket.on('error', (e: NodeJS.ErrnoException) => (received === '' && e.code !== undefined ? resolve(null) : reject(e)))
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5s')))
  })
}

/** A plaintext GET: what came back, '' when the proxy closed the connection. */
function plaintextGet(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: app\r\n\r\n'))
    let received = ''
    socket.setEncoding('utf8').on('data', (d: string) => (received += d))
    socket.on('close', () => resolve(received))
    // A close with our request unread arrives as a reset (or a broken pipe for the write):
    // still a refusal, reported by the 'close' that follows.
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)))
    socket.setTimeout(5_000, () => socket.destroy(new Error('neither an answer nor a close within 5s')))
  })
}

function refusals(stats: BindingStats, reason: string): number {
  return stats.tlsRefusals.filter((r) => r.reason === reason).reduce((n, r) => n + r.count, 0)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-engine-mtls-'))
  ca = BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
  app = await startHttpApp({ name: 'app-1' })
  engine = new BindingEngine()
  engine.apply({
    source: 'engine-mtls test',
    inbound: [{ listen: '127.0.0.1:0', forwardTo: app.address, protocol: 'http1', service: 'default/app', mtls: 'strict' }],
    tcpOutbound: [],
    services: [],
    httpRoutes: [],
  })
  port = Number(engine.listeners()[0]!.bound.split(':').pop())
  client = clientCertificate(ca, WEB)
})

afterAll(async () => {
  await engine?.shutdown(100)
  await app?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('BindingEngine.setIdentity', () => {
  it('refuses an identity without a certificate, and a strict port serves nobody before one is set', async () => {
    const identity = new BindingWorkloadIdentity(APP)
    identity.csrPem()
    expect(() => engine.setIdentity(identity)).toThrow(/no certificate installed yet/)
    expect(engine.identity).toBeNull()
    expect(await plaintextGet()).toBe('')
    expect(await mtlsGet('/early', client)).toBeNull()
    expect(refusals(engine.stats(), 'no_identity')).toBe(2)
    expect(app.hits).toBe(0)
  })

  it('serves mTLS clients of the mesh CA with their SPIFFE id in the stats, and no one else', async () => {
    const identity = new BindingWorkloadIdentity(APP)
    identity.install(ca.sign(identity.csrPem(), APP, 3600).certificateChainPem, ca.rootsPem)
    engine.setIdentity(identity)
    expect(engine.identity).toBe(APP)

    expect(await mtlsGet('/hello', client)).toBe('HTTP/1.1 200 OK')
    expect(await mtlsGet('/no-cert', {})).toBeNull()
    // Same trust domain and id, another root.
    const foreignCa = BindingCertificateAuthority.loadOrCreate(mkdtempSync(join(dir, 'other-')), 'mesh.local')
    const foreign = clientCertificate(foreignCa, WEB)
    expect(await mtlsGet('/foreign', foreign)).toBeNull()
    expect(await plaintextGet()).toBe('')

    const stats = engine.stats()
    const served = stats.http.filter((h) => h.clientId === WEB)
    expect(served).toHaveLength(1)
    expect(served[0]).toMatchObject({ direction: 'inbound', tls: true, requests: 1 })
    expect(stats.http.filter((h) => h.clientId === '').reduce((n, h) => n + h.requests, 0)).toBe(0)
    expect(refusals(stats, 'handshake')).toBe(2)
    expect(refusals(stats, 'plaintext')).toBe(1)
    expect(app.hits).toBe(1)

    // Nothing JS can reach holds key material.
    for (const value of [inspect(engine, { showHidden: true, depth: 5 }), inspect(identity, { showHidden: true, depth: 5 }), JSON.stringify(stats)]) {
      expect(value).not.toContain('PRIVATE KEY')
    }
  })

  it('clearIdentity closes a strict port to new clients', async () => {
    engine.clearIdentity()
    expect(engine.identity).toBeNull()
    const before = refusals(engine.stats(), 'no_identity')
    expect(await mtlsGet('/after-clear', client)).toBeNull()
    expect(refusals(engine.stats(), 'no_identity')).toBe(before + 1)
  })
})
