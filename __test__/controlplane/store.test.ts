import { execFile, spawn, spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, validateResources } from '../../src/config/index.js'
import { FileStore, StoreError, type ChangeSet } from '../../src/controlplane/store/index.js'

const repoRoot = join(__dirname, '..', '..')

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'mesh/v1',
  kind: 'Service',
  name,
  endpoints: [{ address: '127.0.0.1:8080' }],
  ...extra,
})
const route = (name: string, parent: string, backends: string[] = []) => ({
  apiVersion: 'mesh/v1',
  kind: 'HTTPRoute',
  name,
  parentRefs: [{ name: parent }],
  rules: [{ backendRefs: backends.map((b) => ({ name: b })) }],
})

async function errorOf(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

let dataDir: string
let store: FileStore
const stateFile = () => join(dataDir, 'state.json')

beforeEach(async () => {
  dataDir = join(await mkdtemp(join(tmpdir(), 'mesh-store-')), 'data')
  store = await FileStore.open(dataDir)
})
afterEach(async () => {
  await store.close()
  await rm(join(dataDir, '..'), { recursive: true, force: true })
})

describe('FileStore apply/get/list/delete', () => {
  it('creates, reports unchanged and configured, and reads back normalised resources', async () => {
    const first = await store.apply([service('orders'), route('split', 'orders')], { source: 'a.yaml' })
    expect(first.revision).toBe(1)
    expect(first.results).toEqual([
      { kind: 'Service', namespace: 'default', name: 'orders', action: 'created' },
      { kind: 'HTTPRoute', namespace: 'default', name: 'split', action: 'created' },
    ])
    const same = await store.apply([service('orders')], { source: 'b.yaml' })
    expect(same).toEqual({
      revision: 1,
      results: [{ kind: 'Service', namespace: 'default', name: 'orders', action: 'unchanged' }],
      warnings: [],
    })
    const changed = await store.apply([service('orders', { port: 8080 }), service('users')], { source: 'c.yaml' })
    expect(changed.revision).toBe(2)
    expect(changed.results.map((r) => r.action)).toEqual(['configured', 'created'])

    const [orders] = await store.get('Service', 'default', 'orders')
    expect(orders).toEqual({
      resource: validateResources([service('orders', { port: 8080 })], { requireProxy: false }).resources[0],
      revision: 2,
      source: 'c.yaml',
    })
    expect((await store.get('Service')).map((e) => e.resource.name)).toEqual(['orders', 'users'])
    expect(await store.get('Service', 'other')).toEqual([])
    const listed = await store.list()
    expect(listed.revision).toBe(2)
    expect(listed.entries.map((e) => [e.resource.kind, e.resource.name, e.revision])).toEqual([
      ['Service', 'orders', 2],
      ['Service', 'users', 2],
      ['HTTPRoute', 'split', 1],
    ])

    expect(await store.delete('HTTPRoute', 'default', 'split')).toEqual({ revision: 3 })
    expect(await store.get('HTTPRoute')).toEqual([])
    const missing = await errorOf(() => store.delete('HTTPRoute', 'default', 'split'))
    expect(missing).toBeInstanceOf(StoreError)
    expect((missing as StoreError).code).toBe('not_found')
    expect(missing.message).toBe('HTTPRoute "default/split" not found')
  })

  it('has no warnings for healthCheck, which mesh-control runs, nor for AuthorizationPolicies, which proxies enforce', async () => {
    const policy = {
      apiVersion: 'mesh/v1',
      kind: 'AuthorizationPolicy',
      name: 'orders-from-web',
      targetRef: { kind: 'Service', name: 'orders' },
      rules: [{ from: [{ identity: 'spiffe://mesh.local/ns/default/sa/web' }] }],
    }
    const batch = [service('orders', { healthCheck: { path: '/healthz' } }), policy]
    const result = await store.apply(batch, { source: 'p.yaml' })
    // AuthorizationPolicies are enforced by the target's proxies, healthCheck by mesh-control.
    expect(result.warnings).toEqual([])
    // Standalone, the same healthCheck is warned: no proxy runs it there.
    expect(validateResources([batch[0]], { requireProxy: false, fileLabel: 'p.yaml' }).warnings).toEqual([
      'p.yaml: document 1 (Service "orders"): healthCheck: accepted but not enforced in this version',
    ])
  })

  it('refuses to delete a Service that stored routes still reference', async () => {
    await store.apply([service('orders'), service('v2'), route('split', 'orders', ['v2'])], { source: 'a.yaml' })
    const before = await readFile(stateFile())
    const err = await errorOf(() => store.delete('Service', 'default', 'v2'))
    expect((err as StoreError).code).toBe('conflict')
    expect(err.message).toBe(
      'cannot delete Service "default/v2": still referenced by HTTPRoute "default/split"; delete or change those first',
    )
    expect(await readFile(stateFile())).toEqual(before)
    await store.delete('HTTPRoute', 'default', 'split')
    await store.delete('Service', 'default', 'v2')
    expect((await store.get('Service')).map((e) => e.resource.name)).toEqual(['orders'])
  })
})

describe('FileStore validation', () => {
  it('refuses a bad batch with the shared validator error and changes nothing on disk', async () => {
    await store.apply([service('orders')], { source: 'first.yaml' })
    const before = await readFile(stateFile())
    const bad = [service('users'), service('orders', { port: 'eighty' })]
    const err = await errorOf(() => store.apply(bad, { source: 'bad.yaml' }))
    expect(err).toBeInstanceOf(ConfigError)
    const expected = (() => {
      try {
        validateResources(bad, { requireProxy: false, fileLabel: 'bad.yaml' })
      } catch (e) {
        return (e as ConfigError).errors
      }
      throw new Error('the shared validator accepted the batch')
    })()
    expect((err as ConfigError).errors).toEqual(expected)
    expect((err as ConfigError).errors[0]).toMatch(/^bad\.yaml: document 2 \(Service "orders"\): port: /)
    expect(await readFile(stateFile())).toEqual(before)
    expect((await store.list()).revision).toBe(1)
    expect(await store.get('Service', 'default', 'users')).toEqual([])
  })

  it('resolves references against stored Services plus the batch, and refuses unknown ones', async () => {
    await store.apply([service('orders')], { source: 'a.yaml' })
    await store.apply([service('v2'), route('split', 'orders', ['v2'])], { source: 'b.yaml' })
    const before = await readFile(stateFile())
    const err = await errorOf(() => store.apply([route('ghost', 'order')], { source: 'c.yaml' }))
    expect((err as ConfigError).errors).toEqual([
      'c.yaml: document 1 (HTTPRoute "ghost"): parentRefs[0].name: unknown Service "default/order" (did you mean "orders"?)',
    ])
    expect(await readFile(stateFile())).toEqual(before)
  })

  it('refuses a Service change that would break a stored route, naming the route', async () => {
    await store.apply([service('orders'), route('split', 'orders')], { source: 'a.yaml' })
    const err = await errorOf(() => store.apply([service('orders', { protocol: 'tcp' })], { source: 'b.yaml' }))
    expect((err as ConfigError).errors).toEqual([
      'b.yaml: would break stored HTTPRoute "default/split": parentRefs[0].name: Service "default/orders" has protocol tcp; an HTTPRoute needs an http, http2 or grpc Service',
    ])
  })

  it('refuses Proxy resources, naming the document', async () => {
    const proxy = { apiVersion: 'mesh/v1', kind: 'Proxy', name: 'web', inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080' }] }
    const err = await errorOf(() => store.apply([service('orders'), proxy], { source: 'mesh.yaml' }))
    expect((err as ConfigError).errors).toEqual([
      'mesh.yaml: document 2 (Proxy "web"): Proxy resources are local to each proxy (its --config file); the control plane does not store them',
    ])
    expect((await store.list()).entries).toEqual([])
    await expect(readFile(stateFile())).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('FileStore revisions and watch', () => {
  it('keeps a global revision and the revision each resource last changed at', async () => {
    await store.apply([service('a'), service('b')], { source: 's' })
    await store.apply([service('a', { port: 81 })], { source: 's' })
    await store.apply([service('c')], { source: 's' })
    const revisions = Object.fromEntries((await store.get('Service')).map((e) => [e.resource.name, e.revision]))
    expect(revisions).toEqual({ a: 2, b: 1, c: 3 })
    expect((await store.list()).revision).toBe(3)
  })

  it('delivers ordered change sets from a revision, then live ones, until unsubscribed', async () => {
    await store.apply([service('a')], { source: 's' })
    await store.apply([service('b')], { source: 's' })
    const seen: ChangeSet[] = []
    const stop = store.watch(1, (changes) => seen.push(changes))
    expect(seen.map((c) => c.revision)).toEqual([2]) // replayed: only what came after revision 1
    await store.apply([service('a', { port: 81 }), service('c')], { source: 's' })
    await store.apply([service('c')], { source: 's' }) // unchanged: no event
    await store.delete('Service', 'default', 'b')
    expect(seen.map((c) => [c.revision, c.events.map((e) => `${e.type} ${e.resource.name}@${e.revision}`)])).toEqual([
      [2, ['put b@2']],
      [3, ['put a@3', 'put c@3']],
      [4, ['delete b@4']],
    ])
    stop()
    await store.apply([service('d')], { source: 's' })
    expect(seen).toHaveLength(3)
  })

  it('reports changes no longer retained as compacted', async () => {
    await store.close()
    store = await FileStore.open(dataDir, { retainedChanges: 2 })
    for (const name of ['a', 'b', 'c']) await store.apply([service(name)], { source: 's' })
    const err = (() => {
      try {
        store.watch(0, () => undefined)
      } catch (e) {
        return e as StoreError
      }
      throw new Error('expected compacted')
    })()
    expect(err.code).toBe('compacted')
    const seen: number[] = []
    store.watch(1, (c) => seen.push(c.revision))
    expect(seen).toEqual([2, 3])
  })
})

describe('FileStore persistence', () => {
  it('survives a reopen with resources, revisions and tokens', async () => {
    await store.apply([service('orders'), route('split', 'orders')], { source: 'a.yaml' })
    await store.apply([service('orders', { port: 81 }), route('split', 'orders')], { source: 'b.yaml' })
    const token = { name: 'web', namespace: 'default', hash: 'sha256:abcd', createdAt: '2026-11-22T10:00:00.000Z' }
    await store.putToken(token)
    const before = await store.list()
    await store.close()
    store = await FileStore.open(dataDir)
    expect(await store.list()).toEqual(before)
    expect(await store.findToken('sha256:abcd')).toEqual(token)
    expect(await store.findToken('sha256:other')).toBeUndefined()
    expect(await store.listTokens()).toEqual([token])
    // Watching resumes from the reopened revision.
    const seen: number[] = []
    store.watch(before.revision, (c) => seen.push(c.revision))
    await store.apply([service('users')], { source: 'c.yaml' })
    expect(seen).toEqual([3])
    expect(await store.deleteToken('sha256:abcd')).toBe(true)
    expect(await store.listTokens()).toEqual([])
  })

  it('serialises concurrent applies', async () => {
    const applies = Array.from({ length: 20 }, (_, i) => store.apply([service(`s${i}`)], { source: `f${i}` }))
    const revisions = (await Promise.all(applies)).map((r) => r.revision)
    expect(revisions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    await store.close()
    store = await FileStore.open(dataDir)
    expect((await store.list()).entries).toHaveLength(20)
  })

  it('reports a truncated state file in one line naming the file', async () => {
    await store.apply([service('orders')], { source: 'a.yaml' })
    await store.close()
    const text = await readFile(stateFile(), 'utf8')
    await writeFile(stateFile(), text.slice(0, Math.floor(text.length / 2)))
    const err = await errorOf(() => FileStore.open(dataDir))
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('corrupt')
    expect(err.message).toMatch(new RegExp(`^${stateFile().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt store state \\(not valid JSON: `))
    expect(err.message).not.toContain('\n')
    store = await FileStore.open(join(dataDir, 'fresh')) // for afterEach
  })

  it('creates the data dir 0700 and the state file 0600, and removes stale temp files', async () => {
    await store.apply([service('orders')], { source: 'a.yaml' })
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700)
    expect((await stat(stateFile())).mode & 0o777).toBe(0o600)
    await store.close()
    await writeFile(join(dataDir, 'state.json.tmp-999-deadbeef'), '{"format":')
    store = await FileStore.open(dataDir)
    expect(await readdir(dataDir)).toEqual(['lock', 'state.json']) // lock: held while open
    expect((await store.get('Service')).map((e) => e.resource.name)).toEqual(['orders'])
  })
})

describe('FileStore under kill -9', () => {
  // The child runs the real store, compiled by the project's TypeScript compiler (so it
  // runs under plain node, no loader), resolving its dependencies from the repo.
  let buildDir: string
  beforeAll(async () => {
    buildDir = await mkdtemp(join(tmpdir(), 'mesh-store-build-'))
    await promisify(execFile)(
      process.execPath,
      [
        join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'),
        ...['--outDir', buildDir, '--rootDir', join(repoRoot, 'src'), '--module', 'node16', '--moduleResolution', 'node16'],
        ...['--target', 'es2022', '--skipLibCheck', '--types', 'node', '--strict'],
        join(repoRoot, 'src', 'controlplane', 'store', 'index.ts'),
      ],
      { cwd: repoRoot },
    )
  }, 60_000)
  afterAll(async () => {
    if (buildDir) await rm(buildDir, { recursive: true, force: true })
  })

  it('reopens to the last or the previous complete apply after the writer is killed mid-loop', async () => {
    await store.close()
    const count = 200
    for (let attempt = 0; attempt < 6; attempt++) {
      const spawnedAt = Date.now()
      const child = spawn(
        process.execPath,
        [join(__dirname, 'apply-loop.cjs'), join(buildDir, 'controlplane', 'store', 'index.js'), dataDir, String(count)],
        { env: { ...process.env, NODE_PATH: join(repoRoot, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] },
      )
      let stdout = ''
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
      // Kill after a varying number of completed applies, while the next one is in flight.
      const target = 5 + attempt * 3
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child made no progress: ${stderr}`)), 20_000)
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString()
          if (stdout.split('\n').length > target) {
            clearTimeout(timer)
            resolve()
          }
        })
        child.on('exit', (code) => reject(new Error(`child exited with ${code}: ${stderr}`)))
      })
      // Then wait a fraction of one apply's duration, so the kill lands at varying points of
      // the next apply (validation, temp write, fsync, rename) rather than always at its start.
      const started = Date.now()
      const perApply = (Date.now() - spawnedAt) / target
      await new Promise((resolve) => setTimeout(resolve, Math.random() * perApply))
      expect(Date.now() - started).toBeLessThan(5_000)
      child.kill('SIGKILL')
      await exited
      const acknowledged = stdout.trim().split('\n').map((line) => Number(line.split(' ')[1]))
      const lastAcknowledged = acknowledged.at(-1) as number

      store = await FileStore.open(dataDir)
      const { revision, entries } = await store.list()
      expect(entries).toHaveLength(count)
      const rounds = new Set(entries.map((e) => e.resource.kind === 'Service' && e.resource.endpoints[0]?.labels.round))
      expect(rounds.size).toBe(1) // one complete apply, never a mix
      const round = Number([...rounds][0])
      expect(round).toBeGreaterThanOrEqual(lastAcknowledged) // every acknowledged apply is durable
      expect(round).toBeLessThanOrEqual(lastAcknowledged + 1) // at most the one in flight
      expect(revision).toBe(round)
      expect(entries.every((e) => e.revision === revision)).toBe(true)
      // The killed writer's lock was taken over; its temp files are gone.
      expect((await readdir(dataDir)).filter((name) => name !== 'state.json')).toEqual(['lock'])
      await store.close()
    }
    store = await FileStore.open(dataDir)
  }, 90_000)
})

describe('FileStore close', () => {
  it('finishes changes queued before close and refuses later ones', async () => {
    const pending = store.apply([service('orders')], { source: 'a.yaml' })
    await store.close()
    expect((await pending).revision).toBe(1)
    const err = await errorOf(() => store.apply([service('users')], { source: 'b.yaml' }))
    expect((err as StoreError).code).toBe('closed')
    store = await FileStore.open(dataDir)
    expect((await store.get('Service')).map((e) => e.resource.name)).toEqual(['orders'])
  })
})

describe('FileStore tokens and locking', () => {
  it('keeps several tokens per workload and revokes one by hash', async () => {
    const first = { name: 'web', namespace: 'default', hash: 'sha256:aaaa', createdAt: '2026-11-22T10:00:00.000Z' }
    const second = { ...first, hash: 'sha256:bbbb', createdAt: '2026-11-22T11:00:00.000Z' }
    await store.putToken(first)
    await store.putToken(second)
    expect(await store.listTokens()).toEqual([first, second])
    expect(await store.findToken('sha256:aaaa')).toEqual(first)
    expect(await store.deleteToken('sha256:aaaa')).toBe(true)
    expect(await store.deleteToken('sha256:aaaa')).toBe(false)
    expect(await store.findToken('sha256:aaaa')).toBeUndefined()
    expect(await store.findToken('sha256:bbbb')).toEqual(second)
  })

  it('refuses a second open of the same data dir while the first is open, and frees it on close', async () => {
    const err = await errorOf(() => FileStore.open(dataDir))
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('locked')
    expect(err.message).toBe(`${dataDir}: data dir in use by another process (pid ${process.pid}); stop it, or use another --data-dir`)
    await store.close()
    store = await FileStore.open(dataDir)
    expect((await store.list()).revision).toBe(0)
  })

  it('takes over the lock of a process that died without releasing it', async () => {
    await store.close()
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    await writeFile(join(dataDir, 'lock'), `${dead.stdout}\n`)
    store = await FileStore.open(dataDir)
    expect((await readFile(join(dataDir, 'lock'), 'utf8')).trim()).toBe(String(process.pid))
  })
})
