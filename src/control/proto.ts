/**
 * The one place that loads the mesh.v1 wire contract (proto/mesh/v1/*.proto). Servers
 * and clients on both sides take their service definitions and client constructors from
 * here, so every process decodes the same messages into the same JS shapes.
 *
 * Loader options, chosen once (the generated types in ./generated are produced with
 * the same ones by `npm run generate:proto`; change both together):
 * - keepCase: false: fields are camelCase in JS (`proxyId`, `lastAckedVersion`), the
 *   same convention as the resource model and the rest of the TS code.
 * - longs: String: uint64 versions arrive as decimal strings. Number would silently
 *   lose precision past 2^53; Long objects would leak a dependency into every caller.
 *   Compare with {@link compareVersions}, never with `<` on strings.
 * - enums: String: enum values are their names (`APPLY_ACTION_CREATED`), readable in
 *   logs and in `meshctl -o json`.
 * - defaults: true: absent scalars decode as their proto3 defaults ('' / 0 / false /
 *   '0'), repeated fields as [], maps as {}, so handlers never test for undefined;
 *   absent message fields decode as null.
 * - oneofs: true: a oneof's name holds the name of the field that is set
 *   (`WatchRequest.requestType === 'ack'`), which makes the switch exhaustive.
 * - bytes are not used by the contract (JSON travels as `string`), so no option.
 * google.protobuf.Duration / Timestamp are resolved from protobufjs's bundled
 * well-known types; they decode as `{ seconds: string, nanos: number }` (seconds is an
 * int64); convert with the helpers below.
 */
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import type { ProtoGrpcType as AdminProto } from './generated/admin.js'
import type { ProtoGrpcType as DiscoveryProto } from './generated/discovery.js'
import type { ProtoGrpcType as IdentityProto } from './generated/identity.js'
import type { ProtoGrpcType as RegistryProto } from './generated/registry.js'
import type { Duration, Duration__Output } from './generated/google/protobuf/Duration.js'
import type { Timestamp, Timestamp__Output } from './generated/google/protobuf/Timestamp.js'

/**
 * proto/ at the package root: `src/control` under vitest, `dist/control` once compiled;
 * both are two levels below the root, and "proto" ships in the npm package's files.
 */
export const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto')

/** Every file of the contract, relative to {@link PROTO_ROOT} (imports resolve there). */
export const PROTO_FILES = [
  'mesh/v1/resource.proto',
  'mesh/v1/registry.proto',
  'mesh/v1/discovery.proto',
  'mesh/v1/admin.proto',
  'mesh/v1/identity.proto',
] as const

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
}

/**
 * Metadata key carrying the workload's join token on Registry, Discovery and Identity calls, as
 * `Bearer <token>` (see registry.proto). Tokens never travel inside messages.
 */
export const TOKEN_METADATA_KEY = 'authorization'

/** The loaded `mesh.v1` package: service client constructors (with `.service`) and message types. */
export type MeshV1 = AdminProto['mesh']['v1'] &
  DiscoveryProto['mesh']['v1'] &
  RegistryProto['mesh']['v1'] &
  IdentityProto['mesh']['v1']

let loaded: MeshV1 | undefined

/**
 * Loads and caches the contract. Synchronous: it runs once at start-up, and a missing
 * or broken proto directory is a packaging error that must stop the process early.
 */
export function meshV1(): MeshV1 {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync([...PROTO_FILES], LOADER_OPTIONS)
    const root = grpc.loadPackageDefinition(definition) as unknown as AdminProto & DiscoveryProto & RegistryProto & IdentityProto
    loaded = root.mesh.v1
  }
  return loaded
}

/** Service definitions, for `server.addService(definition, handlers)`. */
export const discoveryService = () => meshV1().Discovery.service
export const registryService = () => meshV1().Registry.service
export const adminService = () => meshV1().Admin.service
export const identityService = () => meshV1().Identity.service

/** Client constructors: `new (DiscoveryClient())(address, credentials)`. */
export const DiscoveryClient = () => meshV1().Discovery
export const RegistryClient = () => meshV1().Registry
export const AdminClient = () => meshV1().Admin
export const IdentityClient = () => meshV1().Identity

/** Bearer-token metadata for Registry, Discovery and Identity calls. */
export function tokenMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata()
  metadata.set(TOKEN_METADATA_KEY, `Bearer ${token}`)
  return metadata
}

/** The token from a call's metadata, or undefined when absent or not a bearer token. */
export function tokenFromMetadata(metadata: grpc.Metadata): string | undefined {
  const [value] = metadata.get(TOKEN_METADATA_KEY)
  if (typeof value !== 'string') return undefined
  const match = /^Bearer\s+(\S+)$/i.exec(value.trim())
  return match?.[1]
}

/** Orders two uint64 versions as decoded (decimal strings): negative, zero or positive. */
export function compareVersions(a: string | number, b: string | number): number {
  const x = BigInt(a)
  const y = BigInt(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/**
 * The first 12 hex digits of an authority id (identity.proto, CertifyResponse.authority_id)
 * for log lines and tables, as git shortens commit hashes; `(none)` for an empty one.
 */
export function shortAuthorityId(authorityId: string): string {
  return authorityId === '' ? '(none)' : authorityId.slice(0, 12)
}

/** Milliseconds (non-negative) as a google.protobuf.Duration. */
export function durationFromMs(ms: number): Duration & Duration__Output {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`duration must be a non-negative number of ms, got ${ms}`)
  let seconds = Math.floor(ms / 1000)
  let nanos = Math.round((ms - seconds * 1000) * 1_000_000)
  if (nanos >= 1_000_000_000) {
    seconds += 1
    nanos -= 1_000_000_000
  }
  return { seconds: String(seconds), nanos }
}

/** A decoded google.protobuf.Duration as milliseconds; an unset duration is 0. */
export function durationToMs(duration: Duration__Output | null | undefined): number {
  if (duration == null) return 0
  return Number(duration.seconds) * 1000 + duration.nanos / 1_000_000
}

/** A Date as a google.protobuf.Timestamp (millisecond precision, as Date has). */
export function timestampFromDate(date: Date): Timestamp & Timestamp__Output {
  const ms = date.getTime()
  if (!Number.isFinite(ms)) throw new RangeError('timestamp from an invalid Date')
  const seconds = Math.floor(ms / 1000)
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 }
}

/** A decoded google.protobuf.Timestamp as a Date; unset is undefined, not the epoch. */
export function timestampToDate(timestamp: Timestamp__Output | null | undefined): Date | undefined {
  if (timestamp == null) return undefined
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000))
}

export type { AdminHandlers, AdminClient as AdminClientType } from './generated/mesh/v1/Admin.js'
export type { DiscoveryHandlers, DiscoveryClient as DiscoveryClientType } from './generated/mesh/v1/Discovery.js'
export type { RegistryHandlers, RegistryClient as RegistryClientType } from './generated/mesh/v1/Registry.js'
export type { IdentityHandlers, IdentityClient as IdentityClientType } from './generated/mesh/v1/Identity.js'
export type { Duration, Duration__Output, Timestamp, Timestamp__Output }
export type { Resource, Resource__Output } from './generated/mesh/v1/Resource.js'
export type { ResourceKey, ResourceKey__Output } from './generated/mesh/v1/ResourceKey.js'
export type { WorkloadEndpoint, WorkloadEndpoint__Output } from './generated/mesh/v1/WorkloadEndpoint.js'
export type { WatchRequest, WatchRequest__Output } from './generated/mesh/v1/WatchRequest.js'
export type { WatchResponse, WatchResponse__Output } from './generated/mesh/v1/WatchResponse.js'
export type { Hello, Hello__Output } from './generated/mesh/v1/Hello.js'
export type { Ack, Ack__Output } from './generated/mesh/v1/Ack.js'
export type { Nack, Nack__Output } from './generated/mesh/v1/Nack.js'
export type { RegisterRequest, RegisterRequest__Output } from './generated/mesh/v1/RegisterRequest.js'
export type { RegisterResponse, RegisterResponse__Output } from './generated/mesh/v1/RegisterResponse.js'
export type { HeartbeatRequest, HeartbeatRequest__Output } from './generated/mesh/v1/HeartbeatRequest.js'
export type { HeartbeatResponse, HeartbeatResponse__Output } from './generated/mesh/v1/HeartbeatResponse.js'
export type { DeregisterRequest, DeregisterRequest__Output } from './generated/mesh/v1/DeregisterRequest.js'
export type { DeregisterResponse, DeregisterResponse__Output } from './generated/mesh/v1/DeregisterResponse.js'
export type { ApplyDocument, ApplyDocument__Output } from './generated/mesh/v1/ApplyDocument.js'
export type { ApplyRequest, ApplyRequest__Output } from './generated/mesh/v1/ApplyRequest.js'
export type { ApplyResponse, ApplyResponse__Output } from './generated/mesh/v1/ApplyResponse.js'
export type { ApplyResult, ApplyResult__Output } from './generated/mesh/v1/ApplyResult.js'
export type { ApplyAction, ApplyAction__Output } from './generated/mesh/v1/ApplyAction.js'
export type { GetRequest, GetRequest__Output } from './generated/mesh/v1/GetRequest.js'
export type { GetResponse, GetResponse__Output } from './generated/mesh/v1/GetResponse.js'
export type { DeleteRequest, DeleteRequest__Output } from './generated/mesh/v1/DeleteRequest.js'
export type { DeleteResponse, DeleteResponse__Output } from './generated/mesh/v1/DeleteResponse.js'
export type { StatusRequest, StatusRequest__Output } from './generated/mesh/v1/StatusRequest.js'
export type { StatusResponse, StatusResponse__Output } from './generated/mesh/v1/StatusResponse.js'
export type { StoreStatus, StoreStatus__Output } from './generated/mesh/v1/StoreStatus.js'
export type {
  CertificateAuthorityStatus,
  CertificateAuthorityStatus__Output,
} from './generated/mesh/v1/CertificateAuthorityStatus.js'
export type { ProxyStatus, ProxyStatus__Output } from './generated/mesh/v1/ProxyStatus.js'
export type { ReplyState, ReplyState__Output } from './generated/mesh/v1/ReplyState.js'
export type { CreateTokenRequest, CreateTokenRequest__Output } from './generated/mesh/v1/CreateTokenRequest.js'
export type { CreateTokenResponse, CreateTokenResponse__Output } from './generated/mesh/v1/CreateTokenResponse.js'
export type { CertifyRequest, CertifyRequest__Output } from './generated/mesh/v1/CertifyRequest.js'
export type { CertifyResponse, CertifyResponse__Output } from './generated/mesh/v1/CertifyResponse.js'
export type { GetTrustBundleRequest, GetTrustBundleRequest__Output } from './generated/mesh/v1/GetTrustBundleRequest.js'
export type { GetTrustBundleResponse, GetTrustBundleResponse__Output } from './generated/mesh/v1/GetTrustBundleResponse.js'
