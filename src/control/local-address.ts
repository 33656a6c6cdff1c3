// The address a workload is reachable at, as the control plane sees it: the local end of
// a TCP connection to the control plane is the interface the kernel routes that way,
// which is the right one on multi-homed hosts. grpc-js does not expose its sockets, so a
// short plain TCP connection is opened just to read it.

import net from 'node:net'

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) -> `10.0.0.1`. */
export function unmapIPv4(address: string): string {
  const match = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  return match?.[1] ?? address
}

/**
 * Connects to host:port, reads the socket's local address and closes the connection.
 * Rejects with a one-line reason when it cannot connect within `timeoutMs`.
 */
export function localAddressToward(host: string, port: number, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`cannot connect to ${host}:${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      const local = socket.localAddress
      socket.destroy()
      if (local === undefined || local === '') reject(new Error(`no local address for the connection to ${host}:${port}`))
      else resolve(unmapIPv4(local))
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      socket.destroy()
      reject(new Error(`cannot connect to ${host}:${port}: ${err.code ?? err.message}`))
    })
  })
}
