#!/usr/bin/env node
'use strict'
// The quick start: runs examples/quickstart/app.js and `mesh-proxy --config
// examples/quickstart/mesh.yaml`, sends one request through the proxy's outbound listener
// and one through its inbound listener, prints what came back and what to try next, and
// keeps both running until Ctrl-C. With --once it stops them and exits 0 when both
// requests succeeded, 1 otherwise (CI runs `npm run quickstart -- --once`).
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')
const CONFIG = path.join('examples', 'quickstart', 'mesh.yaml')
const APP_PORT = 8080
const OUTBOUND = 4140
const INBOUND = 4143
const ADMIN = 4191

const args = process.argv.slice(2)
const unknown = args.filter((a) => a !== '--once')
if (unknown.length > 0) {
  process.stderr.write(`quickstart: unknown argument ${unknown[0]} (the only option is --once)\n`)
  process.exit(2)
}
const once = args.includes('--once')

function log(line) {
  process.stdout.write(`quickstart: ${line}\n`)
}

const children = []

function start(name, argv) {
  // Own process group: Ctrl-C reaches only this script, which then stops the children in
  // order with one SIGTERM each (a second signal would make mesh-proxy skip its drain).
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], detached: true })
  child.exitInfo = undefined
  child.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      child.exitInfo = { code, signal }
      resolve(child.exitInfo)
    }),
  )
  child.label = name
  children.push(child)
  return child
}

process.on('exit', () => {
  for (const child of children) if (!child.exitInfo) child.kill('SIGKILL')
})

async function stopAll() {
  // The proxy first, so it drains before its app goes away.
  for (const child of [...children].reverse()) {
    if (child.exitInfo) continue
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await child.exited
    clearTimeout(timer)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitUntil(what, child, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitInfo) throw new Error(`${child.label} exited (${JSON.stringify(child.exitInfo)}) before ${what}`)
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function get(port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false, timeout: 5_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, body: body.trim() }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET 127.0.0.1:${port}${urlPath} timed out`)))
    req.on('error', reject)
  })
}

async function main() {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'mesh-proxy.js'))) {
    throw new Error('the package is not built yet: run `npm run build` first')
  }

  const app = start('app', [path.join('examples', 'quickstart', 'app.js')])
  await waitUntil(`the app on 127.0.0.1:${APP_PORT}`, app, () => canConnect(APP_PORT), 10_000)

  const proxy = start('mesh-proxy', [path.join('bin', 'mesh-proxy.js'), '--config', CONFIG])
  await waitUntil(
    `mesh-proxy to be ready (127.0.0.1:${ADMIN}/ready)`,
    proxy,
    async () => (await get(ADMIN, '/ready')).status === 200,
    30_000,
  )

  let ok = true
  const attempts = [
    { name: 'outbound', port: OUTBOUND, headers: { host: 'hello' }, curl: `curl -H 'Host: hello' http://127.0.0.1:${OUTBOUND}/outbound` },
    { name: 'inbound', port: INBOUND, headers: {}, curl: `curl http://127.0.0.1:${INBOUND}/inbound` },
  ]
  for (const attempt of attempts) {
    try {
      const reply = await get(attempt.port, `/${attempt.name}`, attempt.headers)
      const fromApp = reply.status === 200 && /"app":"hello"/.test(reply.body)
      log(`${attempt.name}: ${attempt.curl} -> ${reply.status} ${reply.body}`)
      if (!fromApp) {
        ok = false
        log(`${attempt.name}: expected 200 from the app`)
      }
    } catch (err) {
      ok = false
      log(`${attempt.name}: request failed: ${err.message}`)
    }
  }

  if (once) {
    await stopAll()
    log(ok ? 'both requests went through mesh-proxy' : 'FAILED')
    return ok ? 0 : 1
  }

  log('mesh-proxy is running in front of the app. Try:')
  for (const line of [
    ...attempts.map((a) => a.curl),
    `curl -x http://127.0.0.1:${OUTBOUND} http://hello/via-http-proxy`,
    `curl http://127.0.0.1:${ADMIN}/metrics | grep -E '^(request|response)_total'`,
    `curl http://127.0.0.1:${ADMIN}/config`,
    `edit ${CONFIG} and save: mesh-proxy reloads it (or: kill -HUP ${proxy.pid})`,
  ]) {
    process.stdout.write(`  ${line}\n`)
  }
  log('Ctrl-C stops both')

  return new Promise((resolve) => {
    let stopping = false
    const stop = () => {
      if (stopping) process.exit(1)
      stopping = true
      stopAll().then(() => resolve(0))
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    // Either child dying on its own ends the quick start.
    for (const child of children) {
      child.exited.then(() => {
        if (!stopping) {
          log(`${child.label} exited unexpectedly (${JSON.stringify(child.exitInfo)})`)
          stopping = true
          stopAll().then(() => resolve(1))
        }
      })
    }
  })
}

main().then(
  (code) => process.exit(code),
  async (err) => {
    process.stderr.write(`quickstart: ${err.message}\n`)
    await stopAll()
    process.exit(1)
  },
)
