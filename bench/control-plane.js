#!/usr/bin/env node
'use strict'
// Control plane benchmark (issue 4, item 6):
//  1. time from an apply to the new route in force on every connected proxy, p50/p99,
//     with N simulated proxies (Watch streams that ACK like a proxy) plus a few real
//     mesh-proxy processes, for which "in force" means a request through the proxy's
//     outbound listener is routed by the new rule;
//  2. mesh-control's RSS with M connected proxies.
//
//   [CONTROL_NODE_ARGS="--cpu-prof"] node bench/control-plane.js [--proxies 100] [--real 3] [--rounds 20]
//                               [--meshctl-rounds 5] [--rss-proxies 1000] [--sim-procs 4]
//
// Needs `npm run build` first. mesh-control is pinned to core 0 and everything else to
// the other cores when taskset exists. Results are printed as markdown and written to
// bench/out/<timestamp>/control-plane.md.

const { spawn, fork, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const grpc = require('@grpc/grpc-js')
const YAML = require('yaml')

const REPO = path.resolve(__dirname, '..')
const { AdminClient } = require(path.join(REPO, 'dist/control/proto.js'))

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function parseArgs(argv) {
  const options = { proxies: 100, real: 3, rounds: 20, meshctlRounds: 5, rssProxies: 1000, simProcs: 4 }
  const names = {
    '--proxies': 'proxies',
    '--real': 'real',
    '--rounds': 'rounds',
    '--meshctl-rounds': 'meshctlRounds',
    '--rss-proxies': 'rssProxies',
    '--sim-procs': 'simProcs',
  }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 15).join('\n').replace(/^\/\/ ?/gm, '') + '\n')
      process.exit(0)
    }
    const key = names[argv[i]]
    const value = Number(argv[i + 1])
    if (key === undefined || !Number.isInteger(value) || value < 0) {
      process.stderr.write(`control-plane.js: bad option ${argv[i]} ${argv[i + 1] ?? ''} (try --help)\n`)
      process.exit(2)
    }
    options[key] = value
    i++
  }
  return options
}

const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true'])
    return true
  } catch {
    return false
  }
})()
const cores = os.cpus().length
const pinned = (core, argv) => (hasTaskset && cores > 1 ? ['taskset', ['-c', core, ...argv]] : [argv[0], argv.slice(1)])
const OTHER_CORES = cores > 2 ? `1-${cores - 1}` : '1'

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

const children = new Set()
function track(child) {
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function app(body) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end(body))
    server.keepAliveTimeout = 60_000
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port }))
  })
}

function rpc(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10_000 }, (err, response) => (err ? reject(err) : resolve(response)))
  })
}

async function waitFor(what, check, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function get(port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: keepAlive }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.setTimeout(2000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 })

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]
}
const fmt = (ms) => ms.toFixed(1)

function routeDoc(marker) {
  return {
    apiVersion: 'mesh/v1',
    kind: 'HTTPRoute',
    name: 'bench-route',
    namespace: 'default',
    parentRefs: [{ name: 'bench' }],
    rules: [
      { matches: [{ headers: [{ name: 'x-bench-round', value: marker }] }], backendRefs: [{ name: 'bench-v2' }] },
      { backendRefs: [{ name: 'bench-v1' }] },
    ],
  }
}

function serviceDoc(name, port) {
  return { apiVersion: 'mesh/v1', kind: 'Service', name, namespace: 'default', port: 80, protocol: 'http', endpoints: [{ address: `127.0.0.1:${port}` }] }
}

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  const outDir = path.join(REPO, 'bench', 'out', new Date().toISOString().replace(/[:.]/g, '-'))
  fs.mkdirSync(outDir, { recursive: true })
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-bench-cp-'))

  const v1 = await app('v1\n')
  const v2 = await app('v2\n')

  // ---------------------------------------------------------------- mesh-control
  const controlPort = await freePort()
  const address = `127.0.0.1:${controlPort}`
  // CONTROL_NODE_ARGS: extra node flags for mesh-control, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.CONTROL_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const [cmd, args] = pinned('0', [process.execPath, ...nodeArgs, path.join(REPO, 'bin/mesh-control.js'), '--listen', address, '--data-dir', path.join(work, 'control')])
  const control = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }))
  let controlLog = ''
  control.stderr.setEncoding('utf8').on('data', (d) => (controlLog += d))
  const admin = new (AdminClient())(address, grpc.credentials.createInsecure())
  await waitFor('mesh-control to answer Status', async () => (await rpc(admin, 'status', {})) !== undefined)
  // taskset execs its command, so the pid is mesh-control's own.
  const controlPid = control.pid

  const apply = async (docs, source) => {
    const response = await rpc(admin, 'apply', { source, documents: docs.map((doc, i) => ({ number: i + 1, json: JSON.stringify(doc) })) })
    if (response.errors.length > 0) throw new Error(`apply refused: ${response.errors.join('; ')}`)
    return response
  }
  await apply([serviceDoc('bench-v1', v1.port), serviceDoc('bench-v2', v2.port), serviceDoc('bench', v1.port), routeDoc('initial')], 'bench-base')

  // ---------------------------------------------------------------- real proxies
  const real = []
  for (let i = 0; i < options.real; i++) {
    const name = `real-${i}`
    const { token } = await rpc(admin, 'createToken', { service: name, namespace: 'default' })
    const outboundPort = await freePort()
    const adminPort = await freePort()
    const file = path.join(work, `${name}.yaml`)
    fs.writeFileSync(
      file,
      YAML.stringify({
        apiVersion: 'mesh/v1',
        kind: 'Proxy',
        name,
        namespace: 'default',
        outbound: { listen: `127.0.0.1:${outboundPort}` },
        admin: { listen: `127.0.0.1:${adminPort}` },
      }),
    )
    const [pcmd, pargs] = pinned(OTHER_CORES, [
      process.execPath,
      path.join(REPO, 'bin/mesh-proxy.js'),
      '--config',
      file,
      '--control-plane',
      address,
      '--name',
      name,
      '--token',
      token,
    ])
    const child = track(spawn(pcmd, pargs, { stdio: ['ignore', 'ignore', 'pipe'] }))
    let log = ''
    child.stderr.setEncoding('utf8').on('data', (d) => (log += d))
    real.push({ name, outboundPort, adminPort, child, log: () => log })
  }
  for (const proxy of real) {
    await waitFor(`${proxy.name} /ready (log: ${proxy.log().trim().split('\n').pop()})`, async () => (await get(proxy.adminPort, '/ready')).status === 200)
  }

  // ---------------------------------------------------------------- simulated proxies
  const { token: simToken } = await rpc(admin, 'createToken', { service: 'sim', namespace: 'default' })
  const sims = []
  async function addSimulated(total) {
    const have = sims.reduce((n, s) => n + s.count, 0)
    const missing = total - have
    if (missing <= 0) return
    const per = Math.ceil(missing / options.simProcs)
    const started = []
    for (let p = 0, left = missing; left > 0; p++, left -= per) {
      const count = Math.min(per, left)
      const child = track(fork(path.join(__dirname, 'lib/simulated-proxies.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }))
      if (hasTaskset && cores > 1) execFileSync('taskset', ['-pc', OTHER_CORES, String(child.pid)], { stdio: 'ignore' })
      const sim = { child, count, seen: new Map() }
      child.on('message', (m) => {
        if (m.type === 'seen') sim.seen.set(m.marker, m.times)
        if (m.type === 'ready') sim.ready = true
        if (m.type === 'error') process.stderr.write(`simulated proxy: ${m.message}\n`)
      })
      child.send({ type: 'start', address, token: simToken, service: 'sim', namespace: 'default', count, idPrefix: `sim-${sims.length}` })
      sims.push(sim)
      started.push(sim)
    }
    await waitFor(`${missing} simulated proxies to ACK their first push`, () => started.every((s) => s.ready), 120_000)
  }

  async function round(marker, applyNow) {
    for (const sim of sims) sim.child.send({ type: 'marker', marker })
    await sleep(50) // let the marker reach every simulated proxy before the apply
    const t0 = now()
    const realTimes = real.map(async (proxy) => {
      for (;;) {
        const res = await get(proxy.outboundPort, '/', { host: 'bench', 'x-bench-round': marker }).catch(() => undefined)
        if (res?.body === 'v2\n') return now() - t0
        if (now() - t0 > 10_000) throw new Error(`${proxy.name}: route ${marker} not in force after 10 s`)
        // Poll every ~2 ms, not flat out: a tight loop would take the CPU the proxies need.
        await sleep(2)
      }
    })
    await applyNow(marker)
    const realMs = await Promise.all(realTimes)
    await waitFor(`simulated proxies to see ${marker}`, () => sims.every((s) => s.seen.has(marker)), 30_000)
    const simMs = sims.flatMap((s) => s.seen.get(marker).map((t) => t - t0))
    return { realMs, simMs }
  }

  const applyRpc = (marker) => apply([routeDoc(marker)], 'bench-route')
  const applyMeshctl = async (marker) => {
    const file = path.join(work, `route-${marker}.yaml`)
    fs.writeFileSync(file, YAML.stringify(routeDoc(marker)))
    await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(REPO, 'bin/meshctl.js'), '--control-plane', address, 'apply', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d) => (err += d))
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`meshctl apply exited ${code}: ${err.trim()}`))))
    })
  }

  async function series(label, count, applyNow) {
    const all = []
    const realAll = []
    const perRoundMax = []
    for (let r = 0; r < count; r++) {
      const { realMs, simMs } = await round(`${label}-${r}-${Math.random().toString(36).slice(2, 8)}`, applyNow)
      all.push(...realMs, ...simMs)
      realAll.push(...realMs)
      perRoundMax.push(Math.max(...realMs, ...simMs))
      await sleep(100)
    }
    const sorted = all.sort((a, b) => a - b)
    const realSorted = realAll.sort((a, b) => a - b)
    return {
      samples: sorted.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1),
      realP50: percentile(realSorted, 50),
      realP99: percentile(realSorted, 99),
      worstRound: Math.max(...perRoundMax),
    }
  }

  const results = []
  await addSimulated(Math.max(0, options.proxies - options.real))
  const proxiesNow = () => options.real + sims.reduce((n, s) => n + s.count, 0)
  results.push({ what: `Admin.Apply RPC (what meshctl sends), ${proxiesNow()} proxies`, ...(await series('rpc', options.rounds, applyRpc)) })
  if (options.meshctlRounds > 0) {
    results.push({ what: `\`meshctl apply -f\` process (Node start included), ${proxiesNow()} proxies`, ...(await series('meshctl', options.meshctlRounds, applyMeshctl)) })
  }
  const idle100 = rssKiB(controlPid)

  await addSimulated(Math.max(0, options.rssProxies - options.real))
  await sleep(2000)
  const idleMany = rssKiB(controlPid)
  results.push({ what: `Admin.Apply RPC, ${proxiesNow()} proxies`, ...(await series('rpc-many', Math.max(3, Math.floor(options.rounds / 4)), applyRpc)) })
  const afterMany = rssKiB(controlPid)

  // ---------------------------------------------------------------- report
  const lines = []
  lines.push(`### Control plane (bench/control-plane.js), ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`)
  lines.push('')
  lines.push(`machine: nproc ${cores}, ${os.cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}; mesh-control pinned to core 0: ${hasTaskset && cores > 1 ? 'yes' : 'no'}`)
  lines.push(`options: ${JSON.stringify(options)}`)
  lines.push('')
  lines.push('Apply to in force (ms from the apply call to the push arriving at a simulated proxy, which ACKs it, or to the first request a real proxy routes by the new rule):')
  lines.push('')
  lines.push('| apply via | samples | p50 | p99 | max | real proxies p50 / p99 | worst round |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const r of results) {
    lines.push(`| ${r.what} | ${r.samples} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${fmt(r.realP50)} / ${fmt(r.realP99)} | ${fmt(r.worstRound)} |`)
  }
  lines.push('')
  lines.push('mesh-control memory (KiB):')
  lines.push('')
  lines.push('| state | VmRSS | VmHWM |')
  lines.push('| --- | ---: | ---: |')
  lines.push(`| ${options.proxies} proxies connected, after the apply series | ${idle100.rss} | ${idle100.hwm} |`)
  lines.push(`| ${proxiesNow()} proxies connected, idle | ${idleMany.rss} | ${idleMany.hwm} |`)
  lines.push(`| ${proxiesNow()} proxies connected, after applies | ${afterMany.rss} | ${afterMany.hwm} |`)
  const report = lines.join('\n') + '\n'
  fs.writeFileSync(path.join(outDir, 'control-plane.md'), report)
  process.stdout.write(report)

  for (const sim of sims) sim.child.send({ type: 'stop' })
  for (const proxy of real) proxy.child.kill('SIGTERM')
  control.kill('SIGTERM')
  admin.close()
  v1.server.close()
  v2.server.close()
  keepAlive.destroy()
  await sleep(500)
  if (controlLog.includes('internal error')) process.stderr.write(controlLog)
  fs.rmSync(work, { recursive: true, force: true })
  process.exit(0)
}

main().catch((err) => {
  process.stderr.write(`control-plane.js: ${err.message}\n`)
  process.exit(1)
})
