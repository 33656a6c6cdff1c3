/**
 * One active health check of one endpoint: an HTTP GET of the check's path (HTTP/1, or
 * HTTP/2 with prior knowledge for http2/grpc Services) expecting 2xx/3xx, or a TCP
 * connect when the check has no path. Fresh connections every time (no agent, no
 * pooling): a check must see what a new client would see.
 */
import http from 'node:http'
import http2 from 'node:http2'
import net from 'node:net'
import { parseHostPort, type ServiceProtocol } from '../../config/index.js'

export interface ProbeSpec {
  /** `IP:PORT`. */
  address: string
  /** HTTP path; absent for a TCP connect check. */
  path?: string
  /** The Service's protocol: picks HTTP/1 or HTTP/2 for path checks. */
  protocol: ServiceProtocol
  timeoutMs: number
}

/** Runs one check. Resolves undefined when healthy, else one short reason (`HTTP 500`, `connect ECONNREFUSED`). */
export type Probe = (spec: ProbeSpec) => Promise<string | undefined>

function describeError(err: unknown): string {
  const error = err as NodeJS.ErrnoException
  if (error.code !== undefined) return error.syscall !== undefined ? `${error.syscall} ${error.code}` : error.code
  return (error.message ?? String(err)).split('\n', 1)[0] as string
}

function formatTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

function statusResult(status: number): string | undefined {
  return status >= 200 && status < 400 ? undefined : `HTTP ${status}`
}

/** Settles once with the first outcome, destroying `resource` on timeout. */
function withTimeout(timeoutMs: number, run: (settle: (result: string | undefined) => void) => () => void): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false
    let cleanup: () => void = () => undefined
    const settle = (result: string | undefined): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      cleanup()
      resolve(result)
    }
    const timer = setTimeout(() => settle(`timeout after ${formatTimeout(timeoutMs)}`), timeoutMs)
    cleanup = run(settle)
  })
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return withTimeout(timeoutMs, (settle) => {
    const socket = net.connect({ host, port })
    socket.once('connect', () => settle(undefined))
    socket.once('error', (err) => settle(describeError(err)))
    return () => socket.destroy()
  })
}

function probeHttp1(host: string, port: number, path: string, timeoutMs: number): Promise<string | undefined> {
  return withTimeout(timeoutMs, (settle) => {
    const request = http.request({ host, port, path, method: 'GET', agent: false, headers: { 'user-agent': 'mesh-control-health' } })
    request.once('response', (response) => {
      response.resume() // drain the body; only the status counts
      settle(statusResult(response.statusCode ?? 0))
    })
    request.once('error', (err) => settle(describeError(err)))
    request.end()
    return () => request.destroy()
  })
}

function probeHttp2(host: string, port: number, path: string, timeoutMs: number): Promise<string | undefined> {
  return withTimeout(timeoutMs, (settle) => {
    const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
    const session = http2.connect(`http://${authority}`)
    session.once('error', (err) => settle(describeError(err)))
    const stream = session.request({ ':method': 'GET', ':path': path, 'user-agent': 'mesh-control-health' })
    stream.once('response', (headers) => settle(statusResult(Number(headers[':status']))))
    stream.once('error', (err) => settle(describeError(err)))
    stream.resume()
    stream.end()
    return () => session.destroy()
  })
}

export const probeEndpoint: Probe = (spec) => {
  const { host, port } = parseHostPort(spec.address)
  if (spec.path === undefined) return probeTcp(host, port, spec.timeoutMs)
  if (spec.protocol === 'http2' || spec.protocol === 'grpc') return probeHttp2(host, port, spec.path, spec.timeoutMs)
  return probeHttp1(host, port, spec.path, spec.timeoutMs)
}
