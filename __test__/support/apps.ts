/**
 * Real application servers on 127.0.0.1 that stand behind the proxy in end-to-end tests.
 *
 * The HTTP app answers every request with JSON describing what it received (which
 * instance served it, protocol, method, path, headers, body), so a test can assert
 * where the proxy sent a request and what it changed on the way. Query parameters steer
 * it: `?delay=MS` answers after MS milliseconds, `?status=NNN` answers with that status.
 */
import { EventEmitter } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'

export interface SeenRequest {
  instance: string
  /** "1.1" or "2.0" as the app saw it. */
  httpVersion: string
  method: string
  path: string
  headers: Record<string, string | string[] | undefined>
  body: string
}

export interface HttpAppOptions {
  /** Reported as `instance` and in the `x-instance` response header. */
  name: string
  /** h1: node:http; h2c: node:http2 without TLS (prior knowledge); both: sniffed per connection. */
  protocols?: 'h1' | 'h2c' | 'both'
  /** Added to every response's delay (a slow instance for balancer tests). */
  delayMs?: number
}

export interface HttpApp {
  readonly name: string
  readonly port: number
  readonly address: string
  /** Requests answered (or being answered) so far. */
  hits: number
  /** TCP connections accepted so far. */
  connections: number
  /** When set, every response (health checks included) has this status: a broken instance. */
  forcedStatus: number | undefined
  /** Emits 'request' (SeenRequest) as soon as a request's body has been read. */
  readonly events: EventEmitter
  resetHits(): void
  close(): Promise<void>
}

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse

const H2_PREFACE_START = Buffer.from('PRI * HTTP/2.0')

export async function startHttpApp(opts: HttpAppOptions): Promise<HttpApp> {
  const events = new EventEmitter()
  const sockets = new Set<net.Socket>()
  const app = {
    name: opts.name,
    port: 0,
    address: '',
    hits: 0,
    connections: 0,
    forcedStatus: undefined as number | undefined,
    events,
    resetHits() {
      app.hits = 0
    },
    close: async () => {},
  }

  const handle = (req: AnyRequest, res: AnyResponse): void => {
    app.hits++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://app.invalid')
      const seen: SeenRequest = {
        instance: opts.name,
        httpVersion: req.httpVersion,
        method: req.method ?? '',
        path: url.pathname + url.search,
        headers: { ...req.headers },
        body: Buffer.concat(chunks).toString('utf8'),
      }
      events.emit('request', seen)
      const delay = (opts.delayMs ?? 0) + Number(url.searchParams.get('delay') ?? 0)
      const status = app.forcedStatus ?? Number(url.searchParams.get('status') ?? 200)
      const respond = (): void => {
        if (res.writableEnded || res.destroyed) return
        const body = JSON.stringify(seen)
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-instance': opts.name,
        })
        res.end(body)
      }
      if (delay > 0) {
        const timer = setTimeout(respond, delay)
        res.on('close', () => clearTimeout(timer))
      } else {
        respond()
      }
    })
  }

  const h1 = http.createServer({ keepAliveTimeout: 30_000 }, handle)
  const h2 = http2.createServer({}, handle)
  const protocols = opts.protocols ?? 'h1'
  let server: net.Server
  if (protocols === 'h1') server = h1
  else if (protocols === 'h2c') server = h2
  else {
    // One port for both: look at the first bytes, then hand the socket to the right server.
    server = net.createServer((socket) => {
      socket.once('data', (first: Buffer) => {
        socket.pause()
        socket.unshift(first)
        const n = Math.min(first.length, H2_PREFACE_START.length)
        const isH2 = first.subarray(0, n).equals(H2_PREFACE_START.subarray(0, n))
        if (isH2) {
          // The HTTP/2 session reads what is already buffered on the socket itself.
          h2.emit('connection', socket)
        } else {
          h1.emit('connection', socket)
          socket.resume()
        }
      })
    })
  }
  server.on('connection', (s: net.Socket) => {
    app.connections++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  app.port = (server.address() as net.AddressInfo).port
  app.address = `127.0.0.1:${app.port}`
  app.close = async () => {
    for (const s of sockets) s.destroy()
    h1.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return app
}

export interface TcpServer {
  readonly port: number
  readonly address: string
  /** Connections accepted so far. */
  connections: number
  close(): Promise<void>
}

async function listenTcp(onConnection: (s: net.Socket) => void): Promise<TcpServer> {
  const sockets = new Set<net.Socket>()
  const result = { port: 0, address: '', connections: 0, close: async () => {} }
  const server = net.createServer((socket) => {
    result.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    onConnection(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  result.port = (server.address() as net.AddressInfo).port
  result.address = `127.0.0.1:${result.port}`
  result.close = async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return result
}

/** Writes back every byte it reads; half-closes when the client does. */
export function startTcpEchoServer(): Promise<TcpServer> {
  return listenTcp((socket) => socket.pipe(socket))
}

/**
 * A server-first protocol (like SMTP): sends `banner` on connect before the client says
 * anything, then echoes each line back prefixed with "250 ".
 */
export function startBannerServer(banner = '220 ready\r\n'): Promise<TcpServer> {
  return listenTcp((socket) => {
    socket.write(banner)
    let pending = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      pending += d
      let nl: number
      while ((nl = pending.indexOf('\n')) >= 0) {
        socket.write(`250 ${pending.slice(0, nl + 1)}`)
        pending = pending.slice(nl + 1)
      }
    })
    socket.on('end', () => socket.end())
  })
}
