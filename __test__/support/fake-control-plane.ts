/**
 * A fake mesh-control for testing the proxy's connected mode (in the spirit of
 * linkerd2-proxy's fake control plane): a real grpc-js server on 127.0.0.1 serving
 * Discovery and Registry exactly as proto/mesh/v1 specifies, scriptable from a test.
 *
 * - Discovery: every stream is recorded (its Hello, each reply). With `autoPush` (the
 *   default) a new stream gets a full push of the current state, and `publish()` pushes
 *   a new state to every open stream, keeping the one-outstanding-push rule by queueing.
 *   Tests can also push arbitrary content to a stream (`stream.push`) and await the ACK or
 *   NACK, end streams with any status, and see protocol violations the proxy committed.
 * - Registry: leases with a TTL (`leaseTtlMs`; a heartbeat after it lapsed gets NOT_FOUND),
 *   every call recorded with its time; the next calls can be made to fail with a status
 *   (`failNext`); leases can be dropped (`expireLeases`) so the next heartbeat gets NOT_FOUND.
 * - Auth: calls must carry `authorization: Bearer <token>` (UNAUTHENTICATED otherwise).
 * - Identity: a real CA (the binding's) signs the proxies' CSRs; `authority` and
 *   `trustBundlePem` can be replaced to play a CA or trust bundle rotation, and every
 *   push and certificate carries the resulting authority id, as mesh-control's do.
 * - `stop()` / `restart()` take the whole server away and bring it back on the same port.
 */
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'

import { BindingCertificateAuthority } from '../../native/index.js'

import {
  discoveryService,
  durationFromMs,
  identityService,
  timestampFromDate,
  type CertifyRequest__Output,
  registryService,
  tokenFromMetadata,
  type DeregisterRequest__Output,
  type HeartbeatRequest__Output,
  type Hello__Output,
  type RegisterRequest__Output,
  type Resource,
  type ResourceKey,
  type WatchRequest__Output,
  type WatchResponse,
} from '../../src/control/proto.js'
import { authorityIdOf } from '../../src/controlplane/identity/authority.js'
import { waitFor } from './ports.js'
import type { Doc } from './resources.js'

export type Reply = { type: 'ack'; version: string; nonce: string } | { type: 'nack'; version: string; nonce: string; error: string }

export interface PushSpec {
  /** Default true. */
  full?: boolean
  /** Resource documents (normalised or not: the proxy validates them). */
  resources?: Doc[]
  /** Raw envelopes, for malformed pushes (bad JSON, mismatched keys). */
  rawResources?: Resource[]
  removed?: ResourceKey[]
  /** Default: the fake's next version. */
  version?: string
  /** WatchResponse.authority_id; default the fake's current one. */
  authorityId?: string
}

/** A resource document as a Discovery envelope (namespace defaults to "default"). */
export function envelope(doc: Doc, resourceVersion = '1'): Resource {
  return {
    kind: String(doc.kind),
    namespace: typeof doc.namespace === 'string' ? doc.namespace : 'default',
    name: String(doc.name),
    resourceVersion,
    json: JSON.stringify(doc),
  }
}

export class FakeStream {
  hello: Hello__Output | undefined
  readonly replies: Reply[] = []
  /** Pushes sent on this stream, in order. */
  readonly sent: WatchResponse[] = []
  ended = false
  private outstanding: { nonce: string; resolve: (reply: Reply) => void } | undefined
  private readonly queue: { response: WatchResponse; resolve: (reply: Reply) => void }[] = []
  /** Rejections of the pushes not yet answered, oldest first (outstanding, then queued). */
  private rejectors: ((err: Error) => void)[] = []
  private nonceCounter = 0

  constructor(
    private readonly call: grpc.ServerDuplexStream<WatchRequest__Output, WatchResponse>,
    private readonly plane: FakeControlPlane,
    readonly token: string | undefined,
    readonly peer: string,
  ) {}

  /**
   * Sends a push (queued while another is outstanding) and resolves with its reply.
   * Rejects if the stream ends before the reply.
   */
  push(spec: PushSpec): Promise<Reply> {
    const response: WatchResponse = {
      version: spec.version ?? this.plane.nextVersion(),
      nonce: `n-${++this.nonceCounter}-${randomBytes(3).toString('hex')}`,
      full: spec.full ?? true,
      resources: [...(spec.resources ?? []).map((d) => envelope(d)), ...(spec.rawResources ?? [])],
      removed: spec.removed ?? [],
      authorityId: spec.authorityId ?? this.plane.authorityId,
    }
    return new Promise<Reply>((resolve, reject) => {
      if (this.ended) {
        reject(new Error('stream ended'))
        return
      }
      this.queue.push({ response, resolve })
      this.rejectors.push(reject)
      this.sendNext()
    })
  }

  private sendNext(): void {
    if (this.outstanding || this.ended) return
    const next = this.queue.shift()
    if (!next) return
    this.outstanding = { nonce: String(next.response.nonce), resolve: next.resolve }
    this.sent.push(next.response)
    this.call.write(next.response)
  }

  /** Called by the server for each WatchRequest after the Hello. */
  onReply(request: WatchRequest__Output): void {
    let reply: Reply
    if (request.requestType === 'ack' && request.ack) reply = { type: 'ack', ...request.ack }
    else if (request.requestType === 'nack' && request.nack) reply = { type: 'nack', ...request.nack }
    else {
      this.plane.violations.push(`second hello or empty request on a stream: ${JSON.stringify(request)}`)
      this.end(grpc.status.INVALID_ARGUMENT, 'hello only once, first')
      return
    }
    if (!this.outstanding || this.outstanding.nonce !== reply.nonce) {
      this.plane.violations.push(`reply with nonce ${reply.nonce} while ${this.outstanding?.nonce ?? 'nothing'} was outstanding`)
      this.end(grpc.status.INVALID_ARGUMENT, `unexpected nonce ${reply.nonce}`)
      return
    }
    const sent = this.sent.find((s) => s.nonce === reply.nonce)
    if (sent && String(sent.version) !== reply.version) {
      this.plane.violations.push(`reply for nonce ${reply.nonce} echoes version ${reply.version}, pushed ${String(sent.version)}`)
    }
    this.replies.push(reply)
    const { resolve } = this.outstanding
    this.outstanding = undefined
    this.rejectors.shift()
    resolve(reply)
    this.sendNext()
  }

  /** Ends the stream with a status (OK closes it cleanly). */
  end(code: grpc.status = grpc.status.OK, details = ''): void {
    if (this.ended) return
    this.markEnded()
    if (code === grpc.status.OK) this.call.end()
    else this.call.emit('error', { code, details } as grpc.ServiceError)
  }

  markEnded(): void {
    if (this.ended) return
    this.ended = true
    for (const reject of this.rejectors.splice(0)) reject(new Error('stream ended before the reply'))
    this.queue.length = 0
    this.outstanding = undefined
  }
}

export interface RegistryCall {
  method: 'Register' | 'Heartbeat' | 'Deregister'
  at: number
  token: string | undefined
  request: RegisterRequest__Output | HeartbeatRequest__Output | DeregisterRequest__Output
  /** The status code answered (0 = OK). */
  code: grpc.status
}

export interface Lease {
  leaseId: string
  request: RegisterRequest__Output
  expiresAt: number
}

export interface FakeControlPlaneOptions {
  /** Default: an ephemeral port. */
  port?: number
  /** The only token accepted; default `test-token`. */
  token?: string
  /** TTL answered by Register and Heartbeat (default 10 s). */
  leaseTtlMs?: number
  /** Push the current state to every new stream and publish() to open ones (default true). */
  autoPush?: boolean
}

export class FakeControlPlane {
  readonly token: string
  leaseTtlMs: number
  autoPush: boolean
  /** Every stream ever opened, oldest first. */
  readonly streams: FakeStream[] = []
  readonly registryCalls: RegistryCall[] = []
  readonly leases = new Map<string, Lease>()
  /** Protocol rules the proxy broke (should stay empty). */
  readonly violations: string[] = []
  /** The state auto-pushed to new streams. */
  state: Doc[] | undefined
  private version = 0n
  private server: grpc.Server | undefined
  private failures: { method: RegistryCall['method']; code: grpc.status; remaining: number }[] = []
  private leaseCounter = 0
  /** A real CA (the binding's), so proxies get real certificates; its key stays in a temp dir. */
  authority = FakeControlPlane.newAuthority()
  /** The roots sent with certificates and by GetTrustBundle; default the CA's own. */
  trustBundlePem: string | undefined
  /** Life of issued workload certificates; tests of renewal make it short. */
  certificateTtlSeconds = 3600
  /** When set, Certify answers this status (mesh-control refusing or failing). */
  certifyFailure: grpc.status | undefined
  /** Certify calls answered, oldest first: the identity and proxy id asked for and the status answered. */
  readonly certifyCalls: { service: string; namespace: string; proxyId: string; code: grpc.status }[] = []

  private constructor(
    public port: number,
    options: FakeControlPlaneOptions,
  ) {
    this.token = options.token ?? 'test-token'
    this.leaseTtlMs = options.leaseTtlMs ?? 10_000
    this.autoPush = options.autoPush ?? true
  }

  static async start(options: FakeControlPlaneOptions = {}): Promise<FakeControlPlane> {
    const plane = new FakeControlPlane(options.port ?? 0, options)
    await plane.listen()
    return plane
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  /** A new CA of trust domain mesh.local (its key in a temp dir), e.g. the next root of a rotation. */
  static newAuthority(): BindingCertificateAuthority {
    return BindingCertificateAuthority.loadOrCreate(fs.mkdtempSync(path.join(os.tmpdir(), 'fake-ca-')), 'mesh.local')
  }

  get bundlePem(): string {
    return this.trustBundlePem ?? this.authority.rootsPem
  }

  /** The authority id of the CA and bundle in use, computed as mesh-control computes it. */
  get authorityId(): string {
    return authorityIdOf(this.authority.certificatePem, this.bundlePem)
  }

  nextVersion(): string {
    this.version += 1n
    return String(this.version)
  }

  /** Sets the version counter (a control plane restored from an older backup starts lower). */
  setVersion(version: number): void {
    this.version = BigInt(version)
  }

  /** Open streams (not ended), oldest first. */
  get openStreams(): FakeStream[] {
    return this.streams.filter((s) => !s.ended)
  }

  get hellos(): Hello__Output[] {
    return this.streams.flatMap((s) => (s.hello ? [s.hello] : []))
  }

  calls(method: RegistryCall['method']): RegistryCall[] {
    return this.registryCalls.filter((c) => c.method === method)
  }

  /** Waits for a stream that has sent its Hello, beyond the first `after` streams. */
  async waitForStream(after = 0, timeoutMs = 10_000): Promise<FakeStream> {
    return waitFor(`Discovery stream #${after + 1}`, () => this.streams.slice(after).find((s) => s.hello !== undefined && !s.ended), {
      timeoutMs,
      intervalMs: 10,
    })
  }

  async waitForCall(method: RegistryCall['method'], count = 1, timeoutMs = 10_000): Promise<RegistryCall> {
    return waitFor(`${count} ${method} call(s)`, () => this.calls(method)[count - 1], { timeoutMs, intervalMs: 10 })
  }

  /** Sets the state and pushes it (full, new version) to every open stream. Resolves with their replies. */
  publish(resources: Doc[]): Promise<Reply[]> {
    this.state = resources
    const version = this.nextVersion()
    return Promise.all(this.openStreams.filter((s) => s.hello).map((s) => s.push({ full: true, resources, version })))
  }

  /** The next `count` calls of `method` fail with `code`. */
  failNext(method: RegistryCall['method'], code: grpc.status, count = 1): void {
    this.failures.push({ method, code, remaining: count })
  }

  /** Forgets every lease, as an expiry would: the next heartbeat gets NOT_FOUND. */
  expireLeases(): void {
    this.leases.clear()
  }

  /** Ends every open stream with `code`. */
  dropStreams(code: grpc.status = grpc.status.UNAVAILABLE, details = 'dropped by the test'): void {
    for (const stream of this.openStreams) stream.end(code, details)
  }

  /** Takes the server away at once (connections reset, streams fail). Leases are kept. */
  async stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const stream of this.openStreams) stream.markEnded()
    server?.forceShutdown()
  }

  /** Serves again on the same port. */
  async restart(): Promise<void> {
    if (this.server) throw new Error('fake control plane is already running')
    await this.listen()
  }

  async close(): Promise<void> {
    await this.stop()
  }

  private authorize(metadata: grpc.Metadata): { token: string | undefined; ok: boolean } {
    const token = tokenFromMetadata(metadata)
    return { token, ok: token === this.token }
  }

  private takeFailure(method: RegistryCall['method']): grpc.status | undefined {
    const failure = this.failures.find((f) => f.method === method && f.remaining > 0)
    if (!failure) return undefined
    failure.remaining--
    return failure.code
  }

  private async listen(): Promise<void> {
    const server = new grpc.Server()
    server.addService(discoveryService(), {
      Watch: (call: grpc.ServerDuplexStream<WatchRequest__Output, WatchResponse>) => {
        const { token, ok } = this.authorize(call.metadata)
        const stream = new FakeStream(call, this, token, call.getPeer())
        this.streams.push(stream)
        if (!ok) {
          stream.end(grpc.status.UNAUTHENTICATED, 'missing or unknown join token')
          return
        }
        call.on('data', (request: WatchRequest__Output) => {
          if (stream.ended) return
          if (stream.hello === undefined) {
            if (request.requestType !== 'hello' || !request.hello) {
              this.violations.push(`first message was ${request.requestType ?? 'empty'}, not hello`)
              stream.end(grpc.status.INVALID_ARGUMENT, 'the first message must be a hello')
              return
            }
            stream.hello = request.hello
            if (this.autoPush && this.state !== undefined) {
              // A state set directly (not published) still gets a real version.
              if (this.version === 0n) this.nextVersion()
              stream.push({ full: true, resources: this.state, version: String(this.version) }).catch(() => {})
            }
            return
          }
          stream.onReply(request)
        })
        call.on('end', () => {
          stream.markEnded()
          call.end()
        })
        call.on('error', () => stream.markEnded())
        call.on('cancelled', () => stream.markEnded())
      },
    })
    server.addService(registryService(), {
      Register: (call: grpc.ServerUnaryCall<RegisterRequest__Output, unknown>, callback: grpc.sendUnaryData<object>) =>
        this.answer('Register', call, callback, () => {
          // Same proxy id: the new lease replaces (invalidates) the old one.
          for (const [id, lease] of this.leases) {
            if (lease.request.proxyId === call.request.proxyId) this.leases.delete(id)
          }
          const leaseId = `lease-${++this.leaseCounter}-${randomBytes(4).toString('hex')}`
          this.leases.set(leaseId, { leaseId, request: call.request, expiresAt: Date.now() + this.leaseTtlMs })
          return { leaseId, ttl: durationFromMs(this.leaseTtlMs) }
        }),
      Heartbeat: (call: grpc.ServerUnaryCall<HeartbeatRequest__Output, unknown>, callback: grpc.sendUnaryData<object>) =>
        this.answer('Heartbeat', call, callback, () => {
          const lease = this.leases.get(call.request.leaseId)
          // Lapsed without a heartbeat within the TTL: gone, as in the real registry.
          if (lease && lease.expiresAt < Date.now()) this.leases.delete(lease.leaseId)
          if (!lease || lease.expiresAt < Date.now()) {
            return { code: grpc.status.NOT_FOUND, details: `lease ${call.request.leaseId} expired or replaced` }
          }
          lease.expiresAt = Date.now() + this.leaseTtlMs
          return { ttl: durationFromMs(this.leaseTtlMs) }
        }),
      Deregister: (call: grpc.ServerUnaryCall<DeregisterRequest__Output, unknown>, callback: grpc.sendUnaryData<object>) =>
        this.answer('Deregister', call, callback, () => {
          this.leases.delete(call.request.leaseId)
          return {}
        }),
    })
    server.addService(identityService(), {
      GetTrustBundle: (_call: grpc.ServerUnaryCall<object, unknown>, callback: grpc.sendUnaryData<object>) =>
        callback(null, { trustDomain: this.authority.trustDomain, trustBundlePem: this.bundlePem }),
      Certify: (call: grpc.ServerUnaryCall<CertifyRequest__Output, unknown>, callback: grpc.sendUnaryData<object>) => {
        const { service, namespace, proxyId } = call.request
        const fail = (code: grpc.status, details: string) => {
          this.certifyCalls.push({ service, namespace, proxyId, code })
          callback({ code, details })
        }
        if (!this.authorize(call.metadata).ok) return fail(grpc.status.UNAUTHENTICATED, 'missing or unknown join token')
        if (this.certifyFailure !== undefined) return fail(this.certifyFailure, 'certificate authority unavailable (test)')
        try {
          const spiffeId = `spiffe://${this.authority.trustDomain}/ns/${namespace || 'default'}/sa/${service}`
          const issued = this.authority.sign(call.request.csrPem, spiffeId, this.certificateTtlSeconds)
          this.certifyCalls.push({ service, namespace, proxyId, code: grpc.status.OK })
          callback(null, {
            certificateChainPem: issued.certificateChainPem,
            trustBundlePem: this.bundlePem,
            notBefore: timestampFromDate(new Date(issued.notBefore)),
            notAfter: timestampFromDate(new Date(issued.notAfter)),
            spiffeId,
            authorityId: this.authorityId,
          })
        } catch (err) {
          fail(grpc.status.INVALID_ARGUMENT, (err as Error).message)
        }
      },
    })
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    )
    this.port = port
    this.server = server
  }

  private answer(
    method: RegistryCall['method'],
    call: grpc.ServerUnaryCall<RegistryCall['request'], unknown>,
    callback: grpc.sendUnaryData<object>,
    handle: () => object | { code: grpc.status; details: string },
  ): void {
    const { token, ok } = this.authorize(call.metadata)
    const record = (code: grpc.status) => this.registryCalls.push({ method, at: Date.now(), token, request: call.request, code })
    if (!ok) {
      record(grpc.status.UNAUTHENTICATED)
      callback({ code: grpc.status.UNAUTHENTICATED, details: 'missing or unknown join token' })
      return
    }
    const failure = this.takeFailure(method)
    if (failure !== undefined) {
      record(failure)
      callback({ code: failure, details: `${grpc.status[failure]} scripted by the test` })
      return
    }
    const result = handle()
    if ('code' in result && typeof result.code === 'number') {
      record(result.code)
      callback(result as grpc.ServiceError)
      return
    }
    record(grpc.status.OK)
    callback(null, result)
  }
}
