/**
 * mesh-control as a certificate authority, over real gRPC: Identity.Certify with join
 * tokens, the trust bundle, the CA in the data dir (modes, restarts), an operator's CA
 * and extra roots, Admin.Status `ca`, and that no private key leaves the CA.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { inspect } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { afterEach, describe, expect, it } from 'vitest'
import { BindingCertificateAuthority, BindingTrustBundle, BindingWorkloadIdentity } from '../../native/index.js'
import {
  IdentityClient,
  durationToMs,
  timestampToDate,
  tokenMetadata,
  type CertifyRequest,
  type CertifyResponse__Output,
  type GetTrustBundleResponse__Output,
  type IdentityClientType,
  type StatusResponse__Output,
} from '../../src/control/proto.js'
import { MeshControl, MeshControlError } from '../../src/controlplane/index.js'
import { authorityIdOf } from '../../src/controlplane/identity/authority.js'
import { call, callError, startHarness, tempDataDir as harnessDataDir, token, WatchStream, type Harness } from './harness.js'

const ORDERS = 'spiffe://mesh.local/ns/default/sa/orders'

const harnesses: Harness[] = []
const clients: grpc.Client[] = []
const dataDirs: string[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  for (const harness of harnesses.splice(0)) await harness.cleanup()
  for (const dir of dataDirs.splice(0)) rmSync(dirname(dir), { recursive: true, force: true })
})

/** A fresh `<temp>/data` path (not created), removed after the test. */
function tempDataDir(): string {
  const dir = harnessDataDir()
  dataDirs.push(dir)
  return dir
}

async function start(options: Parameters<typeof startHarness>[0] = {}, dataDir?: string): Promise<{ h: Harness; identity: IdentityClientType }> {
  const h = await startHarness(options, dataDir)
  harnesses.push(h)
  const identity = new (IdentityClient())(h.control.address, grpc.credentials.createInsecure())
  clients.push(identity)
  return { h, identity }
}

function certify(client: IdentityClientType, request: CertifyRequest, tokenValue?: string): Promise<CertifyResponse__Output> {
  return call(client, 'Certify', request, tokenValue === undefined ? new grpc.Metadata() : tokenMetadata(tokenValue))
}

function trustBundle(client: IdentityClientType): Promise<GetTrustBundleResponse__Output> {
  return call(client, 'GetTrustBundle', {})
}

function status(h: Harness): Promise<StatusResponse__Output> {
  return call(h.admin, 'Status', {})
}

/** The CSR with the last byte of its DER (inside the signature) flipped. */
function tamperSignature(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01
  const lines = der.toString('base64').match(/.{1,64}/g) as string[]
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`
}

function mode(path: string): number {
  return statSync(path).mode & 0o777
}

describe('Identity.Certify', () => {
  it('issues a certificate for the token\'s identity that verifies against the bundle, with the configured life', async () => {
    const { h, identity } = await start({ certTtlMs: 5 * 60_000 })
    const orders = await token(h, 'orders')
    const workload = new BindingWorkloadIdentity(ORDERS)
    const before = Date.now()
    const response = await certify(identity, { csrPem: workload.csrPem(), service: 'orders' }, orders)
    const after = Date.now()

    expect(response.spiffeId).toBe(ORDERS)
    const bundle = new BindingTrustBundle('mesh.local')
    bundle.addPem(response.trustBundlePem, 'response')
    expect(bundle.verify(response.certificateChainPem, 'server')).toBe(ORDERS)
    expect(bundle.verify(response.certificateChainPem, 'client')).toBe(ORDERS)
    const leaf = new X509Certificate(response.certificateChainPem)
    expect(leaf.subjectAltName).toBe(`URI:${ORDERS}`)
    expect(leaf.checkIssued(new X509Certificate(response.trustBundlePem))).toBe(true)

    const notAfter = timestampToDate(response.notAfter)!.getTime()
    expect(notAfter).toBe(new Date(leaf.validTo).getTime())
    expect(notAfter).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 5 * 60_000)
    expect(notAfter).toBeLessThanOrEqual(after + 5 * 60_000)
    expect(notAfter - timestampToDate(response.notBefore)!.getTime()).toBe(5 * 60_000 + 30_000)

    // The proxy side accepts it as its own.
    expect(workload.install(response.certificateChainPem, response.trustBundlePem).spiffeId).toBe(ORDERS)
    expect(h.logs.some((line) => line.startsWith(`identity: issued ${ORDERS} (serial `))).toBe(true)
  })

  it('takes the identity from the token, not from the CSR', async () => {
    const { h, identity } = await start()
    const shop = await token(h, 'web', 'shop')
    // The CSR asks for an admin identity; the token admits shop/web.
    const csr = new BindingWorkloadIdentity('spiffe://mesh.local/ns/kube-system/sa/admin').csrPem()
    const response = await certify(identity, { csrPem: csr, service: 'web', namespace: 'shop' }, shop)
    expect(response.spiffeId).toBe('spiffe://mesh.local/ns/shop/sa/web')
    expect(new X509Certificate(response.certificateChainPem).subjectAltName).toBe('URI:spiffe://mesh.local/ns/shop/sa/web')
  })

  it('refuses a missing or unknown token and a token of another identity', async () => {
    const { h, identity } = await start()
    const payments = await token(h, 'payments')
    const csrPem = new BindingWorkloadIdentity(ORDERS).csrPem()

    const missing = await callError(certify(identity, { csrPem, service: 'orders' }))
    expect(missing.code).toBe(grpc.status.UNAUTHENTICATED)
    const unknown = await callError(certify(identity, { csrPem, service: 'orders' }, `mesh_${'x'.repeat(43)}`))
    expect(unknown.code).toBe(grpc.status.UNAUTHENTICATED)
    const mismatch = await callError(certify(identity, { csrPem, service: 'orders' }, payments))
    expect(mismatch.code).toBe(grpc.status.PERMISSION_DENIED)
    expect(mismatch.details).toBe('join token admits default/payments, not default/orders')
    const otherNamespace = await callError(certify(identity, { csrPem, service: 'payments', namespace: 'shop' }, payments))
    expect(otherNamespace.code).toBe(grpc.status.PERMISSION_DENIED)
    expect(h.logs.some((line) => line.startsWith('identity: issued'))).toBe(false)
  })

  it('refuses malformed requests and CSRs with INVALID_ARGUMENT and one line', async () => {
    const { h, identity } = await start()
    const orders = await token(h, 'orders')
    const csrPem = new BindingWorkloadIdentity(ORDERS).csrPem()
    const tampered = tamperSignature(csrPem)
    const cases: [CertifyRequest, RegExp][] = [
      [{ csrPem, service: '' }, /^service: required$/],
      [{ csrPem: '', service: 'orders' }, /^csr_pem: required$/],
      [{ csrPem: 'hello', service: 'orders' }, /^csr_pem: expected a PEM "CERTIFICATE REQUEST"/],
      [{ csrPem: tampered, service: 'orders' }, /^csr_pem: the signature does not verify with the CSR's own key$/],
      [{ csrPem: readFileSync(join(h.dataDir, 'ca', 'ca.crt'), 'utf8'), service: 'orders' }, /^csr_pem: expected a PEM "CERTIFICATE REQUEST"/],
    ]
    for (const [request, details] of cases) {
      const err = await callError(certify(identity, request, orders))
      expect(err.code, JSON.stringify(request.csrPem?.slice(0, 20))).toBe(grpc.status.INVALID_ARGUMENT)
      expect(err.details).toMatch(details)
      expect(err.details).not.toContain('\n')
    }
    expect(h.logs.filter((line) => line.startsWith('identity: refused a certificate for default/orders: csr_pem: ')).length).toBe(3)
  })
})

describe('the CA in the data dir', () => {
  it('is created on first start with dir 0700 and key 0600, and a restart keeps the same root', async () => {
    const dataDir = tempDataDir()
    const first = await start({}, dataDir)
    expect(mode(join(dataDir, 'ca'))).toBe(0o700)
    expect(mode(join(dataDir, 'ca', 'ca.key'))).toBe(0o600)
    expect(first.h.logs.some((line) => /^certificate authority: O=mesh-core, CN=mesh.local root CA \w+ created a new root in /.test(line))).toBe(true)
    const bundle = await trustBundle(first.identity)
    expect(bundle.trustDomain).toBe('mesh.local')
    expect(bundle.trustBundlePem).toBe(readFileSync(join(dataDir, 'ca', 'ca.crt'), 'utf8'))
    const orders = await token(first.h, 'orders')
    const issued = await certify(first.identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders' }, orders)

    await first.h.stop()
    harnesses.splice(harnesses.indexOf(first.h), 1)
    const second = await start({}, dataDir)
    expect(second.h.logs.some((line) => /^certificate authority: .* loaded from /.test(line))).toBe(true)
    const again = await trustBundle(second.identity)
    expect(again.trustBundlePem).toBe(bundle.trustBundlePem)
    // A certificate issued before the restart still verifies with the bundle after it,
    // and the token survives too.
    const verifier = new BindingTrustBundle('mesh.local')
    verifier.addPem(again.trustBundlePem, 'bundle')
    expect(verifier.verify(issued.certificateChainPem, 'server')).toBe(ORDERS)
    const reissued = await certify(second.identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders' }, orders)
    expect(verifier.verify(reissued.certificateChainPem, 'client')).toBe(ORDERS)
  })

  it('refuses to start on a data dir CA of another trust domain or with a readable key', async () => {
    const dataDir = tempDataDir()
    const first = await start({}, dataDir)
    await first.h.stop()
    await expect(MeshControl.start({ listen: '127.0.0.1:0', dataDir, trustDomain: 'prod.example', logger: null })).rejects.toThrow(
      new MeshControlError(
        `certificate authority: ${join(dataDir, 'ca')}: ${join(dataDir, 'ca', 'ca.crt')}: CA certificate is for trust domain mesh.local, not prod.example; start with that --trust-domain, or use another --data-dir`,
      ),
    )
    chmodSync(join(dataDir, 'ca', 'ca.key'), 0o644)
    const err = await MeshControl.start({ listen: '127.0.0.1:0', dataDir, logger: null }).catch((e: unknown) => e as Error)
    expect(err).toBeInstanceOf(MeshControlError)
    expect((err as Error).message).toMatch(/ca\.key: mode 0644 lets other users read the CA key; run `chmod 600 /)
    // The failed starts released the data dir: a correct start works.
    chmodSync(join(dataDir, 'ca', 'ca.key'), 0o600)
    await start({}, dataDir)
  })
})

describe('an operator CA and extra roots', () => {
  it('signs with --ca-cert/--ca-key, publishes extra roots, and reports both in Status', async () => {
    // An operator's CA and the next root, made elsewhere.
    const opsDir = tempDataDir()
    const ops = BindingCertificateAuthority.loadOrCreate(opsDir, 'mesh.local')
    const next = BindingCertificateAuthority.loadOrCreate(tempDataDir(), 'mesh.local')
    const nextRoot = join(opsDir, 'next-root.pem')
    writeFileSync(nextRoot, next.rootsPem)

    const { h, identity } = await start({
      caCertFile: join(opsDir, 'ca', 'ca.crt'),
      caKeyFile: join(opsDir, 'ca', 'ca.key'),
      trustBundleFiles: [nextRoot],
      certTtlMs: 60_000,
    })
    expect(() => statSync(join(h.dataDir, 'ca'))).toThrow(/ENOENT/) // no data dir CA was made
    const bundle = await trustBundle(identity)
    expect(bundle.trustBundlePem).toBe(ops.rootsPem + next.rootsPem)

    const orders = await token(h, 'orders')
    const issued = await certify(identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders' }, orders)
    expect(issued.trustBundlePem).toBe(bundle.trustBundlePem)
    expect(new X509Certificate(issued.certificateChainPem).checkIssued(new X509Certificate(ops.certificatePem))).toBe(true)

    const ca = (await status(h)).ca!
    expect(ca).toMatchObject({
      valid: true,
      trustDomain: 'mesh.local',
      error: '',
      trustBundleRoots: 2,
      subject: ops.certificate.subject,
      source: join(opsDir, 'ca', 'ca.crt'),
    })
    expect(durationToMs(ca.certificateTtl)).toBe(60_000)
    expect(timestampToDate(ca.notAfter)!.getTime()).toBe(ops.certificate.notAfter)
    expect(timestampToDate(ca.notBefore)!.getTime()).toBe(ops.certificate.notBefore)
  })

  it('refuses bad CA files, half a CA, and bundle files that are not roots of the domain, with one line', async () => {
    const opsDir = tempDataDir()
    BindingCertificateAuthority.loadOrCreate(opsDir, 'mesh.local')
    const other = BindingCertificateAuthority.loadOrCreate(tempDataDir(), 'other.domain')
    const foreignRoot = join(opsDir, 'foreign.pem')
    writeFileSync(foreignRoot, other.rootsPem)
    const cert = join(opsDir, 'ca', 'ca.crt')
    const key = join(opsDir, 'ca', 'ca.key')
    const cases: [Partial<Parameters<typeof MeshControl.start>[0]>, string | RegExp][] = [
      [{ caCertFile: cert }, "--ca-cert and --ca-key go together: give both, or neither to use the data dir's own CA"],
      [{ caCertFile: cert, caKeyFile: join(opsDir, 'missing.key') }, `certificate authority: ${join(opsDir, 'missing.key')}: cannot read: not found`],
      [{ caCertFile: key, caKeyFile: key }, `certificate authority: ${key}: CA certificate: holds a private key; expected only certificates`],
      [{ trustBundleFiles: [foreignRoot] }, `--trust-bundle: ${foreignRoot}, certificate 1: ${other.certificate.subject} is a root of trust domain other.domain, not mesh.local`],
      [{ trustBundleFiles: [join(opsDir, 'nope.pem')] }, `--trust-bundle: ${join(opsDir, 'nope.pem')}: cannot read: not found`],
      [{ certTtlMs: 1_000 }, '--cert-ttl: expected from 1m to 720h, got 1s'],
    ]
    for (const [options, message] of cases) {
      const err = await MeshControl.start({ listen: '127.0.0.1:0', dataDir: tempDataDir(), logger: null, ...options }).catch((e: unknown) => e as Error)
      expect(err, JSON.stringify(options)).toBeInstanceOf(MeshControlError)
      if (typeof message === 'string') expect((err as Error).message).toBe(message)
      else expect((err as Error).message).toMatch(message)
      expect((err as Error).message).not.toContain('\n')
      expect((err as Error).message).not.toContain('PRIVATE KEY')
    }
  })
})

describe('the authority id', () => {
  const der = (pem: string): Buffer => new X509Certificate(pem).raw
  const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest()

  it('is SHA-256 over the signing CA digest and the sorted root digests: order-independent, changed by any root or CA change', () => {
    const a = BindingCertificateAuthority.loadOrCreate(tempDataDir(), 'mesh.local')
    const b = BindingCertificateAuthority.loadOrCreate(tempDataDir(), 'mesh.local')
    const rootDigests = [sha256(der(a.rootsPem)), sha256(der(b.rootsPem))].sort(Buffer.compare)
    const expected = createHash('sha256').update(Buffer.concat([sha256(der(a.certificatePem)), ...rootDigests])).digest('hex')

    expect(authorityIdOf(a.certificatePem, a.rootsPem + b.rootsPem)).toBe(expected)
    expect(authorityIdOf(a.certificatePem, b.rootsPem + a.rootsPem)).toBe(expected)
    expect(expected).toMatch(/^[0-9a-f]{64}$/)
    const ids = [
      authorityIdOf(a.certificatePem, a.rootsPem),
      authorityIdOf(a.certificatePem, a.rootsPem + b.rootsPem),
      authorityIdOf(b.certificatePem, a.rootsPem + b.rootsPem),
      authorityIdOf(b.certificatePem, b.rootsPem),
    ]
    expect(new Set(ids).size).toBe(4)
    expect(() => authorityIdOf('', a.rootsPem)).toThrow(/no certificate/)
  })

  it('comes with every certificate and push, shows in Status, and marks each proxy mesh-control certified', async () => {
    const { h, identity } = await start()
    const ca = BindingCertificateAuthority.loadOrCreate(h.dataDir, 'mesh.local')
    const id = authorityIdOf(ca.certificatePem, ca.rootsPem)
    expect(h.logs.find((line) => line.startsWith('certificate authority: '))).toMatch(new RegExp(`; authority id ${id}$`))
    expect((await status(h)).ca?.authorityId).toBe(id)

    const orders = await token(h, 'orders')
    // A proxy that connects with a certificate of an earlier authority...
    const watch = new WatchStream(h.control.address, orders).hello({ service: 'orders', proxyId: 'orders-1', authorityId: 'f'.repeat(64) })
    try {
      const push = await watch.nextPush()
      expect(push.authorityId).toBe(id)
      watch.ack(push)
      const row = async () => (await status(h)).proxies.find((p) => p.proxyId === 'orders-1')
      await expect.poll(async () => (await row())?.authorityId).toBe('f'.repeat(64))
      // ...is on the current one once mesh-control issued it a certificate.
      const issued = await certify(identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders', proxyId: 'orders-1' }, orders)
      expect(issued.authorityId).toBe(id)
      expect((await row())?.authorityId).toBe(id)
      expect(h.logs.some((line) => line.startsWith(`identity: issued ${ORDERS} to proxy "orders-1" (serial `))).toBe(true)
    } finally {
      watch.close()
    }

    // Certify can beat the Hello: the row still shows the certificate once the stream joins.
    await certify(identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders', proxyId: 'orders-2' }, orders)
    const late = new WatchStream(h.control.address, orders).hello({ service: 'orders', proxyId: 'orders-2' })
    try {
      await late.nextPush()
      expect((await status(h)).proxies.find((p) => p.proxyId === 'orders-2')?.authorityId).toBe(id)
    } finally {
      late.close()
    }
  })

  it('changes when mesh-control restarts with another root in its bundle', async () => {
    const { h } = await start()
    const before = (await status(h)).ca!.authorityId
    const next = BindingCertificateAuthority.loadOrCreate(tempDataDir(), 'mesh.local')
    const nextRoot = join(dirname(h.dataDir), 'next-root.pem')
    writeFileSync(nextRoot, next.rootsPem)
    const again = await h.restart({ trustBundleFiles: [nextRoot] })
    harnesses.push(again)
    const after = (await status(again)).ca!.authorityId
    expect(after).not.toBe(before)
    const orders = await token(again, 'orders')
    const watch = new WatchStream(again.control.address, orders).hello({ service: 'orders' })
    try {
      expect((await watch.nextPush()).authorityId).toBe(after)
    } finally {
      watch.close()
    }
  })
})

it('no private key material in any RPC response, Status, or log line', async () => {
  const { h, identity } = await start()
  const orders = await token(h, 'orders')
  const responses: unknown[] = [
    await certify(identity, { csrPem: new BindingWorkloadIdentity(ORDERS).csrPem(), service: 'orders' }, orders),
    await trustBundle(identity),
    await status(h),
    await callError(certify(identity, { csrPem: readFileSync(join(h.dataDir, 'ca', 'ca.key'), 'utf8'), service: 'orders' }, orders)),
  ]
  const key = readFileSync(join(h.dataDir, 'ca', 'ca.key'), 'utf8')
  expect(key).toContain('PRIVATE KEY') // the checks below can fail
  const keyBody = key.split('\n')[1] as string
  const seen = [...responses.map((r) => JSON.stringify(r)), ...h.logs, inspect(h.control, { depth: 6, getters: true })]
  for (const text of seen) {
    expect(text).not.toContain('PRIVATE KEY')
    expect(text).not.toContain(keyBody)
  }
})
