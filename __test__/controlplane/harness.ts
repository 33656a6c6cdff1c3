/**
 * Test harness for mesh-control: a real MeshControl on 127.0.0.1:0 with a temp data
 * dir, real grpc-js clients of its three services, and a Watch stream driver that
 * queues pushes so tests can ACK or NACK them one by one.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {
  AdminClient,
  DiscoveryClient,
  RegistryClient,
  tokenMetadata,
  type AdminClientType,
  type ApplyResponse__Output,
  type Hello,
  type RegistryClientType,
  type WatchRequest,
  type WatchResponse__Output,
  type WorkloadEndpoint,
} from '../../src/control/proto.js'
import { MeshControl, type MeshControlOptions } from '../../src/controlplane/index.js'

export type Doc = Record<string, unknown>

export function service(name: string, extra: Doc = {}): Doc {
  return { apiVersion: 'mesh/v1', kind: 'Service', name, endpoints: [], ...extra }
}

export function httpRoute(name: string, parent: string, backends: string[], extra: Doc = {}): Doc {
  return {
    apiVersion: 'mesh/v1',
    kind: 'HTTPRoute',
    name,
    parentRefs: [{ name: parent }],
    rules: [{ backendRefs: backends.map((backend) => ({ name: backend })) }],
    ...extra,
  }
}

export function policy(name: string, target: string): Doc {
  return { apiVersion: 'mesh/v1', kind: 'AuthorizationPolicy', name, targetRef: { name: target }, rules: [{}] }
}

export interface Harness {
  control: MeshControl
  dataDir: string
  logs: string[]
  admin: AdminClientType
  registry: RegistryClientType
  /** Stops clients and the server (idempotent); the data dir stays until cleanup(). */
  stop(): Promise<void>
  /** stop() and remove the data dir. */
  cleanup(): Promise<void>
  /** A new MeshControl on the same data dir (after stop()). */
  restart(options?: Partial<MeshControlOptions>): Promise<Harness>
}

export function tempDataDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'mesh-control-')), 'data')
}

export async function startHarness(options: Partial<MeshControlOptions> = {}, dataDir = tempDataDir()): Promise<Harness> {
  const logs: string[] = []
  const control = await MeshControl.start({
    listen: '127.0.0.1:0',
    dataDir,
    logger: (line) => logs.push(line),
    ...options,
  })
  const credentials = grpc.credentials.createInsecure()
  const admin = new (AdminClient())(control.address, credentials)
  const registry = new (RegistryClient())(control.address, credentials)
  let stopped: Promise<void> | undefined
  const harness: Harness = {
    control,
    dataDir,
    logs,
    admin,
    registry,
    stop() {
      stopped ??= (async () => {
        admin.close()
        registry.close()
        await control.close()
      })()
      return stopped
    },
    async cleanup() {
      await harness.stop()
      rmSync(join(dataDir, '..'), { recursive: true, force: true })
    },
    async restart(more = {}) {
      await harness.stop()
      return startHarness({ ...options, ...more }, dataDir)
    },
  }
  return harness
}

/** Calls a unary method and resolves with its response, or rejects with the ServiceError. */
export function call<Request, Response>(
  client: grpc.Client,
  method: string,
  request: Request,
  metadata = new grpc.Metadata(),
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Function>)[method] as (
      request: Request,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (err: grpc.ServiceError | null, response?: Response) => void,
    ) => void
    fn.call(client, request, metadata, { deadline: Date.now() + 10_000 }, (err, response) =>
      err ? reject(err) : resolve(response as Response),
    )
  })
}

/** The ServiceError a call fails with (fails the test when it succeeds). */
export async function callError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise
  } catch (err) {
    return err as grpc.ServiceError
  }
  throw new Error('expected the call to fail')
}

export function applyDocs(harness: Harness, docs: Doc[], source = 'test.yaml'): Promise<ApplyResponse__Output> {
  return call(harness.admin, 'Apply', {
    source,
    documents: docs.map((doc, index) => ({ number: index + 1, json: JSON.stringify(doc) })),
  })
}

/** Applies and fails loudly when the server reports errors. */
export async function mustApply(harness: Harness, docs: Doc[]): Promise<ApplyResponse__Output> {
  const response = await applyDocs(harness, docs)
  if (response.errors.length > 0) throw new Error(`apply failed:\n${response.errors.join('\n')}`)
  return response
}

export async function token(harness: Harness, service: string, namespace = 'default'): Promise<string> {
  return (await harness.control.createToken(service, namespace)).token
}

/** A decoded push with its resources parsed. */
export interface Push extends WatchResponse__Output {
  bodies: Map<string, Doc>
}

function decorate(push: WatchResponse__Output): Push {
  const bodies = new Map<string, Doc>()
  for (const resource of push.resources) {
    bodies.set(`${resource.kind}/${resource.namespace}/${resource.name}`, JSON.parse(resource.json) as Doc)
  }
  return { ...push, bodies }
}

/**
 * One Watch stream. Pushes queue up; nextPush() takes the next one, noPush() checks none
 * arrives within a window; ack()/nack() answer a push.
 */
export class WatchStream {
  readonly pushes: Push[] = []
  private waiters: (() => void)[] = []
  readonly stream: grpc.ClientDuplexStream<WatchRequest, WatchResponse__Output>
  /** Resolves with the final status of the stream. */
  readonly ended: Promise<grpc.StatusObject>
  endedStatus: grpc.StatusObject | undefined
  private readonly client: grpc.Client

  constructor(address: string, tokenValue: string | undefined, client?: grpc.Client) {
    this.client = client ?? new (DiscoveryClient())(address, grpc.credentials.createInsecure())
    const metadata = tokenValue === undefined ? new grpc.Metadata() : tokenMetadata(tokenValue)
    this.stream = (this.client as unknown as { Watch(metadata: grpc.Metadata): grpc.ClientDuplexStream<WatchRequest, WatchResponse__Output> }).Watch(metadata)
    this.stream.on('data', (push: WatchResponse__Output) => {
      this.pushes.push(decorate(push))
      this.wake()
    })
    this.ended = new Promise((resolve) => {
      this.stream.on('status', (status: grpc.StatusObject) => {
        this.endedStatus = status
        this.wake()
        resolve(status)
      })
    })
    this.stream.on('error', () => undefined) // the status event carries it
  }

  hello(hello: Hello): this {
    this.stream.write({ hello: { proxyId: 'proxy-1', buildVersion: '0.1.0-test', ...hello } })
    return this
  }

  async nextPush(timeoutMs = 5_000): Promise<Push> {
    const deadline = Date.now() + timeoutMs
    while (this.pushes.length === 0) {
      if (this.endedStatus !== undefined) {
        throw new Error(`stream ended (${this.endedStatus.code}: ${this.endedStatus.details}) while waiting for a push`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no push within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.pushes.shift() as Push
  }

  /** Resolves when no push arrived within `ms` (fails the test otherwise). */
  async noPush(ms = 400): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms))
    if (this.pushes.length > 0) {
      throw new Error(`unexpected push version ${this.pushes[0]?.version} with ${this.pushes[0]?.resources.map((r) => r.name).join(', ')}`)
    }
  }

  ack(push: Push): void {
    this.stream.write({ ack: { version: push.version, nonce: push.nonce } })
  }

  nack(push: Push, error: string): void {
    this.stream.write({ nack: { version: push.version, nonce: push.nonce, error } })
  }

  close(): void {
    this.stream.cancel()
    this.client.close()
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}

export function names(push: Push): string[] {
  return push.resources.map((resource) => `${resource.kind}/${resource.namespace}/${resource.name}`).sort()
}

export function endpointAddresses(push: Push, serviceName: string, namespace = 'default'): string[] {
  const body = push.bodies.get(`Service/${namespace}/${serviceName}`)
  if (body === undefined) throw new Error(`push has no Service ${namespace}/${serviceName}`)
  return (body.endpoints as { address: string }[]).map((endpoint) => endpoint.address)
}

export function endpoint(port: number, extra: Partial<WorkloadEndpoint> = {}): WorkloadEndpoint {
  return { address: '127.0.0.1', port, protocol: 'http1', ...extra }
}

export function registryCall<Response>(harness: Harness, method: string, request: unknown, tokenValue?: string): Promise<Response> {
  return call(harness.registry, method, request, tokenValue === undefined ? new grpc.Metadata() : tokenMetadata(tokenValue))
}
