/**
 * `meshctl` as an operator runs it: real `node bin/meshctl.js` processes against a real
 * `node bin/mesh-control.js`. Needs the compiled dist/ (`npm run build:ts`).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import path from 'node:path'

import YAML from 'yaml'
import { afterEach, describe, expect, it } from 'vitest'

import { ConfigError, loadResourcesFromText } from '../../src/config/index.js'
import { ControlPlaneProcess, runMeshctl, type RunResult } from '../support/control.js'
import { freePort } from '../support/ports.js'
import { makeTempDir } from '../support/proxy.js'
import { hasStackTrace } from './cli-process.js'

const PACKAGE_VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version

const MESH = `# the orders service and a canary route
apiVersion: mesh/v1
kind: Service
name: orders
port: 80
endpoints:
  - address: 127.0.0.1:18080
  - address: 127.0.0.1:18081
---
apiVersion: mesh/v1
kind: Service
name: orders-v2
endpoints: [ { address: 127.0.0.1:18082 } ]
---
apiVersion: mesh/v1
kind: HTTPRoute
name: orders-canary
parentRefs: [ { name: orders } ]
rules:
  - matches: [ { path: { value: /api } } ]
    backendRefs: [ { name: orders-v2, weight: 10 }, { name: orders, weight: 90 } ]
---
apiVersion: mesh/v1
kind: Service
name: payments
namespace: shop
port: 9090
protocol: grpc
`

function writeFile(text: string, name = 'mesh.yaml'): string {
  const file = path.join(makeTempDir('meshctl-'), name)
  fs.writeFileSync(file, text)
  return file
}

/** The lines of a stream, without the empty one after the last newline. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '')
}

function expectFailure(result: RunResult, code: number): string[] {
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code)
  expect(hasStackTrace(result.stderr)).toBe(false)
  const errorLines = lines(result.stderr)
  for (const line of errorLines) expect(line).toMatch(/^meshctl: \S/)
  return errorLines
}

function expectOneLineFailure(result: RunResult, code: number): string {
  const errorLines = expectFailure(result, code)
  expect(errorLines, result.stderr).toHaveLength(1)
  return errorLines[0] as string
}

function expectSuccess(result: RunResult): RunResult {
  expect(result.code, `stderr: ${result.stderr}`).toBe(0)
  expect(hasStackTrace(result.stderr)).toBe(false)
  return result
}

const running: ControlPlaneProcess[] = []
async function startControl(): Promise<ControlPlaneProcess> {
  const control = await ControlPlaneProcess.start()
  running.push(control)
  return control
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.kill()))
})

describe('meshctl without a control plane', () => {
  it('--help prints usage for the tool and for each command', async () => {
    const result = expectSuccess(await runMeshctl(['--help']))
    expect(result.stdout).toMatch(/^Usage: meshctl \[global flags\] COMMAND/)
    for (const word of ['apply', 'get', 'delete', 'check', 'token create', '--control-plane', '--output', '--timeout']) {
      expect(result.stdout).toContain(word)
    }
    expect(result.stderr).toBe('')
    for (const command of ['apply', 'get', 'delete', 'check', 'token']) {
      const help = expectSuccess(await runMeshctl([command, '--help']))
      expect(help.stdout).toMatch(new RegExp(`^Usage: meshctl ${command} `))
    }
  })

  it('--version prints its version', async () => {
    const result = expectSuccess(await runMeshctl(['--version']))
    expect(result.stdout).toBe(`meshctl ${PACKAGE_VERSION}\n`)
  })

  it('refuses bad usage with exit 2 and one line', async () => {
    expect(expectOneLineFailure(await runMeshctl(['get', 'widgets']), 2)).toBe(
      'meshctl: unknown kind "widgets"; expected service (svc), httproute, tcproute or authorizationpolicy (authz), or all',
    )
    expect(expectOneLineFailure(await runMeshctl(['apply']), 2)).toBe('meshctl: meshctl apply needs -f FILE (see meshctl apply --help)')
    expect(expectOneLineFailure(await runMeshctl(['check', '-o', 'xml']), 2)).toBe('meshctl: -o: expected table, json or yaml, got "xml"')
  })

  it('refuses stat and tap: not available in this version', async () => {
    expect(expectOneLineFailure(await runMeshctl(['stat', 'orders']), 2)).toBe('meshctl: meshctl stat is not available in this version')
    expect(expectOneLineFailure(await runMeshctl(['tap', 'deploy/web']), 2)).toBe('meshctl: meshctl tap is not available in this version')
  })

  it('says the control plane is unreachable, in one line, when nothing listens', async () => {
    const port = await freePort()
    const address = `127.0.0.1:${port}`
    for (const args of [['get', 'svc'], ['delete', 'svc', 'orders'], ['token', 'create', '--name', 'web'], ['apply', '-f', writeFile(MESH)]]) {
      expect(expectOneLineFailure(await runMeshctl(args, { controlPlane: address }), 1)).toBe(
        `meshctl: cannot reach mesh-control at ${address} (connection refused)`,
      )
    }
    const check = await runMeshctl(['check'], { controlPlane: address })
    expect(check.code).toBe(1)
    expect(check.stdout).toBe(`FAIL  control plane reachable: cannot reach mesh-control at ${address} (connection refused)\n`)
  })

  it('gives up on a control plane that never answers within --timeout', async () => {
    // Accepts TCP connections and never speaks: the HTTP/2 handshake cannot complete.
    const sockets = new Set<net.Socket>()
    const silent = net.createServer((socket) => sockets.add(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const address = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`
      const started = Date.now()
      const line = expectOneLineFailure(await runMeshctl(['--timeout', '500ms', 'get', 'svc'], { controlPlane: address }), 1)
      expect(line).toBe(`meshctl: cannot reach mesh-control at ${address} (no answer within 500ms)`)
      // Generous bound: the deadline is 500 ms; node start-up and exit take the rest.
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => silent.close(() => resolve()))
    }
  })

  it('says when the address is not mesh-control', async () => {
    // An HTTP/2 server that answers 404 (like a gRPC server without the Admin service),
    // and a plain HTTP/1 server.
    const h2 = http2.createServer((_req, res) => res.writeHead(404).end())
    const h1 = http.createServer((_req, res) => res.writeHead(404).end())
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve))
    try {
      for (const [server, reason] of [
        [h2, 'Received HTTP status code 404'],
        [h1, 'it does not speak HTTP/2'],
      ] as const) {
        const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`
        const line = expectOneLineFailure(await runMeshctl(['get', 'svc'], { controlPlane: address }), 1)
        expect(line).toBe(`meshctl: ${address} does not serve mesh-control's Admin API (${reason})`)
      }
    } finally {
      h1.closeAllConnections()
      await new Promise<void>((resolve) => h1.close(() => resolve()))
      await new Promise<void>((resolve) => h2.close(() => resolve()))
    }
  })

  it('reports a YAML syntax error in one line naming the file and line, before connecting', async () => {
    const file = writeFile('apiVersion: mesh/v1\nkind: Service\nname: orders\nendpoints: [ { address: 127.0.0.1:1 }\n')
    const line = expectOneLineFailure(await runMeshctl(['apply', '-f', file], { controlPlane: `127.0.0.1:${await freePort()}` }), 1)
    expect(line).toMatch(new RegExp(`^meshctl: ${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: YAML syntax error: `))
  })

  it('reports a missing file in one line', async () => {
    const file = path.join(makeTempDir('meshctl-'), 'missing.yaml')
    expect(expectOneLineFailure(await runMeshctl(['apply', '-f', file]), 1)).toBe(`meshctl: ${file}: cannot read: no such file`)
  })
})

describe('meshctl against mesh-control', () => {
  it('applies a multi-document file: created, then unchanged, then configured after an edit', async () => {
    const control = await startControl()
    const file = writeFile(MESH)
    const first = expectSuccess(await control.meshctl(['apply', '-f', file]))
    expect(first.stdout).toBe(
      'service/orders created\nservice/orders-v2 created\nhttproute/orders-canary created\nservice/payments (namespace shop) created\n',
    )

    const again = expectSuccess(await control.meshctl(['apply', '-f', file]))
    expect(again.stdout).toBe(
      'service/orders unchanged\nservice/orders-v2 unchanged\nhttproute/orders-canary unchanged\nservice/payments (namespace shop) unchanged\n',
    )

    fs.writeFileSync(file, MESH.replace('weight: 10 }', 'weight: 50 }').replace('weight: 90 }', 'weight: 50 }'))
    const edited = expectSuccess(await control.meshctl(['apply', '-f', file, '-o', 'json']))
    const view = JSON.parse(edited.stdout) as { version: string; results: { kind: string; name: string; action: string }[] }
    expect(view.results.map((r) => `${r.kind}/${r.name} ${r.action}`)).toEqual([
      'Service/orders unchanged',
      'Service/orders-v2 unchanged',
      'HTTPRoute/orders-canary configured',
      'Service/payments unchanged',
    ])
    const route = JSON.parse(expectSuccess(await control.meshctl(['get', 'httproute', 'orders-canary', '-o', 'json'])).stdout) as {
      rules: { backendRefs: { weight: number }[] }[]
    }
    expect(route.rules[0]?.backendRefs.map((b) => b.weight)).toEqual([50, 50])
  })

  it('refuses a bad file with the validator\'s exact lines and stores nothing of it', async () => {
    const control = await startControl()
    // An empty document first: the numbers in the messages are positions in the file.
    const bad = `---\n---\n${MESH.replace('127.0.0.1:18082', 'localhost').replace('port: 9090', 'port: 99999')}`
    const file = writeFile(bad)
    let expected: readonly string[] = []
    try {
      loadResourcesFromText(bad, file, { requireProxy: false })
    } catch (err) {
      expected = (err as ConfigError).errors
    }
    expect(expected.length).toBe(2)
    const result = await control.meshctl(['apply', '-f', file])
    expect(expectFailure(result, 1)).toEqual(expected.map((line) => `meshctl: ${line}`))
    expect(result.stdout).toBe('')
    expect(lines(expected[0]!)[0]).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}: document 3 \\(Service "orders-v2"\\): endpoints\\[0\\]\\.address: `))

    const listed = expectSuccess(await control.meshctl(['get', 'all', '-A']))
    expect(listed.stdout).toBe('')
    expect(listed.stderr).toBe('meshctl: no resources found\n')
  })

  it('refuses a route to a Service that does not exist, storing nothing', async () => {
    const control = await startControl()
    const file = writeFile(MESH.replace('name: orders-v2, weight', 'name: orders-v3, weight'))
    const errorLines = expectFailure(await control.meshctl(['apply', '-f', file]), 1)
    expect(errorLines.length).toBeGreaterThan(0)
    expect(errorLines.join('\n')).toContain('orders-v3')
    expect(expectSuccess(await control.meshctl(['get', 'svc', '-A', '-o', 'json'])).stdout).toBe('[]\n')
  })

  it('gets resources as a table, JSON and YAML, by namespace', async () => {
    const control = await startControl()
    expectSuccess(await control.meshctl(['apply', '-f', writeFile(MESH)]))

    const table = lines(expectSuccess(await control.meshctl(['get', 'svc'])).stdout)
    expect(table[0]).toMatch(/^NAMESPACE +NAME +PORT +PROTOCOL +ENDPOINTS +LB +VERSION$/)
    expect(table.slice(1).map((l) => l.split(/ +/).slice(0, 6))).toEqual([
      ['default', 'orders', '80', 'http', '127.0.0.1:18080,127.0.0.1:18081', 'ewma'],
      ['default', 'orders-v2', '80', 'http', '127.0.0.1:18082', 'ewma'],
    ])
    const everywhere = lines(expectSuccess(await control.meshctl(['get', 'services', '-A'])).stdout)
    expect(everywhere.slice(1).map((l) => l.split(/ +/).slice(0, 2).join('/'))).toEqual(['default/orders', 'default/orders-v2', 'shop/payments'])
    const inShop = lines(expectSuccess(await control.meshctl(['get', 'svc', '-n', 'shop'])).stdout)
    expect(inShop).toHaveLength(2)
    expect(inShop[1]).toMatch(/^shop +payments +9090 +grpc +<none> +ewma +\d+$/)

    const routes = lines(expectSuccess(await control.meshctl(['get', 'httproutes'])).stdout)
    expect(routes[0]).toMatch(/^NAMESPACE +NAME +PARENTS +RULES +BACKENDS +VERSION$/)
    expect(routes[1]).toMatch(/^default +orders-canary +orders +1 +orders-v2,orders +\d+$/)

    const one = JSON.parse(expectSuccess(await control.meshctl(['get', 'svc', 'orders', '-o', 'json'])).stdout) as Record<string, unknown>
    expect(one).toMatchObject({ apiVersion: 'mesh/v1', kind: 'Service', name: 'orders', namespace: 'default', port: 80 })
    const list = JSON.parse(expectSuccess(await control.meshctl(['get', 'svc', '-o', 'json'])).stdout) as { name: string }[]
    expect(list.map((r) => r.name)).toEqual(['orders', 'orders-v2'])

    const yaml = expectSuccess(await control.meshctl(['get', 'svc/orders', '-o', 'yaml'])).stdout
    expect(YAML.parse(yaml)).toEqual(one)

    const missing = expectOneLineFailure(await control.meshctl(['get', 'svc', 'nope']), 1)
    expect(missing).toMatch(/nope/)
    const empty = expectSuccess(await control.meshctl(['get', 'tcproutes']))
    expect(empty.stdout).toBe('')
    expect(empty.stderr).toBe('meshctl: no resources found in namespace default\n')
  })

  it('round-trips: get -o yaml piped into apply -f - changes nothing', async () => {
    const control = await startControl()
    expectSuccess(await control.meshctl(['apply', '-f', writeFile(MESH)]))
    const before = expectSuccess(await control.meshctl(['get', 'all', '-A', '-o', 'json'])).stdout
    const yaml = expectSuccess(await control.meshctl(['get', 'all', '-A', '-o', 'yaml'])).stdout
    const applied = expectSuccess(await control.meshctl(['apply', '-f', '-'], { stdin: yaml }))
    const results = lines(applied.stdout)
    expect(results).toHaveLength(4)
    for (const line of results) expect(line).toMatch(/ unchanged$/)
    expect(expectSuccess(await control.meshctl(['get', 'all', '-A', '-o', 'json'])).stdout).toBe(before)
  })

  it('deletes a resource, and refuses to delete a Service a route still names', async () => {
    const control = await startControl()
    expectSuccess(await control.meshctl(['apply', '-f', writeFile(MESH)]))

    const refused = expectOneLineFailure(await control.meshctl(['delete', 'svc', 'orders-v2']), 1)
    expect(refused).toMatch(/orders-canary/)
    expectSuccess(await control.meshctl(['get', 'svc', 'orders-v2']))

    expect(expectSuccess(await control.meshctl(['delete', 'httproute', 'orders-canary'])).stdout).toBe('httproute/orders-canary deleted\n')
    expect(expectSuccess(await control.meshctl(['delete', 'svc/orders-v2'])).stdout).toBe('service/orders-v2 deleted\n')
    expect(expectSuccess(await control.meshctl(['delete', 'svc', 'payments', '-n', 'shop'])).stdout).toBe(
      'service/payments (namespace shop) deleted\n',
    )
    expectOneLineFailure(await control.meshctl(['get', 'svc', 'orders-v2']), 1)
    expectOneLineFailure(await control.meshctl(['delete', 'svc', 'orders-v2']), 1)
    const left = JSON.parse(expectSuccess(await control.meshctl(['get', 'all', '-A', '-o', 'json'])).stdout) as { kind: string; name: string }[]
    expect(left.map((r) => `${r.kind}/${r.name}`)).toEqual(['Service/orders'])
  })

  it('creates a join token, shown once, whose id is the start of its hash', async () => {
    const control = await startControl()
    const created = expectSuccess(await control.meshctl(['token', 'create', '--name', 'orders']))
    expect(created.stdout).toMatch(/^mesh_[A-Za-z0-9_-]{43}\n$/)
    const token = created.stdout.trim()
    const tokenId = createHash('sha256').update(token).digest('hex').slice(0, 12)
    expect(created.stderr).toContain(`meshctl: join token ${tokenId} for default/orders: shown only this once`)
    expect(created.stderr).not.toContain(token)

    const json = JSON.parse(expectSuccess(await control.meshctl(['token', 'create', '--name', 'web', '--namespace', 'shop', '-o', 'json'])).stdout) as Record<
      string,
      string
    >
    expect(json).toMatchObject({ service: 'web', namespace: 'shop' })
    expect(json.token).toMatch(/^mesh_/)
    expect(json.tokenId).toBe(createHash('sha256').update(json.token!).digest('hex').slice(0, 12))
    expect(Number.isNaN(Date.parse(json.createdAt!))).toBe(false)
    // The store keeps hashes only.
    const state = fs.readFileSync(path.join(control.dataDir, 'state.json'), 'utf8')
    expect(state).not.toContain(token)
    expect(state).not.toContain(json.token)
  })

  it('checks a control plane with no proxies: every check ok, exit 0', async () => {
    const control = await startControl()
    const result = expectSuccess(await control.meshctl(['check']))
    expect(lines(result.stdout)).toEqual([
      `ok    control plane reachable: ${control.address} (mesh-control ${PACKAGE_VERSION}, store version ${lines(result.stdout)[0]!.match(/store version (\d+)/)?.[1]})`,
      `ok    store writable: file ${control.dataDir}`,
      expect.stringMatching(
        /^ok {4}certificate authority: trust domain mesh\.local, valid until 20\d\d-\d\d-\d\dT[\d:.]+Z, 1 root in the trust bundle, certificates live 24h, authority [0-9a-f]{12}$/,
      ),
      'ok    proxies connected: 0',
      'ok    proxies in sync: no proxies connected',
    ])
    const status = JSON.parse(expectSuccess(await control.meshctl(['check', '-o', 'json'])).stdout) as Record<string, unknown>
    expect(status).toMatchObject({
      serverVersion: PACKAGE_VERSION,
      store: { type: 'file', writable: true, location: control.dataDir },
      ca: {
        valid: true,
        trustDomain: 'mesh.local',
        trustBundleRoots: 1,
        certificateTtl: '24h',
        source: path.join(control.dataDir, 'ca', 'ca.crt'),
        authorityId: expect.stringMatching(/^[0-9a-f]{64}$/),
      },
      proxies: [],
    })
    const yaml = YAML.parse(expectSuccess(await control.meshctl(['check', '-o', 'yaml'])).stdout) as Record<string, unknown>
    expect(yaml).toEqual(status)
  })

  it('fails the store check, exit 1, when the data dir cannot be written', async () => {
    const control = await startControl()
    // Root ignores permission bits, so take the directory away instead.
    fs.renameSync(control.dataDir, `${control.dataDir}.moved`)
    fs.writeFileSync(control.dataDir, '')
    const result = await control.meshctl(['check'])
    expect(result.code, result.stderr).toBe(1)
    const storeLine = lines(result.stdout).find((l) => l.includes('store writable'))
    expect(storeLine).toMatch(new RegExp(`^FAIL  store writable: file ${control.dataDir}: cannot write: ENOTDIR`))
    expect(lines(result.stdout).filter((l) => l.startsWith('FAIL'))).toHaveLength(1)
  })

  it('keeps what was applied across kill -9 of mesh-control', async () => {
    const control = await startControl()
    expectSuccess(await control.meshctl(['apply', '-f', writeFile(MESH)]))
    expectSuccess(await control.meshctl(['token', 'create', '--name', 'orders']))
    const before = expectSuccess(await control.meshctl(['get', 'all', '-A', '-o', 'json'])).stdout
    expect(await control.kill()).toEqual({ code: null, signal: 'SIGKILL' })

    const restarted = await control.restart()
    running.push(restarted)
    expect(restarted.address).toBe(control.address)
    expect(restarted.startLine).toMatch(/\b4 resources\b/)
    expect(expectSuccess(await restarted.meshctl(['get', 'all', '-A', '-o', 'json'])).stdout).toBe(before)
    const again = expectSuccess(await restarted.meshctl(['apply', '-f', writeFile(MESH)]))
    for (const line of lines(again.stdout)) expect(line).toMatch(/ unchanged$/)
  })
})
