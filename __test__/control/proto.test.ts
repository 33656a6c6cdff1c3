import { existsSync } from 'node:fs'
import path from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  PROTO_FILES,
  identityService,
  PROTO_ROOT,
  RegistryClient,
  DiscoveryClient,
  adminService,
  compareVersions,
  discoveryService,
  durationFromMs,
  durationToMs,
  meshV1,
  registryService,
  timestampFromDate,
  timestampToDate,
  tokenFromMetadata,
  tokenMetadata,
  type DiscoveryClientType,
  type RegisterRequest__Output,
  type RegistryClientType,
  type RegisterResponse__Output,
  type HeartbeatResponse__Output,
  type WatchRequest,
  type WatchRequest__Output,
  type WatchResponse,
  type WatchResponse__Output,
} from '../../src/control/proto.js'

describe('proto loading', () => {
  it('finds every proto file under the package root', () => {
    for (const file of PROTO_FILES) expect(existsSync(path.join(PROTO_ROOT, file)), file).toBe(true)
  })

  it('declares the services with their methods and streaming flags', () => {
    const shape = (service: grpc.ServiceDefinition) =>
      Object.fromEntries(
        Object.entries(service).map(([name, method]) => [name, [method.path, method.requestStream, method.responseStream]]),
      )
    expect(shape(discoveryService())).toEqual({ Watch: ['/mesh.v1.Discovery/Watch', true, true] })
    expect(shape(registryService())).toEqual({
      Register: ['/mesh.v1.Registry/Register', false, false],
      Heartbeat: ['/mesh.v1.Registry/Heartbeat', false, false],
      Deregister: ['/mesh.v1.Registry/Deregister', false, false],
    })
    expect(shape(adminService())).toEqual({
      Apply: ['/mesh.v1.Admin/Apply', false, false],
      Get: ['/mesh.v1.Admin/Get', false, false],
      Delete: ['/mesh.v1.Admin/Delete', false, false],
      Status: ['/mesh.v1.Admin/Status', false, false],
      CreateToken: ['/mesh.v1.Admin/CreateToken', false, false],
    })
    expect(shape(identityService())).toEqual({
      Certify: ['/mesh.v1.Identity/Certify', false, false],
      GetTrustBundle: ['/mesh.v1.Identity/GetTrustBundle', false, false],
    })
  })

  it('decodes with the chosen options: defaults filled, longs as strings, enums by name', () => {
    const status = adminService().Status
    const decoded = status.responseDeserialize(
      status.responseSerialize({
        version: '18446744073709551615',
        proxies: [{ proxyId: 'p1', lastReply: 'REPLY_STATE_NACK', error: 'bad route' }],
      }),
    )
    expect(decoded.version).toBe('18446744073709551615')
    expect(decoded.serverVersion).toBe('')
    expect(decoded.ca).toBeNull()
    expect(decoded.proxies[0]).toMatchObject({
      proxyId: 'p1',
      lastReply: 'REPLY_STATE_NACK',
      error: 'bad route',
      ackedVersion: '0',
      inSync: false,
      connectedAt: null,
    })
    const apply = adminService().Apply
    const result = apply.responseDeserialize(
      apply.responseSerialize({
        results: [{ key: { kind: 'Service', namespace: 'default', name: 'web' }, action: 'APPLY_ACTION_CREATED', resourceVersion: '7' }],
      }),
    )
    expect(result.results).toEqual([
      { key: { kind: 'Service', namespace: 'default', name: 'web' }, action: 'APPLY_ACTION_CREATED', resourceVersion: '7' },
    ])
    expect(result.errors).toEqual([])
  })

  it('converts durations, timestamps and versions', () => {
    expect(durationFromMs(1500)).toEqual({ seconds: '1', nanos: 500_000_000 })
    expect(durationToMs(durationFromMs(30_250))).toBe(30_250)
    expect(durationToMs(null)).toBe(0)
    expect(() => durationFromMs(-1)).toThrow(RangeError)
    const when = new Date('2026-11-22T10:11:12.345Z')
    expect(timestampFromDate(when)).toEqual({ seconds: '1795342272', nanos: 345_000_000 })
    expect(timestampToDate(timestampFromDate(when))).toEqual(when)
    expect(timestampToDate(null)).toBeUndefined()
    expect(compareVersions('9', '10')).toBe(-1)
    expect(compareVersions('18446744073709551615', '18446744073709551614')).toBe(1)
    expect(compareVersions('5', 5)).toBe(0)
    expect(tokenFromMetadata(tokenMetadata('s3cr3t'))).toBe('s3cr3t')
    expect(tokenFromMetadata(new grpc.Metadata())).toBeUndefined()
  })
})

describe('round trip over a real grpc-js server on loopback', () => {
  const server = new grpc.Server()
  let address = ''
  let discovery: DiscoveryClientType
  let registry: RegistryClientType

  const serverSaw: { watch: WatchRequest__Output[]; token?: string; register: RegisterRequest__Output[] } = {
    watch: [],
    register: [],
  }
  const leases = new Map<string, number>()

  const serviceJson = JSON.stringify({
    apiVersion: 'mesh/v1',
    kind: 'Service',
    name: 'orders',
    namespace: 'shop',
    port: 80,
    protocol: 'http',
    endpoints: [{ address: '127.0.0.1:18080', weight: 1, labels: { zone: 'a' } }],
    loadBalancer: { type: 'ewma' },
  })
  const pushes: WatchResponse[] = [
    {
      version: '1',
      nonce: 'n-1',
      full: true,
      resources: [{ kind: 'Service', namespace: 'shop', name: 'orders', resourceVersion: '1', json: serviceJson }],
      authorityId: '3fa9'.repeat(16),
    },
    {
      version: '18446744073709551615',
      nonce: 'n-2',
      full: false,
      resources: [],
      removed: [{ kind: 'HTTPRoute', namespace: 'shop', name: 'canary' }],
      authorityId: '3fa9'.repeat(16),
    },
  ]

  beforeAll(async () => {
    server.addService(discoveryService(), {
      Watch: (call: grpc.ServerDuplexStream<WatchRequest__Output, WatchResponse>) => {
        serverSaw.token = tokenFromMetadata(call.metadata)
        call.on('data', (request: WatchRequest__Output) => {
          serverSaw.watch.push(request)
          if (request.requestType === 'hello') call.write(pushes[0] as WatchResponse)
          else if (request.requestType === 'ack') call.write(pushes[1] as WatchResponse)
          else call.end()
        })
      },
    })
    server.addService(registryService(), {
      Register: (
        call: grpc.ServerUnaryCall<RegisterRequest__Output, unknown>,
        callback: grpc.sendUnaryData<object>,
      ) => {
        serverSaw.register.push(call.request)
        leases.set('lease-1', 15_000)
        callback(null, { leaseId: 'lease-1', ttl: durationFromMs(15_000) })
      },
      Heartbeat: (call: grpc.ServerUnaryCall<{ leaseId: string }, unknown>, callback: grpc.sendUnaryData<object>) => {
        const ttl = leases.get(call.request.leaseId)
        if (ttl === undefined) callback({ code: grpc.status.NOT_FOUND, details: `lease ${call.request.leaseId} expired` })
        else callback(null, { ttl: durationFromMs(ttl) })
      },
      Deregister: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback(null, {}),
    })
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    )
    address = `127.0.0.1:${port}`
    const Discovery = DiscoveryClient()
    const Registry = RegistryClient()
    discovery = new Discovery(address, grpc.credentials.createInsecure())
    registry = new Registry(address, grpc.credentials.createInsecure())
  })

  afterAll(async () => {
    discovery?.close()
    registry?.close()
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()))
  })

  it('Watch: hello, full push, ACK, incremental push, NACK with the error', async () => {
    const received: WatchResponse__Output[] = []
    const hello: WatchRequest = {
      hello: {
        service: 'orders',
        namespace: 'shop',
        proxyId: 'host-1234-abcd',
        endpoints: [{ address: '127.0.0.1', port: 8080, protocol: 'http1', labels: { zone: 'a' }, weight: 2, mtls: 'strict' }],
        buildVersion: '0.1.0',
        wants: [{ kind: 'Service', namespace: 'shop', name: 'payments' }],
        lastAckedVersion: '41',
        authorityId: '0a1b'.repeat(16),
      },
    }
    const nackError = 'control-plane: document 1 (HTTPRoute "canary"): rules[0].backendRefs[0].name: no Service "nope"'
    await new Promise<void>((resolve, reject) => {
      const call = discovery.Watch(tokenMetadata('join-token'))
      call.on('data', (response: WatchResponse__Output) => {
        received.push(response)
        if (received.length === 1) call.write({ ack: { version: response.version, nonce: response.nonce } })
        else call.write({ nack: { version: response.version, nonce: response.nonce, error: nackError } })
      })
      call.on('error', reject)
      call.on('end', () => {
        call.end()
        resolve()
      })
      call.write(hello)
    })

    expect(serverSaw.token).toBe('join-token')
    expect(serverSaw.watch).toEqual([
      { requestType: 'hello', hello: hello.hello },
      { requestType: 'ack', ack: { version: '1', nonce: 'n-1' } },
      { requestType: 'nack', nack: { version: '18446744073709551615', nonce: 'n-2', error: nackError } },
    ])
    expect(received).toEqual([
      { ...pushes[0], removed: [] },
      pushes[1],
    ])
    const body = JSON.parse(received[0]?.resources[0]?.json ?? 'null') as unknown
    expect(body).toEqual(JSON.parse(serviceJson))
  })

  it('Registry: Register returns a lease and TTL; Heartbeat renews or says NOT_FOUND', async () => {
    const register = await new Promise<RegisterResponse__Output>((resolve, reject) =>
      registry.Register(
        {
          service: 'orders',
          namespace: 'shop',
          proxyId: 'host-1234-abcd',
          endpoints: [
            { address: '127.0.0.1', port: 8080, protocol: 'http1', labels: { zone: 'a', track: 'stable' }, weight: 3 },
            { address: '::1', port: 9090, protocol: 'grpc' },
          ],
        },
        tokenMetadata('join-token'),
        (error, response) => (error || !response ? reject(error) : resolve(response)),
      ),
    )
    expect(register).toEqual({ leaseId: 'lease-1', ttl: { seconds: '15', nanos: 0 } })
    expect(durationToMs(register.ttl)).toBe(15_000)
    expect(serverSaw.register).toEqual([
      {
        service: 'orders',
        namespace: 'shop',
        proxyId: 'host-1234-abcd',
        endpoints: [
          { address: '127.0.0.1', port: 8080, protocol: 'http1', labels: { zone: 'a', track: 'stable' }, weight: 3, mtls: '' },
          { address: '::1', port: 9090, protocol: 'grpc', labels: {}, weight: 0, mtls: '' },
        ],
      },
    ])

    const heartbeat = (leaseId: string) =>
      new Promise<HeartbeatResponse__Output>((resolve, reject) =>
        registry.Heartbeat({ leaseId }, (error, response) => (error || !response ? reject(error) : resolve(response))),
      )
    expect(durationToMs((await heartbeat('lease-1')).ttl)).toBe(15_000)
    await expect(heartbeat('lease-gone')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'lease lease-gone expired',
    })
  })

  it('client constructors come from the same cached package', () => {
    expect(meshV1()).toBe(meshV1())
  })
})
