/**
 * The identity binding from JavaScript: the CA in a data dir (modes, reload), signing,
 * a workload identity's CSR/install cycle, and that no private key reaches any value
 * JavaScript can see. Certificates are cross-checked with Node's own X.509 (OpenSSL).
 */
import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import {
  BindingCertificateAuthority,
  BindingTrustBundle,
  BindingWorkloadIdentity,
  type BindingIssuedCertificate,
} from '../../native/index.js'

const ORDERS = 'spiffe://mesh.local/ns/default/sa/orders'
const dirs: string[] = []

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-identity-'))
  dirs.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

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

function bundleOf(...cas: BindingCertificateAuthority[]): BindingTrustBundle {
  const bundle = new BindingTrustBundle('mesh.local')
  for (const ca of cas) bundle.addPem(ca.rootsPem, 'ca')
  return bundle
}

/** Every value reachable from an object's getters and own properties, as text. */
function visibleText(value: object): string {
  const parts = [inspect(value, { depth: 5, getters: true, showHidden: true })]
  let proto = Object.getPrototypeOf(value) as object | null
  while (proto !== null && proto !== Object.prototype) {
    for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (descriptor.get !== undefined) parts.push(`${name}=${inspect(descriptor.get.call(value), { depth: 5 })}`)
    }
    proto = Object.getPrototypeOf(proto) as object | null
  }
  return parts.join('\n')
}

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a throw')
}

describe('BindingCertificateAuthority', () => {
  it('creates its root under <dataDir>/ca with dir 0700 and key 0600, and reloads the same root', () => {
    const dir = dataDir()
    const ca = BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
    expect(ca.created).toBe(true)
    expect(mode(join(dir, 'ca'))).toBe(0o700)
    expect(mode(join(dir, 'ca', 'ca.key'))).toBe(0o600)
    expect(readFileSync(join(dir, 'ca', 'ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/)

    const root = new X509Certificate(ca.certificatePem)
    expect(root.ca).toBe(true)
    expect(root.checkIssued(root)).toBe(true)
    expect(root.verify(root.publicKey)).toBe(true)
    expect(root.publicKey.asymmetricKeyType).toBe('ec')
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(root.subject).toContain('CN=mesh.local root CA')
    expect(root.subjectAltName).toBe('URI:spiffe://mesh.local')
    expect(ca.certificate.spiffeId).toBe('spiffe://mesh.local')
    // About ten years.
    const years = (ca.certificate.notAfter - ca.certificate.notBefore) / (365 * 86_400_000)
    expect(years).toBeGreaterThan(9.9)
    expect(years).toBeLessThan(10.1)
    expect(ca.validityProblem()).toBeNull()
    expect(ca.validityProblem(ca.certificate.notAfter + 1000)).toMatch(/expired at/)

    const again = BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
    expect(again.created).toBe(false)
    expect(again.certificatePem).toBe(ca.certificatePem)
  })

  it('signs CSRs with exactly the SPIFFE id it is given, verified by OpenSSL and the bundle', () => {
    const ca = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    // The workload asks for "admin"; the caller decided "orders".
    const workload = new BindingWorkloadIdentity('spiffe://mesh.local/ns/kube-system/sa/admin')
    const before = Date.now()
    const issued = ca.sign(workload.csrPem(), ORDERS, 120)
    const leaf = new X509Certificate(issued.certificateChainPem)
    expect(leaf.subjectAltName).toBe(`URI:${ORDERS}`)
    expect(leaf.subject ?? '').toBe('') // Node reports an empty subject as undefined
    expect(leaf.ca).toBe(false)
    expect(leaf.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']))
    expect(leaf.checkIssued(new X509Certificate(ca.certificatePem))).toBe(true)
    expect(leaf.verify(new X509Certificate(ca.certificatePem).publicKey)).toBe(true)
    expect(issued.spiffeId).toBe(ORDERS)
    expect(issued.notAfter).toBe(new Date(leaf.validTo).getTime())
    // Lifetime from now (whole seconds), notBefore backdated 30 s for clock skew.
    expect(issued.notAfter).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000)
    expect(issued.notAfter).toBeLessThanOrEqual(Date.now() + 120_000)
    expect(issued.notAfter - issued.notBefore).toBe(150_000)
    expect(bundleOf(ca).verify(issued.certificateChainPem, 'server')).toBe(ORDERS)
    expect(bundleOf(ca).verify(issued.certificateChainPem, 'client')).toBe(ORDERS)
    expect(errorOf(() => bundleOf(ca).verify(issued.certificateChainPem, 'client', issued.notAfter + 1000)).message).toMatch(
      /expired at/,
    )
  })

  it('refuses bad CSRs, ids and lifetimes with an IdentityInvalidInput code', () => {
    const ca = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const csr = new BindingWorkloadIdentity(ORDERS).csrPem()
    const tampered = tamperSignature(csr)
    for (const [input, id, message] of [
      ['not a csr', ORDERS, /CSR: expected a PEM "CERTIFICATE REQUEST"/],
      [tampered, ORDERS, /^CSR: the signature does not verify with the CSR's own key$/],
      [csr, 'spiffe://other.domain/ns/default/sa/orders', /not in this CA's trust domain mesh.local/],
      [csr, 'https://mesh.local/x', /expected it to start with spiffe:\/\//],
    ] as const) {
      const err = errorOf(() => ca.sign(input, id, 60))
      expect(err.code).toBe('IdentityInvalidInput')
      expect(err.message).toMatch(message)
    }
    expect(errorOf(() => ca.sign(csr, ORDERS, 0)).message).toMatch(/at least 1 second/)
  })

  it('loads an operator CA from files and names the file that is wrong', () => {
    const dir = dataDir()
    const source = BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
    const other = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const certPath = join(dir, 'ca', 'ca.crt')
    const keyPath = join(dir, 'ca', 'ca.key')
    const loaded = BindingCertificateAuthority.fromFiles(certPath, keyPath, 'mesh.local')
    expect(loaded.created).toBe(false)
    expect(loaded.certificatePem).toBe(source.certificatePem)

    const otherCert = join(dir, 'other.crt')
    writeFileSync(otherCert, other.certificatePem)
    const err = errorOf(() => BindingCertificateAuthority.fromFiles(otherCert, keyPath, 'mesh.local'))
    expect(err.code).toBe('IdentityInvalidInput')
    expect(err.message).toBe(`${keyPath}: CA key: it is not the key of the CA certificate (${other.certificate.subject})`)
    expect(errorOf(() => BindingCertificateAuthority.fromFiles(certPath, keyPath, 'other.domain')).message).toMatch(
      /trust domain mesh.local, not other.domain/,
    )
    expect(errorOf(() => BindingCertificateAuthority.fromFiles(join(dir, 'nope'), keyPath, 'mesh.local')).code).toBe('IdentityIo')
  })

  it('refuses a data dir key that other users can read', () => {
    const dir = dataDir()
    BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
    chmodSync(join(dir, 'ca', 'ca.key'), 0o640)
    const err = errorOf(() => BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local'))
    expect(err.code).toBe('IdentityIo')
    expect(err.message).toBe(`${join(dir, 'ca', 'ca.key')}: mode 0640 lets other users read the CA key; run \`chmod 600 ${join(dir, 'ca', 'ca.key')}\``)
  })
})

describe('BindingTrustBundle', () => {
  it('holds several roots, deduplicates, and refuses what is not a root of its domain', () => {
    const a = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const b = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const bundle = new BindingTrustBundle('mesh.local')
    expect(bundle.addPem(a.rootsPem + b.rootsPem, 'roots')).toBe(2)
    expect(bundle.addPem(a.rootsPem, 'again')).toBe(0)
    expect(bundle.roots.map((root) => root.subject)).toEqual([a.certificate.subject, b.certificate.subject])
    expect(bundle.pem).toBe(a.rootsPem + b.rootsPem)
    a.checkTrustedBy(bundle)

    const file = join(dataDir(), 'bundle.pem')
    writeFileSync(file, new BindingWorkloadIdentity(ORDERS).csrPem())
    expect(errorOf(() => bundle.addFile(file)).message).toMatch(/bundle.pem: unexpected PEM section Csr/)
    const foreign = BindingCertificateAuthority.loadOrCreate(dataDir(), 'other.domain')
    expect(errorOf(() => bundle.addPem(foreign.rootsPem, 'extra.pem')).message).toBe(
      `extra.pem, certificate 1: ${foreign.certificate.subject} is a root of trust domain other.domain, not mesh.local`,
    )
    expect(errorOf(() => a.checkTrustedBy(new BindingTrustBundle('mesh.local'))).message).toMatch(
      /the trust bundle does not trust this CA's certificates/,
    )
  })
})

describe('BindingWorkloadIdentity', () => {
  function signed(ca: BindingCertificateAuthority, identity: BindingWorkloadIdentity, id = ORDERS): BindingIssuedCertificate {
    return ca.sign(identity.csrPem(), id, 3600)
  }

  it('makes a key per certificate, keeps it across CSR retries, and installs only a matching certificate', () => {
    const ca = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const bundle = bundleOf(ca)
    const identity = new BindingWorkloadIdentity(ORDERS)
    expect(identity.spiffeId).toBe(ORDERS)
    expect(identity.certificate).toBeNull()
    expect(identity.renewAt()).toBeNull()

    // Retried CSRs before an install are for the same key.
    const first = new X509Certificate(ca.sign(identity.csrPem(), ORDERS, 3600).certificateChainPem)
    const retry = ca.sign(identity.csrPem(), ORDERS, 3600)
    expect(new X509Certificate(retry.certificateChainPem).publicKey.export({ format: 'der', type: 'spki' })).toEqual(
      first.publicKey.export({ format: 'der', type: 'spki' }),
    )
    const info = identity.install(retry.certificateChainPem, bundle.pem)
    expect(info).toEqual({ subject: '', spiffeId: ORDERS, notBefore: retry.notBefore, notAfter: retry.notAfter, serial: retry.serial })
    expect(identity.certificate).toEqual(info)
    expect(identity.certificateChainPem).toBe(retry.certificateChainPem)
    expect(identity.trustBundlePem).toBe(bundle.pem)
    expect(identity.renewAt()).toBeCloseTo(retry.notBefore + 0.7 * (retry.notAfter - retry.notBefore), -1)

    // After an install, the next CSR is for a new key.
    const renewal = signed(ca, identity)
    expect(new X509Certificate(renewal.certificateChainPem).publicKey.export({ format: 'der', type: 'spki' })).not.toEqual(
      first.publicKey.export({ format: 'der', type: 'spki' }),
    )
    // A certificate for the previous key, another id, or another root: refused, and the
    // certificate in force stays.
    for (const [chain, message] of [
      [retry.certificateChainPem, /for another key/],
      [ca.sign(identity.csrPem(), 'spiffe://mesh.local/ns/default/sa/payments', 3600).certificateChainPem, /expected spiffe:\/\/mesh.local\/ns\/default\/sa\/orders/],
      [signed(BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local'), identity).certificateChainPem, /not issued by a root of the trust bundle/],
    ] as const) {
      const err = errorOf(() => identity.install(chain, bundle.pem))
      expect(err.code).toBe('IdentityUntrusted')
      expect(err.message).toMatch(message)
      expect(identity.certificate).toEqual(info)
    }
    expect(identity.install(renewal.certificateChainPem, bundle.pem).serial).toBe(renewal.serial)
    expect(errorOf(() => identity.install(renewal.certificateChainPem, bundle.pem)).message).toMatch(/no CSR is outstanding/)
  })

  it('takes a new trust bundle only if it still trusts the certificate in force', () => {
    const oldCa = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const newCa = BindingCertificateAuthority.loadOrCreate(dataDir(), 'mesh.local')
    const identity = new BindingWorkloadIdentity(ORDERS)
    identity.install(signed(oldCa, identity).certificateChainPem, oldCa.rootsPem)
    identity.updateTrustBundle(oldCa.rootsPem + newCa.rootsPem)
    expect(identity.trustBundlePem).toBe(oldCa.rootsPem + newCa.rootsPem)
    expect(errorOf(() => identity.updateTrustBundle(newCa.rootsPem)).message).toMatch(
      /the new trust bundle does not trust this workload's certificate/,
    )
    // Reissued by the new root, then the old root can go.
    identity.install(signed(newCa, identity).certificateChainPem, oldCa.rootsPem + newCa.rootsPem)
    identity.updateTrustBundle(newCa.rootsPem)
  })

  it('refuses ids that are not workload ids', () => {
    expect(errorOf(() => new BindingWorkloadIdentity('spiffe://mesh.local')).message).toMatch(/expected a workload id/)
    expect(errorOf(() => new BindingWorkloadIdentity('orders')).code).toBe('IdentityInvalidInput')
  })
})

it('no private key appears in any value JavaScript can see', () => {
  const dir = dataDir()
  const ca = BindingCertificateAuthority.loadOrCreate(dir, 'mesh.local')
  const bundle = bundleOf(ca)
  const identity = new BindingWorkloadIdentity(ORDERS)
  const csr = identity.csrPem()
  const issued = ca.sign(csr, ORDERS, 600)
  identity.install(issued.certificateChainPem, bundle.pem)
  identity.csrPem()
  const keyFile = readFileSync(join(dir, 'ca', 'ca.key'), 'utf8')
  expect(keyFile).toContain('PRIVATE KEY') // the check below can fail
  const keyBody = keyFile.split('\n')[1] as string

  const errors = [
    errorOf(() => ca.sign('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', ORDERS, 60)),
    errorOf(() => BindingCertificateAuthority.fromFiles(join(dir, 'ca', 'ca.key'), join(dir, 'ca', 'ca.key'), 'mesh.local')),
    errorOf(() => bundle.addFile(join(dir, 'ca', 'ca.key'))),
  ]
  const seen = [visibleText(ca), visibleText(bundle), visibleText(identity), csr, inspect(issued), ...errors.map((e) => `${e.message} ${e.stack}`)]
  for (const text of seen) {
    expect(text).not.toContain('PRIVATE KEY')
    expect(text).not.toContain(keyBody)
  }
})
