/**
 * Wire encoding of pushes, done once per resource instead of once per stream.
 *
 * A protobuf message is the concatenation of its encoded fields, and a repeated field
 * may be split across any number of occurrences, so a WatchResponse can be assembled as
 * `encode({version, nonce, full, removed}) + encode({resources: [r1]}) + ...`. Each
 * resource's piece is encoded once and reused by every stream that pushes it, which
 * turns a change seen by 1000 proxies into 1000 buffer concatenations rather than 1000
 * protobuf encodings of the same JSON. The Watch method's serializer is wrapped to pass
 * such prepared buffers through untouched.
 */
import type * as grpc from '@grpc/grpc-js'
import { discoveryService, type ResourceKey, type WatchResponse } from '../../control/proto.js'
import type { PushedResource } from './catalog.js'

const encodedPieces = new WeakMap<PushedResource, Buffer>()

function serializeResponse(): (value: WatchResponse) => Buffer {
  return discoveryService().Watch.responseSerialize as (value: WatchResponse) => Buffer
}

/** The `resources` field occurrence carrying `resource`, cached per (immutable) resource. */
export function encodedResource(resource: PushedResource): Buffer {
  let piece = encodedPieces.get(resource)
  if (piece === undefined) {
    piece = serializeResponse()({
      resources: [
        {
          kind: resource.kind,
          namespace: resource.namespace,
          name: resource.name,
          resourceVersion: resource.resourceVersion,
          json: resource.json,
        },
      ],
    })
    encodedPieces.set(resource, piece)
  }
  return piece
}

export interface PushHeader {
  version: string
  nonce: string
  full: boolean
  removed: readonly ResourceKey[]
  /** The server's authority id (WatchResponse.authority_id); empty or absent: not sent. */
  authorityId?: string
}

/** One encoded WatchResponse. */
export function encodePush(header: PushHeader, resources: readonly PushedResource[]): Buffer {
  const head = serializeResponse()({
    version: header.version,
    nonce: header.nonce,
    full: header.full,
    removed: [...header.removed],
    authorityId: header.authorityId ?? '',
  })
  return Buffer.concat([head, ...resources.map(encodedResource)])
}

/**
 * The Discovery service definition with a Watch serializer that sends prepared buffers
 * as they are (and still encodes plain objects, should anything write one).
 */
export function discoveryServiceForServer(): grpc.ServiceDefinition {
  const definition = discoveryService()
  const watch = definition.Watch
  const serialize = watch.responseSerialize as (value: unknown) => Buffer
  return {
    ...definition,
    Watch: { ...watch, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : serialize(value)) },
  } as grpc.ServiceDefinition
}
