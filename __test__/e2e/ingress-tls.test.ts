/**
 * Ingress TLS termination as a user sees it: an inbound port with the user's own
 * certificate and key (PEM files, made here with openssl) serves HTTPS over HTTP/1.1 and
 * HTTP/2 (ALPN) to a plaintext workload, refuses plaintext, and counts both; a config
 * whose files cannot be used is refused with one line naming the field and the file.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http2 from 'node:http2'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { startHttpApp, type HttpApp, type SeenRequest } from '../support/apps.js'
import { select, sum } from '../support/metrics.js'
import { freePorts } from '../support/ports.js'
import { makeTempDir, ProxyProcess, runCli } from '../support/proxy.js'
import { proxyDoc, renderYaml, type Doc } from '../support/resources.js'

const HOST = 'shop.example.com'

let app: HttpApp
let proxy: ProxyProcess
let dir: string
let certFile: string
let keyFile: string
let cert: string
let adminPort: number
let tlsPort: number
/** An ingress port that says its workload speaks HTTP/2, so it offers h2 by ALPN. */
let h2Port: number

/** A self-signed ECDSA P-256 server certificate for HOST, as a user might bring. */
function makeUserCertificate(into: string): { certFile: string; keyFile: string } {
  const certFile = path.join(into, 'server.crt')
  const keyFile = path.join(into, 'server.key')
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${HOST}`,
      '-addext', `subjectAltName=DNS:${HOST}`, '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore' },
  )
  return { certFile, keyFile }
}

function ingressProxy(files: { certificate: string; key: string }): Doc {
  const doc = proxyDoc({
    adminPort,
    inbound: [
      { port: tlsPort, forwardTo: app.address },
      { port: h2Port, forwardTo: app.address, protocol: 'http2' },
    ],
  })
  // proxyDoc sets mtls off, which a tls port allows.
  for (const inbound of doc.inbound as Doc[]) inbound.tls = files
  return doc
}

function httpsGet(urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port: tlsPort, path: urlPath, servername: HOST, ca: cert, headers: { host: HOST }, agent: false },
      (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (d: string) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      },
    )
    req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5s')))
    req.on('error', reject)
  })
}

beforeAll(async () => {
  app = await startHttpApp({ name: 'web-1', protocols: 'both' })
  ;[adminPort, tlsPort, h2Port] = (await freePorts(3)) as [number, number, number]
  dir = makeTempDir('mesh-ingress-')
  ;({ certFile, keyFile } = makeUserCertificate(dir))
  cert = fs.readFileSync(certFile, 'utf8')
  proxy = await ProxyProcess.start([ingressProxy({ certificate: certFile, key: keyFile })], adminPort)
})

afterAll(async () => {
  const exit = await proxy?.stop()
  await app?.close()
  if (dir) fs.rmSync(dir, { recursive: true, force: true })
  expect(exit?.code).toBe(0)
})

describe('an inbound port with a user certificate', () => {
  it('serves HTTPS over HTTP/1.1 to the plaintext workload', async () => {
    const reply = await httpsGet('/cart?x=1')
    expect(reply.status).toBe(200)
    const seen = JSON.parse(reply.body) as SeenRequest
    expect(seen).toMatchObject({ instance: 'web-1', method: 'GET', path: '/cart?x=1', httpVersion: '1.1' })
    expect(proxy.stderr).not.toContain('PRIVATE KEY')
  })

  it('settles on HTTP/1.1 for a client offering h2 when the port does not say its workload speaks HTTP/2', async () => {
    const alpn = await new Promise<string | false>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, ca: cert, servername: HOST, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        resolve(socket.alpnProtocol ?? false)
        socket.end()
      })
      socket.on('error', reject)
    })
    expect(alpn).toBe('http/1.1')
  })

  it('serves HTTP/2 by ALPN on a port whose workload speaks it', async () => {
    const session = http2.connect(`https://127.0.0.1:${h2Port}`, { ca: cert, servername: HOST })
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/h2', ':authority': HOST })
        let status = 0
        let body = ''
        req.on('response', (headers) => (status = Number(headers[':status'])))
        req.setEncoding('utf8').on('data', (d: string) => (body += d))
        req.on('end', () => resolve({ status, body }))
        req.on('error', reject)
        req.setTimeout(5_000, () => req.close(http2.constants.NGHTTP2_CANCEL))
      })
      expect(session.alpnProtocol).toBe('h2')
      expect(status).toBe(200)
      expect(JSON.parse(body)).toMatchObject({ instance: 'web-1', path: '/h2' })
    } finally {
      session.close()
    }
  })

  it('refuses plaintext and a client that does not trust the certificate, and counts TLS traffic', async () => {
    const plaintextAnswer = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(tlsPort, '127.0.0.1', () => socket.write(`GET / HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`))
      const chunks: Buffer[] = []
      socket.on('data', (d: Buffer) => chunks.push(d))
      socket.on('close', () => resolve(Buffer.concat(chunks)))
      socket.on('error', reject)
      socket.setTimeout(5_000, () => socket.destroy(new Error('neither an answer nor a close within 5s')))
    })
    expect(plaintextAnswer.length).toBe(0)

    // Without the user's CA the client refuses the server (the proxy offers no fallback).
    const untrusting = await new Promise<Error | undefined>((resolve) => {
      const req = https.get({ host: '127.0.0.1', port: tlsPort, path: '/', servername: HOST, agent: false }, (res) => {
        res.resume()
        resolve(undefined)
      })
      req.on('error', (e) => resolve(e))
    })
    expect(untrusting?.message).toMatch(/self[- ]signed/i)

    const metrics = await proxy.metrics()
    expect(sum(metrics, 'inbound_tls_refused_total', { reason: 'plaintext', authority: `127.0.0.1:${tlsPort}` })).toBe(1)
    expect(sum(metrics, 'request_total', { direction: 'inbound', tls: 'true' })).toBeGreaterThanOrEqual(2)
    expect(sum(metrics, 'request_total', { direction: 'inbound', tls: 'false' })).toBe(0)
    // Ingress clients have no mesh identity: no client_id label.
    expect(select(metrics, 'request_total', { tls: 'true' }).every((s) => s.labels.client_id === undefined)).toBe(true)
  })
})

describe('unusable certificate files', () => {
  it('are refused with one line naming the field and the file', async () => {
    const missing = path.join(dir, 'nope.crt')
    const configPath = path.join(dir, 'bad.yaml')
    fs.writeFileSync(configPath, renderYaml([ingressProxy({ certificate: missing, key: keyFile })]))
    const { code, stderr } = await runCli(['--config', configPath])
    expect(code).not.toBe(0)
    expect(stderr).toContain('inbound[0].tls.certificate')
    expect(stderr).toContain(missing)
    expect(stderr).not.toMatch(/^\s+at /m)

    // The key file given as the certificate: no certificate in it, and the key's PEM is never echoed.
    fs.writeFileSync(configPath, renderYaml([ingressProxy({ certificate: keyFile, key: keyFile })]))
    const second = await runCli(['--config', configPath])
    expect(second.code).not.toBe(0)
    expect(second.stderr).toContain('inbound[0].tls.certificate')
    expect(second.stderr).not.toContain('PRIVATE KEY')
    expect(second.stderr).not.toContain(fs.readFileSync(keyFile, 'utf8').split('\n')[1]!)
  })
})
