/** The Registry gRPC service: leases over LeaseTable, authenticated by join tokens. */
import * as grpc from '@grpc/grpc-js'
import { durationFromMs, type RegistryHandlers } from '../../control/proto.js'
import { rpcError } from '../errors.js'
import { namespaceOrDefault, requireField, unary } from '../rpc.js'
import { checkIdentity, type JoinTokens } from '../tokens.js'
import { EndpointError, toRegisteredEndpoints } from './endpoints.js'
import type { LeaseTable } from './leases.js'

export interface RegistryServiceDeps {
  tokens: JoinTokens
  leases: LeaseTable
  /**
   * Makes the lease table durable (leases.json); resolves when written. Never rejects:
   * a failed write is logged by the owner, and the lease still works until a restart.
   */
  persist: () => Promise<void>
}

export function registryHandlers({ tokens, leases, persist }: RegistryServiceDeps): RegistryHandlers {
  const leaseOf = async (call: { metadata: grpc.Metadata }, leaseId: string) => {
    const admitted = await tokens.authenticate(call.metadata)
    requireField(leaseId, 'lease_id')
    const lease = leases.get(leaseId)
    if (lease !== undefined) checkIdentity(admitted, lease)
    return lease
  }

  return {
    Register: unary(async (request, call) => {
      const admitted = await tokens.authenticate(call.metadata)
      const identity = {
        service: requireField(request.service, 'service', 63),
        namespace: namespaceOrDefault(request.namespace),
      }
      checkIdentity(admitted, identity)
      const proxyId = requireField(request.proxyId, 'proxy_id')
      let endpoints
      try {
        endpoints = toRegisteredEndpoints(request.endpoints, { namespace: identity.namespace, name: identity.service })
      } catch (err) {
        if (err instanceof EndpointError) throw rpcError(grpc.status.INVALID_ARGUMENT, err.message)
        throw err
      }
      const lease = leases.register(identity, proxyId, endpoints)
      // Answer once the lease is durable, so a restart right after keeps it.
      await persist()
      return { leaseId: lease.id, ttl: durationFromMs(leases.ttlMs) }
    }),

    Heartbeat: unary(async (request, call) => {
      const lease = await leaseOf(call, request.leaseId)
      if (lease === undefined || leases.heartbeat(lease.id) === undefined) {
        throw rpcError(grpc.status.NOT_FOUND, `lease ${request.leaseId} not found (expired or replaced); register again`)
      }
      return { ttl: durationFromMs(leases.ttlMs) }
    }),

    Deregister: unary(async (request, call) => {
      const lease = await leaseOf(call, request.leaseId)
      if (lease !== undefined && leases.deregister(lease.id)) await persist()
      return {}
    }),
  }
}
