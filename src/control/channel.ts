// One gRPC channel from a proxy to its control plane, shared by the Discovery stream and
// the Registry calls, with the options that make a dead peer noticed and a returning one
// found quickly. Every call carries the join token.

import * as grpc from '@grpc/grpc-js'

import { DEFAULT_BACKOFF_BASE_MS, DEFAULT_BACKOFF_CAP_MS, type BackoffOptions } from './backoff.js'
import {
  DiscoveryClient,
  IdentityClient,
  RegistryClient,
  tokenMetadata,
  type DiscoveryClientType,
  type IdentityClientType,
  type RegistryClientType,
} from './proto.js'

/**
 * A ping every 10 s on an otherwise quiet connection, and 5 s to answer it: a control
 * plane that vanished without closing the connection (host lost, cable pulled, a NAT
 * forgetting the flow) is noticed within about 15 s instead of at the next TCP timeout,
 * which can be many minutes. The Watch stream is always open, so pings never run without
 * a call (no need for keepalive_permit_without_calls, which strict servers punish).
 */
export const KEEPALIVE_TIME_MS = 10_000
export const KEEPALIVE_TIMEOUT_MS = 5_000

export interface ControlPlaneChannelOptions {
  /** `HOST:PORT` as the user gave it (IPv6 in brackets). */
  target: string
  token: string
  /** The reconnect schedule; the channel's own connection backoff follows the same bounds. */
  backoff?: BackoffOptions
}

export class ControlPlaneChannel {
  readonly discovery: DiscoveryClientType
  readonly registry: RegistryClientType
  readonly identity: IdentityClientType
  private readonly token: string

  constructor(options: ControlPlaneChannelOptions) {
    this.token = options.token
    const baseMs = options.backoff?.baseMs ?? DEFAULT_BACKOFF_BASE_MS
    const capMs = options.backoff?.capMs ?? Math.max(DEFAULT_BACKOFF_CAP_MS, baseMs)
    const channelOptions: grpc.ChannelOptions = {
      'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
      'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
      // grpc-js keeps its own connection backoff (1 s growing to 120 s by default) under
      // ours; while it waits, every call fails at once, so a proxy would reconnect on the
      // channel's schedule, not on its own. Give it the same bounds.
      'grpc.initial_reconnect_backoff_ms': Math.round(baseMs),
      'grpc.max_reconnect_backoff_ms': Math.round(capMs),
      // Pushes carry whole resource sets; the default 4 MB would cap a large mesh.
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }
    const Discovery = DiscoveryClient()
    const Registry = RegistryClient()
    this.discovery = new Discovery(options.target, grpc.credentials.createInsecure(), channelOptions)
    this.registry = new Registry(options.target, grpc.credentials.createInsecure(), {
      ...channelOptions,
      channelOverride: this.discovery.getChannel(),
    })
    const Identity = IdentityClient()
    this.identity = new Identity(options.target, grpc.credentials.createInsecure(), {
      ...channelOptions,
      channelOverride: this.discovery.getChannel(),
    })
  }

  /** Fresh metadata per call (grpc-js may keep a reference to what it was given). */
  metadata(): grpc.Metadata {
    return tokenMetadata(this.token)
  }

  /** A deadline `ms` from now, for unary calls. */
  static deadline(ms: number): Date {
    return new Date(Date.now() + ms)
  }

  close(): void {
    this.identity.close()
    this.registry.close()
    this.discovery.close()
  }
}

/** `connect ECONNREFUSED 127.0.0.1:7443 (UNAVAILABLE)`: one line, status name last. */
export function describeGrpcError(err: unknown): string {
  const e = err as Partial<grpc.ServiceError> | undefined
  if (e && typeof e.code === 'number') {
    return describeStatus(e.code, e.details ?? e.message ?? '')
  }
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n', 1)[0] ?? ''
}

export function describeStatus(code: grpc.status, details: string): string {
  const name = grpc.status[code] ?? `status ${code}`
  // grpc-js appends the time of the last connection error; the log line has its own.
  let text = (details.split('\n', 1)[0] ?? '').replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)$/, '')
  text = text.replace(/^No connection established\. Last error: (?:Error: )?/, '')
  return text === '' ? name : `${text} (${name})`
}
