/**
 * mesh-control's certificate authority as an operator meets it: the CA created on first
 * start (files and modes), reused after a restart (even kill -9), an operator's CA and
 * extra roots by flags, `meshctl check`, one-line failures, and no private key in any
 * output. Runs bin/mesh-control.js and bin/meshctl.js (needs `npm run build:ts`).
 */
import fs from 'node:fs'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { BindingCertificateAuthority } from '../../native/index.js'
import { ControlPlaneProcess, runMeshControl, type RunResult } from '../support/control.js'
import { makeTempDir } from '../support/proxy.js'
import { hasStackTrace } from './cli-process.js'

const running: ControlPlaneProcess[] = []
const temps: string[] = []
async function startControl(...args: Parameters<typeof ControlPlaneProcess.start>): Promise<ControlPlaneProcess> {
  const control = await ControlPlaneProcess.start(...args)
  running.push(control)
  return control
}
function tempDir(): string {
  const dir = makeTempDir('mesh-control-ca-')
  temps.push(dir)
  return dir
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.kill()))
  for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

function expectSuccess(result: RunResult): RunResult {
  expect(result.code, result.stderr).toBe(0)
  return result
}

function caLine(result: RunResult): string {
  return result.stdout.split('\n').find((line) => line.includes('certificate authority:')) ?? ''
}

function oneLineFailure(result: RunResult, code: number): string {
  expect(result.code, result.stderr).toBe(code)
  expect(hasStackTrace(result.stderr)).toBe(false)
  const lines = result.stderr.split('\n').filter((l) => l !== '')
  expect(lines, result.stderr).toHaveLength(1)
  return lines[0] as string
}

describe('mesh-control certificate authority', () => {
  it('creates its root on first start (dir 0700, key 0600), shows it in meshctl check, and keeps it across kill -9', async () => {
    const control = await startControl({ args: ['--cert-ttl', '2m'] })
    const caDir = path.join(control.dataDir, 'ca')
    expect(fs.statSync(caDir).mode & 0o777).toBe(0o700)
    expect(fs.statSync(path.join(caDir, 'ca.key')).mode & 0o777).toBe(0o600)
    expect(control.stderr).toMatch(
      new RegExp(
        `^mesh-control: certificate authority: O=mesh-core, CN=mesh\\.local root CA [0-9a-f]{8} created a new root in ${path.join(caDir, 'ca.crt').replace(/[.]/g, '\\.')}, valid until \\S+; 1 root in the trust bundle; workload certificates live 2m; authority id [0-9a-f]{64}$`,
        'm',
      ),
    )
    const check = expectSuccess(await control.meshctl(['check']))
    expect(caLine(check)).toMatch(/^ok {4}certificate authority: trust domain mesh\.local, valid until \S+, 1 root in the trust bundle, certificates live 2m, authority [0-9a-f]{12}$/)
    const before = JSON.parse(expectSuccess(await control.meshctl(['check', '-o', 'json'])).stdout) as { ca: Record<string, unknown> }
    expect(before.ca).toMatchObject({ valid: true, trustBundleRoots: 1, certificateTtl: '2m', error: '' })
    const rootPem = fs.readFileSync(path.join(caDir, 'ca.crt'), 'utf8')

    await control.kill()
    const again = await control.restart()
    running.push(again)
    expect(again.stderr).toMatch(/certificate authority: .* loaded from /)
    expect(fs.readFileSync(path.join(caDir, 'ca.crt'), 'utf8')).toBe(rootPem)
    const after = JSON.parse(expectSuccess(await again.meshctl(['check', '-o', 'json'])).stdout) as { ca: Record<string, unknown> }
    expect(after.ca).toEqual(before.ca)

    // Nothing any command printed holds key material.
    const key = fs.readFileSync(path.join(caDir, 'ca.key'), 'utf8')
    expect(key).toContain('PRIVATE KEY')
    const yaml = expectSuccess(await again.meshctl(['check', '-o', 'yaml'])).stdout
    for (const text of [control.stderr, control.stdout, again.stderr, again.stdout, check.stdout, JSON.stringify(before), yaml]) {
      expect(text).not.toContain('PRIVATE KEY')
      expect(text).not.toContain(key.split('\n')[1])
    }
  })

  it('signs with --ca-cert/--ca-key and adds --trust-bundle roots', async () => {
    const ops = tempDir()
    const ca = BindingCertificateAuthority.loadOrCreate(path.join(ops, 'current'), 'mesh.local')
    const next = BindingCertificateAuthority.loadOrCreate(path.join(ops, 'next'), 'mesh.local')
    const control = await startControl({
      args: [
        '--ca-cert',
        path.join(ops, 'current', 'ca', 'ca.crt'),
        '--ca-key',
        path.join(ops, 'current', 'ca', 'ca.key'),
        '--trust-bundle',
        path.join(ops, 'next', 'ca', 'ca.crt'),
      ],
    })
    expect(control.stderr).toContain(
      `certificate authority: ${ca.certificate.subject} loaded from ${path.join(ops, 'current', 'ca', 'ca.crt')}`,
    )
    expect(fs.existsSync(path.join(control.dataDir, 'ca'))).toBe(false)
    const check = expectSuccess(await control.meshctl(['check', '-o', 'json']))
    expect((JSON.parse(check.stdout) as { ca: Record<string, unknown> }).ca).toMatchObject({
      valid: true,
      subject: ca.certificate.subject,
      trustBundleRoots: 2,
    })
    expect(next.certificate.subject).not.toBe(ca.certificate.subject)
  })

  it('fails with one line: half a CA (exit 2), unreadable or mismatched CA files and bad bundles (exit 1)', async () => {
    const ops = tempDir()
    const ca = BindingCertificateAuthority.loadOrCreate(path.join(ops, 'a'), 'mesh.local')
    BindingCertificateAuthority.loadOrCreate(path.join(ops, 'b'), 'mesh.local')
    const dataDir = path.join(tempDir(), 'data')
    const base = ['--listen', '127.0.0.1:0', '--data-dir', dataDir]

    expect(oneLineFailure(await runMeshControl([...base, '--ca-cert', 'x.pem']), 2)).toBe('mesh-control: --ca-cert needs --ca-key')
    expect(oneLineFailure(await runMeshControl([...base, '--cert-ttl', '10s']), 2)).toBe(
      'mesh-control: --cert-ttl: expected a duration from 1m to 720h like 24h or 30m, got "10s"',
    )
    const missing = path.join(ops, 'missing.pem')
    expect(oneLineFailure(await runMeshControl([...base, '--ca-cert', missing, '--ca-key', missing]), 1)).toBe(
      `mesh-control: certificate authority: ${missing}: cannot read: not found`,
    )
    const keyB = path.join(ops, 'b', 'ca', 'ca.key')
    expect(oneLineFailure(await runMeshControl([...base, '--ca-cert', path.join(ops, 'a', 'ca', 'ca.crt'), '--ca-key', keyB]), 1)).toBe(
      `mesh-control: certificate authority: ${keyB}: CA key: it is not the key of the CA certificate (${ca.certificate.subject})`,
    )
    const bad = oneLineFailure(await runMeshControl([...base, '--trust-bundle', keyB]), 1)
    expect(bad).toBe(`mesh-control: --trust-bundle: ${keyB}: holds a private key; expected only certificates`)
  })
})
