// The proxy's admin endpoints (/live, /ready, /metrics, /config) on a small node:http server.
// It never sees data-plane traffic; it only reads state the proxy already holds.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import { PROMETHEUS_CONTENT_TYPE } from '../metrics/index.js'
import { formatHostPort, parseHostPort } from './address.js'

export interface AdminHandlers {
  /** True once a config is in force and the proxy is not shutting down. */
  ready(): boolean
  /** The Prometheus text exposition. */
  metrics(): Promise<string>
  /** The config in force as a JSON-serialisable object. */
  config(): unknown
}

const ALLOWED_METHODS = 'GET, HEAD'

function send(res: ServerResponse, status: number, contentType: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  })
  res.end(body)
}

function sendText(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  send(res, status, 'text/plain; charset=utf-8', body + '\n', extra)
}

/** Why a listen failed, in the words an operator expects. */
function describeListenError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'address already in use'
    case 'EADDRNOTAVAIL':
      return 'address not available on this host'
    case 'EACCES':
      return 'permission denied'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name does not resolve'
    default:
      return err.message
  }
}

export class AdminServer {
  private closing: Promise<void> | undefined

  private constructor(
    private readonly server: Server,
    /** The address actually bound (`127.0.0.1:4191`). */
    readonly address: string,
  ) {}

  /**
   * Listens on `listen` (`HOST:PORT`, port 0 for an ephemeral one). `label` names where the
   * address came from (`admin.listen`, `--admin`) in the error when it cannot listen.
   */
  static async listen(listen: string, handlers: AdminHandlers, label: string): Promise<AdminServer> {
    const target = parseHostPort(listen)
    if (!target) throw new Error(`${label}: expected HOST:PORT, got ${JSON.stringify(listen)}`)

    const server = createServer((req, res) => {
      handle(req, res, handlers).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err)
        if (!res.headersSent) sendText(res, 500, `internal error: ${message.split('\n')[0]}`)
        else res.destroy()
      })
    })
    // Admin clients are scrapers and humans with curl; do not let an idle keep-alive
    // connection hold the process open at shutdown for long.
    server.keepAliveTimeout = 5_000

    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        server.off('listening', onListening)
        reject(new Error(`${label}: cannot listen on ${listen}: ${describeListenError(err)}`))
      }
      const onListening = () => {
        server.off('error', onError)
        resolve()
      }
      server.once('error', onError)
      server.once('listening', onListening)
      server.listen({ host: target.host, port: target.port, exclusive: true })
    })

    const bound = server.address() as AddressInfo
    return new AdminServer(server, formatHostPort(bound.address, bound.port))
  }

  /** Stops listening and closes every connection, idle or not. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
    return this.closing
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, handlers: AdminHandlers): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0]
  const known = path === '/live' || path === '/ready' || path === '/metrics' || path === '/config'
  if (!known) return sendText(res, 404, 'not found')
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendText(res, 405, 'method not allowed', { allow: ALLOWED_METHODS })
  }

  switch (path) {
    case '/live':
      return sendText(res, 200, 'live')
    case '/ready':
      return handlers.ready() ? sendText(res, 200, 'ready') : sendText(res, 503, 'not ready')
    case '/metrics':
      return send(res, 200, PROMETHEUS_CONTENT_TYPE, await handlers.metrics())
    case '/config':
      return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(handlers.config(), null, 2) + '\n')
  }
}
