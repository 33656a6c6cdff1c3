/**
 * Applications that fail on purpose, for the resilience end-to-end tests: an HTTP/1 app
 * whose answers follow a policy the test can change while it runs (a share of 503s, every
 * request failing, hanging), and a gRPC Echo app that answers a share of calls with
 * UNAVAILABLE. Both count what they saw, so a test can compare the load that reached
 * them with what the proxy's counters say.
 */
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'

import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

export type FailureMode =
  /** Every request answered 200 (JSON: instance, method, body). */
  | { kind: 'healthy' }
  /** Each request answered 503 with probability `share` (0 to 1). */
  | { kind: 'flaky'; share: number }
  /** Every request answered with `status`. */
  | { kind: 'failing'; status: number }
  /** No answer for `ms` milliseconds, then 200. */
  | { kind: 'hanging'; ms: number }

export interface FlakyApp {
  readonly name: string
  readonly port: number
  readonly address: string
  mode: FailureMode
  /** Requests received. */
  hits: number
  /** Requests answered with a 5xx. */
  failures: number
  /** Bodies of the requests received, in arrival order. */
  readonly bodies: string[]
  reset(): void
  close(): Promise<void>
}

export async function startFlakyApp(name: string, mode: FailureMode = { kind: 'healthy' }): Promise<FlakyApp> {
  const sockets = new Set<net.Socket>()
  const app = {
    name,
    port: 0,
    address: '',
    mode,
    hits: 0,
    failures: 0,
    bodies: [] as string[],
    reset() {
      app.hits = 0
      app.failures = 0
      app.bodies.length = 0
    },
    close: async () => {},
  }
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    app.hits++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      app.bodies.push(body)
      const answer = (status: number): void => {
        if (res.destroyed) return
        if (status >= 500) app.failures++
        const text = JSON.stringify({ instance: name, method: req.method, body, status })
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-instance': name })
        res.end(text)
      }
      const current = app.mode
      switch (current.kind) {
        case 'healthy':
          return answer(200)
        case 'flaky':
          return answer(Math.random() < current.share ? 503 : 200)
        case 'failing':
          return answer(current.status)
        case 'hanging': {
          const timer = setTimeout(() => answer(200), current.ms)
          res.on('close', () => clearTimeout(timer))
          return
        }
      }
    })
  })
  server.on('connection', (s: net.Socket) => {
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
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return app
}

interface EchoRequest {
  message: string
}

export interface FlakyGrpcApp {
  readonly port: number
  readonly address: string
  /** Share of calls answered with UNAVAILABLE (0 to 1). */
  unavailableShare: number
  calls: number
  unavailable: number
  close(): Promise<void>
}

const definition = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true })
const Echo = (grpc.loadPackageDefinition(definition) as unknown as { meshtest: { v1: { Echo: { service: grpc.ServiceDefinition } } } })
  .meshtest.v1.Echo

/** A gRPC Echo server answering a share of unary calls with UNAVAILABLE (a trailers-only response). */
export async function startFlakyGrpcApp(instance: string, unavailableShare: number): Promise<FlakyGrpcApp> {
  const server = new grpc.Server()
  const app = { port: 0, address: '', unavailableShare, calls: 0, unavailable: 0, close: async () => {} }
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, unknown>, callback: grpc.sendUnaryData<unknown>) {
      app.calls++
      if (Math.random() < app.unavailableShare) {
        app.unavailable++
        callback({ code: grpc.status.UNAVAILABLE, details: 'flaky on purpose' })
        return
      }
      callback(null, { message: call.request.message, instance, authority: call.getHost() })
    },
    Chat(call: grpc.ServerDuplexStream<EchoRequest, unknown>) {
      call.on('end', () => call.end())
    },
  })
  app.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  app.address = `127.0.0.1:${app.port}`
  app.close = () =>
    new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve())
      setTimeout(() => {
        server.forceShutdown()
        resolve()
      }, 1_000).unref()
    })
  return app
}
