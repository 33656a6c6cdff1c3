#!/usr/bin/env node
'use strict'
// Open-loop constant-rate HTTP/1.1 load with latency percentiles, for bench/mtls.sh.
//
//   node bench/lib/constant-rate.js --port PORT [--host HOST] [--rate 1000] [--connections 16]
//        [--warmup 5] [--duration 20] [--latencies FILE]
//
// Sends GET / with `Host: HOST` to 127.0.0.1:PORT at RATE requests per second, on a
// schedule that does not wait for responses (a slow response does not delay the next
// request), over CONNECTIONS keep-alive connections, one request in flight per
// connection. Latency runs from the moment a request is taken off the schedule to the
// last byte of its response. When every connection is busy the request waits for one and
// that wait counts, so a stalled server shows in the tail instead of being hidden (the
// coordinated omission of closed-loop clients). Send times follow Node's millisecond
// timers: a request may leave up to about a millisecond after its slot; that lag is not
// counted, but reported. Only requests whose slot falls after WARMUP seconds, during
// DURATION seconds, are measured; afterwards the client waits at most 3 s for responses
// still outstanding and counts those as errors.
//
// Prints one JSON object: counts, achieved rate, latency percentiles in ms, the
// schedule's lag and the client's own CPU time per request. --latencies writes each
// measured latency in µs, one per line, in completion order.
//
// Why not h2load --rps: on this kind of machine it sends its requests in bursts (about
// ten back to back every ~10 ms on one connection, all clients in phase), which is not a
// constant rate; wrk has no rate option (it is not wrk2).

const fs = require('node:fs')
const net = require('node:net')
const { performance } = require('node:perf_hooks')

function fail(message) {
  process.stderr.write(`constant-rate.js: ${message}\n`)
  process.exit(2)
}

function parseArgs(argv) {
  const options = { port: 0, host: 'localhost', rate: 1000, connections: 16, warmup: 5, duration: 20, latencies: '' }
  const numeric = new Set(['port', 'rate', 'connections', 'warmup', 'duration'])
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]
    const value = argv[i + 1]
    if (name === '-h' || name === '--help') {
      process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 26).join('\n').replace(/^\/\/ ?/gm, '') + '\n')
      process.exit(0)
    }
    const key = name.startsWith('--') ? name.slice(2) : ''
    if (!Object.hasOwn(options, key) || value === undefined) fail(`unknown option or missing value: ${name} (try --help)`)
    if (numeric.has(key)) {
      const n = Number(value)
      if (!Number.isFinite(n) || n < 0 || (key !== 'warmup' && n === 0)) fail(`--${key}: expected a positive number, got ${JSON.stringify(value)}`)
      options[key] = n
    } else {
      options[key] = value
    }
  }
  if (!Number.isInteger(options.port) || options.port > 65535) fail('--port: expected a TCP port')
  if (!Number.isInteger(options.connections)) fail('--connections: expected a whole number')
  return options
}

const HEADER_END = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i
const CHUNKED = /\r\ntransfer-encoding:[ \t]*[^\r]*chunked/i
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i
const INCOMPLETE = { end: -1 }

/**
 * Where the response at the start of `buf` ends (the index after its last byte), with
 * its status, or `end: -1` while it is incomplete. Throws on what is not HTTP/1.x.
 */
function parseResponse(buf) {
  const headerEnd = buf.indexOf(HEADER_END)
  if (headerEnd < 0) return INCOMPLETE
  const head = buf.latin1Slice(0, headerEnd + 2)
  if (!head.startsWith('HTTP/1.')) throw new Error(`not an HTTP/1 response: ${JSON.stringify(head.slice(0, 40))}`)
  const status = Number(head.slice(9, 12))
  const close = CONNECTION_CLOSE.test(head)
  const bodyStart = headerEnd + 4
  if (CHUNKED.test(head)) {
    let at = bodyStart
    for (;;) {
      const lineEnd = buf.indexOf(CRLF, at)
      if (lineEnd < 0) return INCOMPLETE
      const size = parseInt(buf.latin1Slice(at, lineEnd), 16)
      if (!Number.isFinite(size)) throw new Error('bad chunk size line')
      if (size === 0) {
        // The last chunk; no trailers are expected, so an empty line follows.
        return buf.length < lineEnd + 4 ? INCOMPLETE : { end: lineEnd + 4, status, close }
      }
      at = lineEnd + 2 + size + 2
      if (buf.length < at) return INCOMPLETE
    }
  }
  const length = CONTENT_LENGTH.exec(head)
  const end = bodyStart + (length ? Number(length[1]) : 0)
  return buf.length < end ? INCOMPLETE : { end, status, close }
}

const percentile = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))])
const round3 = (v) => Math.round(v * 1000) / 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function main() {
  const options = parseArgs(process.argv.slice(2))
  const request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${options.host}\r\nUser-Agent: mesh-bench-constant-rate\r\n\r\n`, 'latin1')
  const intervalMs = 1000 / options.rate
  const capacity = Math.ceil(options.rate * options.duration * 1.05) + 1000
  const latencies = new Float64Array(capacity)
  const lags = new Float64Array(capacity)
  let measured = 0
  let lagCount = 0
  let sent = 0
  let errors = 0
  let connectionWaits = 0
  const statuses = new Map()
  const errorSamples = []
  const noteError = (message) => {
    errors++
    if (errorSamples.length < 5) errorSamples.push(message)
  }

  /** Requests taken off the schedule while every connection was busy, oldest first. */
  const waiting = []
  const idle = []
  const connections = []
  let stopping = false

  function connect(conn) {
    conn.buf = Buffer.alloc(0)
    conn.current = undefined
    conn.ready = false
    const socket = net.connect({ host: '127.0.0.1', port: options.port })
    conn.socket = socket
    socket.setNoDelay(true)
    socket.on('connect', () => {
      conn.ready = true
      release(conn)
    })
    socket.on('data', (chunk) => onData(conn, chunk))
    socket.on('error', () => {}) // 'close' follows and handles it
    socket.on('close', () => {
      if (conn.socket !== socket) return
      const at = idle.indexOf(conn)
      if (at >= 0) idle.splice(at, 1)
      if (conn.current?.measure) noteError('connection closed with a request in flight')
      conn.current = undefined
      if (!stopping) setTimeout(() => connect(conn), conn.ready ? 0 : 100)
    })
  }

  function onData(conn, chunk) {
    conn.buf = conn.buf.length === 0 ? chunk : Buffer.concat([conn.buf, chunk])
    if (!conn.current) {
      noteError('bytes from the server with no request in flight')
      conn.socket.destroy()
      return
    }
    let parsed
    try {
      parsed = parseResponse(conn.buf)
    } catch (err) {
      noteError(err.message)
      conn.socket.destroy()
      return
    }
    if (parsed.end < 0) return
    const done = performance.now()
    const { takenAt, measure } = conn.current
    conn.current = undefined
    if (measure) {
      statuses.set(parsed.status, (statuses.get(parsed.status) ?? 0) + 1)
      if (parsed.status === 200) {
        if (measured < capacity) latencies[measured++] = done - takenAt
      } else {
        noteError(`status ${parsed.status}`)
      }
    }
    const extra = conn.buf.length - parsed.end
    conn.buf = Buffer.alloc(0)
    if (extra > 0) {
      noteError('more bytes than one response')
      conn.socket.destroy()
    } else if (parsed.close) {
      conn.socket.destroy()
    } else {
      release(conn)
    }
  }

  function send(conn, entry) {
    conn.current = entry
    conn.socket.write(request)
  }

  /** A connection became free: the oldest waiting request goes out on it. */
  function release(conn) {
    const entry = waiting.shift()
    if (entry) send(conn, entry)
    else idle.push(conn)
  }

  for (let i = 0; i < options.connections; i++) {
    const conn = {}
    connections.push(conn)
    connect(conn)
  }
  const connectDeadline = performance.now() + 5000
  while (idle.length < options.connections) {
    if (performance.now() > connectDeadline) fail(`could not open ${options.connections} connections to 127.0.0.1:${options.port}`)
    await sleep(10)
  }

  const start = performance.now()
  const measureFrom = start + options.warmup * 1000
  const end = measureFrom + options.duration * 1000
  let cpuAtMeasure
  let slot = 0
  await new Promise((resolve) => {
    function tick() {
      const now = performance.now()
      if (cpuAtMeasure === undefined && now >= measureFrom) cpuAtMeasure = process.cpuUsage()
      for (;;) {
        const due = start + slot * intervalMs
        if (due > now) break
        if (due >= end) {
          resolve()
          return
        }
        slot++
        const measure = due >= measureFrom
        const entry = { takenAt: now, measure }
        if (measure) {
          sent++
          if (lagCount < capacity) lags[lagCount++] = now - due
        }
        const conn = idle.shift()
        if (conn) {
          send(conn, entry)
        } else {
          if (measure) connectionWaits++
          waiting.push(entry)
        }
      }
      setTimeout(tick, Math.max(0, start + slot * intervalMs - performance.now()))
    }
    tick()
  })
  const cpu = process.cpuUsage(cpuAtMeasure)

  // Let outstanding requests finish, then count what is left as errors.
  const drainDeadline = performance.now() + 3000
  while ((waiting.length > 0 || connections.some((c) => c.current)) && performance.now() < drainDeadline) await sleep(5)
  stopping = true
  const unanswered = waiting.filter((e) => e.measure).length + connections.filter((c) => c.current?.measure).length
  for (let i = 0; i < unanswered; i++) noteError('no response within 3 s after the end')
  for (const conn of connections) conn.socket.destroy()

  if (options.latencies) {
    fs.writeFileSync(options.latencies, Array.from(latencies.subarray(0, measured), (v) => Math.round(v * 1000)).join('\n') + '\n')
  }
  const sorted = latencies.subarray(0, measured).sort()
  const lagSorted = lags.subarray(0, lagCount).sort()
  let sum = 0
  for (const v of sorted) sum += v
  const result = {
    port: options.port,
    host: options.host,
    rate: options.rate,
    connections: options.connections,
    warmupS: options.warmup,
    durationS: options.duration,
    sent,
    ok: measured,
    errors,
    statuses: Object.fromEntries(statuses),
    achievedRps: Math.round((measured + errors) / options.duration),
    p50Ms: round3(percentile(sorted, 0.5)),
    p90Ms: round3(percentile(sorted, 0.9)),
    p99Ms: round3(percentile(sorted, 0.99)),
    p999Ms: round3(percentile(sorted, 0.999)),
    maxMs: round3(sorted.length ? sorted[sorted.length - 1] : NaN),
    meanMs: round3(sum / Math.max(1, sorted.length)),
    scheduleLagP50Ms: round3(percentile(lagSorted, 0.5)),
    scheduleLagP99Ms: round3(percentile(lagSorted, 0.99)),
    connectionWaits,
    clientCpuUsPerRequest: Math.round(((cpu.user + cpu.system) / Math.max(1, sent)) * 10) / 10,
    errorSamples,
  }
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => fail(err.message))
