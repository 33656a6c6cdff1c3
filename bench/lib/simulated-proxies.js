'use strict'
// Simulated connected proxies for bench/control-plane.js: a child process that opens
// `count` Discovery.Watch streams to mesh-control, each on its own TCP connection (a
// local subchannel pool per client, as separate proxy processes would have), ACKs
// every push like a proxy that applied it, and tells the parent when a push carrying
// a marker string arrived on each stream.
//
// Parent -> child (IPC): { type: 'start', address, token, service, namespace, count, idPrefix }
//                        { type: 'marker', marker }      report arrivals of this marker
//                        { type: 'stop' }
// Child -> parent:       { type: 'ready', streams }       every stream ACKed its first push
//                        { type: 'seen', marker, times }  arrival time (ms, wall clock) per stream
//                        { type: 'error', message }

const grpc = require('@grpc/grpc-js')
const { DiscoveryClient, tokenMetadata } = require('../../dist/control/proto.js')

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now()

const streams = []
let marker
let pendingMarker = new Map() // stream index -> arrival time for the current marker

function send(message) {
  if (process.connected) process.send(message)
}

function start({ address, token, service, namespace, count, idPrefix }) {
  const Discovery = DiscoveryClient()
  let acked = 0
  for (let i = 0; i < count; i++) {
    const client = new Discovery(address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    })
    const call = client.watch(tokenMetadata(token))
    const state = { client, call, first: true }
    streams.push(state)
    call.on('data', (push) => {
      const arrived = now()
      if (marker !== undefined && !pendingMarker.has(i) && push.resources.some((r) => r.json.includes(marker))) {
        pendingMarker.set(i, arrived)
        if (pendingMarker.size === streams.length) {
          send({ type: 'seen', marker, times: [...pendingMarker.values()] })
        }
      }
      call.write({ ack: { version: push.version, nonce: push.nonce } })
      if (state.first) {
        state.first = false
        if (++acked === count) send({ type: 'ready', streams: count })
      }
    })
    call.on('error', (err) => {
      if (err.code !== grpc.status.CANCELLED) send({ type: 'error', message: `stream ${i}: ${err.details || err.message}` })
    })
    call.write({
      hello: {
        service,
        namespace,
        proxyId: `${idPrefix}-${i}`,
        endpoints: [],
        buildVersion: 'bench',
        wants: [],
        lastAckedVersion: '0',
      },
    })
  }
}

process.on('message', (message) => {
  switch (message.type) {
    case 'start':
      start(message)
      break
    case 'marker':
      marker = message.marker
      pendingMarker = new Map()
      break
    case 'stop':
      for (const { call, client } of streams) {
        call.cancel()
        client.close()
      }
      process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0))
