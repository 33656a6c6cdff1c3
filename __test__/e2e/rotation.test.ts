/**
 * Certificate and trust bundle rotation end to end, under continuous load, as an operator
 * runs them: a real `mesh-control`, four connected `mesh-proxy` processes (a client
 * workload `web` and three servers behind `mtls: strict` inbound ports: HTTP/1, gRPC and
 * opaque TCP), real apps, and `meshctl`. A client keeps sending through web's outbound
 * listeners the whole time; every failed request is a failure of the test.
 *
 * HTTP/1 and gRPC ride web's pooled mTLS HTTP/2 connection to each server proxy, which
 * stays up across renewals (open connections keep their certificates); every TCP
 * connection is a new mTLS handshake, so the TCP loop checks the certificates and
 * bundles in force on both sides at every moment of the rotation.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import tls from 'node:tls'

import { describe, expect, it } from 'vitest'

import { BindingCertificateAuthority } from '../../native/index.js'
import { CliProcess, cleanEnv } from '../cli/cli-process.js'
import { startHttpApp, startTcpEchoServer, type HttpApp, type TcpServer } from '../support/apps.js'
import { ControlPlaneProcess } from '../support/control.js'
import { echoClient, startGrpcApp, unary, type EchoClient, type GrpcApp } from '../support/grpc.js'
import { h1, readUntil, tcpConnect } from '../support/http.js'
import { parseMetrics, sum } from '../support/metrics.js'
import { freePorts, sleep, waitFor } from '../support/ports.js'
import { adminGet, makeTempDir } from '../support/proxy.js'
import { renderYaml, type Doc } from '../support/resources.js'
import type { CertificateView } from '../../src/proxy/index.js'

const TRUST_DOMAIN = 'mesh.local'
const WEB_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/web`
const ORDERS_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/orders`


interface Workload {
  name: string
  proc: CliProcess
  adminPort: number
  outboundPort: number
  /** web only: its outbound TCP listener for Service `echo`. */
  tcpPort: number
  /** Server workloads: their strict inbound port. */
  inboundPort: number
}

type Protocol = 'http1' | 'grpc' | 'tcp'
const PROTOCOLS: readonly Protocol[] = ['http1', 'grpc', 'tcp']

/**
 * mesh-control, the apps and the four proxies. `controlArgs` are mesh-control's flags
 * beyond --listen and --data-dir.
 */
class Mesh {
  readonly dir = makeTempDir('mesh-rotation-')
  readonly workloads = new Map<string, Workload>()
  control!: ControlPlaneProcess
  private apps!: { http: HttpApp; grpc: GrpcApp; tcp: TcpServer }

  static async start(controlArgs: string[]): Promise<Mesh> {
    const mesh = new Mesh()
    try {
      await mesh.init(controlArgs)
    } catch (err) {
      await mesh.close()
      throw err
    }
    return mesh
  }

  private async init(controlArgs: string[]): Promise<void> {
    this.apps = { http: await startHttpApp({ name: 'orders' }), grpc: await startGrpcApp('greeter'), tcp: await startTcpEchoServer() }
    this.control = await ControlPlaneProcess.start({ args: controlArgs })
    const service = (name: string, protocol: string, port = 80): Doc => ({
      apiVersion: 'mesh/v1',
      kind: 'Service',
      name,
      namespace: 'default',
      port,
      protocol,
      endpoints: [],
    })
    // No static endpoints: the server proxies register their inbound ports.
    await this.apply([service('orders', 'http'), service('greeter', 'grpc'), service('echo', 'tcp', 7)])
    await this.startWorkload('web')
    await this.startWorkload('orders', { forwardTo: this.apps.http.address, protocol: 'http1' })
    await this.startWorkload('greeter', { forwardTo: this.apps.grpc.address, protocol: 'grpc' })
    await this.startWorkload('echo', { forwardTo: this.apps.tcp.address, protocol: 'tcp' })
    await waitFor('web to see the registered endpoints of orders, greeter and echo', async () => {
      const config = JSON.parse((await adminGet(this.web.adminPort, '/config')).body) as { resources: Doc[] }
      const registered = (name: string) =>
        (config.resources.find((r) => r.kind === 'Service' && r.name === name) as { endpoints?: unknown[] } | undefined)?.endpoints?.length ?? 0
      return ['orders', 'greeter', 'echo'].every((name) => registered(name) === 1) ? true : undefined
    })
  }

  get web(): Workload {
    return this.workloads.get('web') as Workload
  }

  async meshctl(args: string[]): Promise<string> {
    const result = await this.control.meshctl(args)
    if (result.code !== 0) throw new Error(`meshctl ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`)
    return result.stdout
  }

  async apply(docs: Doc[]): Promise<void> {
    const file = path.join(this.dir, `apply-${Date.now()}.yaml`)
    fs.writeFileSync(file, renderYaml(docs))
    await this.meshctl(['apply', '-f', file])
  }

  private async startWorkload(name: string, inbound?: { forwardTo: string; protocol: string }): Promise<void> {
    const token = (await this.meshctl(['token', 'create', '--name', name])).trim()
    const [adminPort, outboundPort, tcpPort, inboundPort] = (await freePorts(4)) as [number, number, number, number]
    const local: Doc = {
      apiVersion: 'mesh/v1',
      kind: 'Proxy',
      name,
      namespace: 'default',
      outbound: { listen: `127.0.0.1:${outboundPort}`, tcp: [{ listen: `127.0.0.1:${tcpPort}`, service: 'echo' }] },
      admin: { listen: `127.0.0.1:${adminPort}` },
      drainTimeout: '1s',
    }
    if (inbound) local.inbound = [{ port: inboundPort, address: '127.0.0.1', ...inbound, mtls: 'strict' }]
    const file = path.join(this.dir, `${name}-proxy.yaml`)
    fs.writeFileSync(file, renderYaml([local]))
    const proc = new CliProcess(['--config', file, '--control-plane', this.control.address, '--name', name], {
      env: cleanEnv({ MESH_TOKEN: token }),
    })
    this.workloads.set(name, { name, proc, adminPort, outboundPort, tcpPort, inboundPort })
    await proc.ready(adminPort)
  }

  async certificate(workload: Workload): Promise<CertificateView> {
    const config = JSON.parse((await adminGet(workload.adminPort, '/config')).body) as { controlPlane: { identity: CertificateView | null } }
    if (config.controlPlane.identity === null) throw new Error(`${workload.name} holds no certificate`)
    return config.controlPlane.identity
  }

  async certificates(): Promise<Map<string, CertificateView>> {
    const views = new Map<string, CertificateView>()
    for (const workload of this.workloads.values()) views.set(workload.name, await this.certificate(workload))
    return views
  }

  /** `meshctl check -o json`, whatever the checks say (exit 1 when one fails, as while proxies renew). */
  async status(): Promise<{ ca: { authorityId: string; trustBundleRoots: number; subject: string } }> {
    const result = await this.control.meshctl(['check', '-o', 'json'])
    if (result.code !== 0 && result.code !== 1) throw new Error(`meshctl check exited ${result.code}: ${result.stderr}`)
    return JSON.parse(result.stdout) as { ca: { authorityId: string; trustBundleRoots: number; subject: string } }
  }

  /** The authority id mesh-control reports. */
  async authorityId(): Promise<string> {
    return (await this.status()).ca.authorityId
  }

  /** Waits until every proxy's /config shows a certificate of `authorityId`, then until meshctl check says so. */
  async waitForAuthority(authorityId: string): Promise<void> {
    await waitFor(
      `every proxy on authority ${authorityId}`,
      async () => {
        for (const [, view] of await this.certificates()) if (view.authorityId !== authorityId) return undefined
        return true
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    )
    const line = `ok    proxy certificates: ${this.workloads.size} of ${this.workloads.size} under authority ${authorityId.slice(0, 12)}\n`
    await waitFor(
      `meshctl check: ${line.trim()}`,
      async () => ((await this.control.meshctl(['check'])).stdout.includes(line) ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 200 },
    )
  }

  async metrics(workload: Workload) {
    return parseMetrics((await adminGet(workload.adminPort, '/metrics')).body)
  }

  /** mesh-control stopped with SIGTERM and started again on the same data dir and port with `args`. */
  async restartControl(args: string[]): Promise<void> {
    expect((await this.control.stop()).code).toBe(0)
    this.control = await this.control.restart({ args })
  }

  async close(): Promise<void> {
    for (const workload of this.workloads.values()) await workload.proc[Symbol.asyncDispose]()
    await this.control?.kill()
    await this.apps?.http.close()
    await this.apps?.grpc.close()
    await this.apps?.tcp.close()
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

interface Load {
  /** Successful requests (TCP: connections that echoed) so far, by protocol. */
  readonly served: Record<Protocol, number>
  readonly failures: string[]
  /** Stops the loops and waits for the requests in flight. */
  stop(): Promise<void>
}

/** Longest a load runs, whatever the test does: loops are bounded in time and count. */
const LOAD_LIMIT_MS = 150_000
const LOAD_LIMIT_REQUESTS = 200_000

/**
 * Requests through web's outbound listeners until stopped: two HTTP/1 keep-alive loops
 * to orders, one gRPC loop to greeter, one TCP loop to echo (a new connection each time).
 * Paced a little, so that six processes on a small machine leave room for handshakes and
 * control traffic: the point is continuity, not throughput.
 */
function startLoad(mesh: Mesh): Load {
  const served: Record<Protocol, number> = { http1: 0, grpc: 0, tcp: 0 }
  const failures: string[] = []
  const started = Date.now()
  let stopped = false
  const running = () => !stopped && Date.now() - started < LOAD_LIMIT_MS
  const web = mesh.web
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 })
  const grpcClient: EchoClient = echoClient(web.outboundPort, 'greeter')
  const fail = (protocol: Protocol, what: string) => failures.push(`${new Date().toISOString()} ${protocol}: ${what}`)

  async function loop(protocol: Protocol, once: (i: number) => Promise<void>, pauseMs: number): Promise<void> {
    for (let i = 0; running() && i < LOAD_LIMIT_REQUESTS; i++) {
      try {
        await once(i)
        served[protocol]++
      } catch (err) {
        fail(protocol, (err as Error).message)
      }
      await sleep(pauseMs)
    }
  }

  const http1 = async (i: number) => {
    const reply = await h1({ port: web.outboundPort, host: 'orders', path: `/load/${i}`, agent, timeoutMs: 5_000 })
    if (reply.status !== 200 || reply.headers['x-instance'] !== 'orders') throw new Error(`status ${reply.status}: ${reply.body.slice(0, 200)}`)
  }
  const grpcCall = async (i: number) => {
    const result = await unary(grpcClient, `load-${i}`, 5_000)
    if (result.error) throw new Error(`${result.error.code} ${result.error.details}`)
    if (result.reply?.instance !== 'greeter') throw new Error(`answered by ${result.reply?.instance}`)
  }
  const tcpExchange = async (i: number) => {
    const socket = await tcpConnect(web.tcpPort)
    try {
      const line = `ping ${i}\n`
      socket.write(line)
      const echoed = await readUntil(socket, (received) => received.toString().includes(line), 5_000)
      if (echoed.toString() !== line) throw new Error(`echoed ${JSON.stringify(echoed.toString())}`)
    } finally {
      socket.destroy()
    }
  }

  const loops = Promise.all([loop('http1', http1, 5), loop('http1', http1, 5), loop('grpc', grpcCall, 5), loop('tcp', tcpExchange, 10)])
  return {
    served,
    failures,
    async stop() {
      stopped = true
      await loops
      agent.destroy()
      grpcClient.close()
    },
  }
}

/** One HTTP/1.1 GET to orders' strict port over TLS; the status line, or null when refused. */
function strictGet(port: number, options: { ca: string; key?: string; cert?: string }): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ...options,
      servername: 'orders',
      ALPNProtocols: ['http/1.1'],
      // Mesh servers are named by their SPIFFE id (a URI SAN), not by a DNS name.
      checkServerIdentity: (_host, peer) =>
        peer.subjectaltname === `URI:${ORDERS_ID}` ? undefined : new Error(`unexpected server ${peer.subjectaltname}`),
    })
    let received = ''
    socket.on('secureConnect', () => socket.write('GET /probe HTTP/1.1\r\nhost: orders\r\nconnection: close\r\n\r\n'))
    socket.setEncoding('utf8').on('data', (d: string) => (received += d))
    socket.on('close', () => resolve(received === '' ? null : (received.split('\r\n')[0] as string)))
    socket.on('error', () => undefined) // a refusal; 'close' follows
    socket.setTimeout(5_000, () => socket.destroy())
  })
}

/** The certificate a strict port presents in its handshake (verified against `ca`), before it asks for ours. */
function presentedCertificate(port: number, ca: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca,
      servername: 'orders',
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    })
    socket.on('secureConnect', () => {
      resolve(socket.getPeerCertificate())
      socket.destroy()
    })
    socket.on('error', reject)
    socket.setTimeout(5_000, () => socket.destroy(new Error('no handshake within 5 s')))
  })
}

/** A self-signed ECDSA P-256 CA for the trust domain, made with openssl as an operator would. */
function operatorRoot(dir: string, name: string): { cert: string; key: string; subject: string } {
  const key = path.join(dir, `${name}.key`)
  const cert = path.join(dir, `${name}.crt`)
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'pipe' })
  fs.chmodSync(key, 0o600)
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-new', '-key', key, '-sha256', '-days', '30', '-subj', `/O=rotation test/CN=${name} root`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-addext', `subjectAltName=URI:spiffe://${TRUST_DOMAIN}`,
      '-out', cert,
    ],
    { stdio: 'pipe' },
  )
  return { cert, key, subject: `O=rotation test, CN=${name} root` }
}

/** An openssl-made client key with a certificate for `spiffeId` signed by the root at `root`. */
function clientCertificate(dir: string, root: { cert: string; key: string }, spiffeId: string): { key: string; cert: string } {
  const tag = path.basename(root.cert, '.crt')
  const key = path.join(dir, `client-${tag}.key`)
  const csr = path.join(dir, `client-${tag}.csr`)
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'pipe' })
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=client', '-out', csr], { stdio: 'pipe' })
  const signer = BindingCertificateAuthority.fromFiles(root.cert, root.key, TRUST_DOMAIN)
  return { key: fs.readFileSync(key, 'utf8'), cert: signer.sign(fs.readFileSync(csr, 'utf8'), spiffeId, 3600).certificateChainPem }
}

function inboundRequestsFromWeb(samples: ReturnType<typeof parseMetrics>): number {
  return sum(samples, 'request_total', { direction: 'inbound', tls: 'true', client_id: WEB_ID })
}

describe('certificate rotation', () => {
  it(
    'renews every proxy\'s one-minute certificate under continuous HTTP/1, gRPC and TCP load with zero failed requests',
    async () => {
      const mesh = await Mesh.start(['--cert-ttl', '1m'])
      try {
        const first = await mesh.certificates()
        const orders = mesh.workloads.get('orders') as Workload
        const greeter = mesh.workloads.get('greeter') as Workload
        const before = {
          orders: inboundRequestsFromWeb(await mesh.metrics(orders)),
          greeter: inboundRequestsFromWeb(await mesh.metrics(greeter)),
        }

        const load = startLoad(mesh)
        let renewed: Map<string, CertificateView>
        try {
          // 70 % of a life of 1 min plus the 30 s backdating: each renews about 33 s after it was issued.
          renewed = await waitFor(
            'every proxy to renew its certificate',
            async () => {
              const now = await mesh.certificates()
              return [...now].every(([name, view]) => view.serial !== first.get(name)?.serial) ? now : undefined
            },
            { timeoutMs: 70_000, intervalMs: 500 },
          )
          // Keep the load on for a while with every proxy on its renewed certificate.
          const servedAtRenewal = { ...load.served }
          await sleep(2_000)
          for (const protocol of PROTOCOLS) expect(load.served[protocol], protocol).toBeGreaterThan(servedAtRenewal[protocol])
        } finally {
          await load.stop()
        }

        expect(load.failures).toEqual([])
        for (const protocol of PROTOCOLS) expect(load.served[protocol], protocol).toBeGreaterThan(200)
        for (const [name, view] of renewed) {
          const old = first.get(name) as CertificateView
          expect(view.spiffeId).toBe(`spiffe://${TRUST_DOMAIN}/ns/default/sa/${name}`)
          expect(Date.parse(view.notAfter), name).toBeGreaterThan(Date.parse(old.notAfter))
          expect(view.authorityId).toBe(old.authorityId) // same CA and bundle: a renewal, not a rotation
        }

        // The servers saw web's identity over mTLS all along.
        expect(inboundRequestsFromWeb(await mesh.metrics(orders))).toBeGreaterThan(before.orders)
        expect(inboundRequestsFromWeb(await mesh.metrics(greeter))).toBeGreaterThan(before.greeter)
        const echo = mesh.workloads.get('echo') as Workload
        expect(sum(await mesh.metrics(echo), 'tcp_open_total', { direction: 'inbound', tls: 'true' })).toBeGreaterThan(200)

        // New handshakes present the renewed certificate.
        const root = fs.readFileSync(path.join(mesh.control.dataDir, 'ca', 'ca.crt'), 'utf8')
        const presented = await presentedCertificate(orders.inboundPort, root)
        expect(presented.serialNumber.toLowerCase()).toBe((await mesh.certificate(orders)).serial.toLowerCase())
        expect(presented.serialNumber.toLowerCase()).not.toBe((first.get('orders') as CertificateView).serial.toLowerCase())
      } finally {
        await mesh.close()
      }
    },
    150_000,
  )
})

describe('trust bundle rotation', () => {
  it(
    'moves the mesh from one operator root to another in three mesh-control restarts with zero failed requests',
    async () => {
      const rootsDir = makeTempDir('mesh-roots-')
      const oldRoot = operatorRoot(rootsDir, 'old')
      const newRoot = operatorRoot(rootsDir, 'new')
      const mesh = await Mesh.start(['--ca-cert', oldRoot.cert, '--ca-key', oldRoot.key])
      try {
        const initial = await mesh.authorityId()
        await mesh.waitForAuthority(initial)
        for (const [, view] of await mesh.certificates()) expect(view.issuer).toBe(oldRoot.subject)

        const load = startLoad(mesh)
        const step = async (args: string[], issuer: string): Promise<string> => {
          const previous = await mesh.authorityId()
          await mesh.restartControl(args)
          const current = await mesh.authorityId()
          expect(current).not.toBe(previous)
          await mesh.waitForAuthority(current)
          for (const [name, view] of await mesh.certificates()) expect(view.issuer, name).toBe(issuer)
          // Traffic in the new state (TCP: handshakes with the new certificates and bundles).
          const served = { ...load.served }
          await sleep(1_500)
          for (const protocol of PROTOCOLS) expect(load.served[protocol], protocol).toBeGreaterThan(served[protocol])
          return current
        }
        try {
          await sleep(1_000)
          // (a) The new root joins the trust bundle: every proxy renews and trusts both roots.
          await step(['--ca-cert', oldRoot.cert, '--ca-key', oldRoot.key, '--trust-bundle', newRoot.cert], oldRoot.subject)
          // (b) The new root signs; the old one stays trusted for proxies not yet renewed.
          await step(['--ca-cert', newRoot.cert, '--ca-key', newRoot.key, '--trust-bundle', oldRoot.cert], newRoot.subject)
          // (c) The old root leaves the bundle.
          const final = await step(['--ca-cert', newRoot.cert, '--ca-key', newRoot.key], newRoot.subject)
          expect(final).not.toBe(initial)
        } finally {
          await load.stop()
        }
        expect(load.failures).toEqual([])
        for (const protocol of PROTOCOLS) expect(load.served[protocol], protocol).toBeGreaterThan(100)
        const status = await mesh.status()
        expect(status.ca).toMatchObject({ trustBundleRoots: 1, subject: newRoot.subject })

        // The strict port now proves a certificate of the new root, takes clients of the
        // new root, and refuses clients of the old one.
        const orders = mesh.workloads.get('orders') as Workload
        const oldPem = fs.readFileSync(oldRoot.cert, 'utf8')
        const newPem = fs.readFileSync(newRoot.cert, 'utf8')
        const webOfNewRoot = clientCertificate(rootsDir, newRoot, WEB_ID)
        const webOfOldRoot = clientCertificate(rootsDir, oldRoot, WEB_ID)
        expect(await strictGet(orders.inboundPort, { ca: newPem, ...webOfNewRoot })).toBe('HTTP/1.1 200 OK')
        expect(await strictGet(orders.inboundPort, { ca: newPem, ...webOfOldRoot })).toBeNull()
        await expect(presentedCertificate(orders.inboundPort, oldPem)).rejects.toThrow(/issuer|verify|self.signed/i)
      } finally {
        await mesh.close()
        fs.rmSync(rootsDir, { recursive: true, force: true })
      }
    },
    150_000,
  )
})
