/** A real @grpc/grpc-js server (the app) and client for gRPC-through-the-proxy tests. */
import path from 'node:path'

import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'

export interface EchoRequest {
  message: string
}
export interface EchoReply {
  message: string
  instance: string
  authority: string
}

export interface EchoClient extends grpc.Client {
  Unary(req: EchoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall
  Chat(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<EchoRequest, EchoReply>
}

type EchoClientCtor = new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient

const definition = protoLoader.loadSync(path.join(__dirname, 'echo.proto'), { keepCase: true, defaults: true })
const proto = grpc.loadPackageDefinition(definition) as unknown as {
  meshtest: { v1: { Echo: EchoClientCtor & { service: grpc.ServiceDefinition } } }
}
const Echo = proto.meshtest.v1.Echo

/** Trailer every call ends with, so tests can check trailers cross the proxy. */
export const TRAILER_KEY = 'x-served-by'

export interface GrpcApp {
  readonly port: number
  readonly address: string
  close(): Promise<void>
}

export async function startGrpcApp(instance: string): Promise<GrpcApp> {
  const server = new grpc.Server()
  const trailer = (): grpc.Metadata => {
    const md = new grpc.Metadata()
    md.set(TRAILER_KEY, instance)
    return md
  }
  server.addService(Echo.service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) {
      const authority = call.getHost()
      const failure = /^fail:(\d+)$/.exec(call.request.message)
      if (failure) {
        callback({ code: Number(failure[1]), details: `asked to fail with ${failure[1]}`, metadata: trailer() })
        return
      }
      callback(null, { message: call.request.message, instance, authority }, trailer())
    },
    Chat(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      call.on('data', (req: EchoRequest) => call.write({ message: `echo:${req.message}`, instance, authority: call.getHost() }))
      call.on('end', () => call.end(trailer()))
      call.on('error', () => {})
    },
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  )
  return {
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve())
        setTimeout(() => {
          server.forceShutdown()
          resolve()
        }, 1_000).unref()
      }),
  }
}

/**
 * A client whose channel connects to `127.0.0.1:port` (the proxy) while addressing
 * `authority` (the service name), as a meshed client does.
 */
export function echoClient(port: number, authority?: string): EchoClient {
  const options: grpc.ChannelOptions = {}
  if (authority) options['grpc.default_authority'] = authority
  return new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options)
}

export interface UnaryResult {
  error: grpc.ServiceError | null
  reply: EchoReply | undefined
  trailers: grpc.Metadata | undefined
}

export function unary(client: EchoClient, message: string, deadlineMs = 10_000): Promise<UnaryResult> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined
    const call = client.Unary({ message }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, reply) => {
      // 'status' (with trailers) fires after the callback on success; give it a tick.
      setImmediate(() => resolve({ error, reply, trailers: trailers ?? error?.metadata }))
    })
    call.on('status', (status: grpc.StatusObject) => {
      trailers = status.metadata
    })
  })
}

export { grpc }
