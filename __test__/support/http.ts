/** HTTP/1.1 (keep-alive) and HTTP/2 (h2c prior knowledge) clients for talking through the proxy. */
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'

import type { SeenRequest } from './apps.js'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

/** What the app saw, when the body is the test app's JSON echo. */
export function seen(reply: Reply): SeenRequest {
  try {
    return JSON.parse(reply.body) as SeenRequest
  } catch {
    throw new Error(`expected the app's JSON echo, got status ${reply.status}: ${reply.body.slice(0, 300)}`)
  }
}

export function keepAliveAgent(maxSockets = 16): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets })
}

export interface H1Options {
  port: number
  /** The Host header (the service the request is for). */
  host?: string
  path?: string
  method?: string
  headers?: http.OutgoingHttpHeaders
  body?: string
  agent?: http.Agent | false
  timeoutMs?: number
}

export function h1(opts: H1Options): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...opts.headers }
    if (opts.host !== undefined) headers.host = opts.host
    const req = http.request(
      {
        host: '127.0.0.1',
        port: opts.port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers,
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`request ${opts.method ?? 'GET'} ${opts.host ?? ''}${opts.path ?? '/'} timed out`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

export interface H2Client {
  request(opts: { authority: string; path?: string; method?: string; headers?: http2.OutgoingHttpHeaders; body?: string }): Promise<Reply>
  close(): Promise<void>
}

/** One HTTP/2 connection (h2c, prior knowledge) to 127.0.0.1:port, multiplexing every request. */
export async function h2Connect(port: number): Promise<H2Client> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  session.on('error', () => {})
  return {
    request({ authority, path = '/', method = 'GET', headers = {}, body }) {
      return new Promise((resolve, reject) => {
        const stream = session.request({ ':authority': authority, ':path': path, ':method': method, ...headers })
        let status = 0
        let responseHeaders: http.IncomingHttpHeaders = {}
        const chunks: Buffer[] = []
        stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL))
        stream.on('response', (h) => {
          status = Number(h[':status'])
          responseHeaders = h as http.IncomingHttpHeaders
        })
        stream.on('data', (c: Buffer) => chunks.push(c))
        stream.on('end', () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks).toString('utf8') }))
        stream.on('error', reject)
        stream.on('close', () => {
          if (status === 0) reject(new Error(`h2 stream ${path} closed without a response (code ${stream.rstCode})`))
        })
        stream.end(body)
      })
    },
    close: () => new Promise<void>((resolve) => session.close(() => resolve())),
  }
}

/** Opens a raw TCP connection; resolves once connected. */
export function tcpConnect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** Collects bytes from `socket` until `done(received)` is true; rejects on close or after timeoutMs. */
export function readUntil(socket: net.Socket, done: (received: Buffer) => boolean, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0)
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', onError)
    }
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk])
      if (done(received)) {
        cleanup()
        resolve(received)
      }
    }
    const onClose = (): void => {
      cleanup()
      reject(new Error(`connection closed after ${received.length} bytes: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`))
    }
    const onError = (e: Error): void => {
      cleanup()
      reject(e)
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no complete answer within ${timeoutMs} ms; got ${received.length} bytes: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`))
    }, timeoutMs)
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.once('error', onError)
  })
}

/**
 * Runs `count` calls of `fn` with at most `concurrency` outstanding; results in call order.
 */
export async function runConcurrently<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      results[i] = await fn(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return results
}

/** Counts of each value. */
export function tally<T>(values: T[]): Map<T, number> {
  const counts = new Map<T, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return counts
}
