// `mesh-proxy`: a thin shell over MeshProxy. Parses flags, starts the proxy, reports in one
// line per fact on stderr, maps signals to reload and drain. Every failure ends as one line
// `mesh-proxy: <reason>` and a non-zero status: 2 for usage, 1 for anything at run time.

import { ConfigError, formatDuration } from '../config/index.js'
import type { MeshProxy } from '../proxy/index.js'
import { packageVersion } from '../version.js'
import { MESH_PROXY_USAGE, parseProxyArgs, UsageError, type ProxyCommand } from './args.js'

const EXIT_RUNTIME = 1
const EXIT_USAGE = 2

function say(line: string): void {
  process.stderr.write(`mesh-proxy: ${line}\n`)
}

/** Reports an error in one line; the stack only for internal errors and only with MESH_DEBUG=1. */
function reportFailure(err: unknown): number {
  if (err instanceof UsageError) {
    say(err.message)
    return EXIT_USAGE
  }
  if (err instanceof ConfigError) {
    say(err.message)
    return EXIT_RUNTIME
  }
  const message = err instanceof Error ? err.message : String(err)
  say(`internal error: ${message.split('\n', 1)[0]}${process.env.MESH_DEBUG === '1' ? '' : ' (set MESH_DEBUG=1 for details)'}`)
  if (process.env.MESH_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
  return EXIT_RUNTIME
}

/**
 * The start line: `config version 1 from mesh.yaml; outbound 127.0.0.1:4140, inbound ...`,
 * or in connected mode `waiting for control plane 127.0.0.1:7443 as default/web; ...`.
 */
function describeStart(proxy: MeshProxy, command: Extract<ProxyCommand, { kind: 'run' }>): string {
  const parts: string[] = []
  const listeners = proxy.listenerDetails()
  // Outbound first: it is the address the workload's clients are pointed at.
  for (const kind of ['outbound', 'inbound', 'tcp'] as const) {
    for (const l of listeners.filter((x) => x.kind === kind)) {
      parts.push(l.target === undefined ? `${kind} ${l.bound}` : `${kind} ${l.bound} -> ${l.target}`)
    }
  }
  parts.push(proxy.adminAddress === undefined ? 'admin off' : `admin ${proxy.adminAddress}`)
  const connected = command.controlPlane
  if (connected) {
    const local = command.configFile === undefined ? 'default Proxy' : `Proxy from ${command.configFile}`
    return (
      `waiting for control plane ${proxy.controlPlaneAddress ?? connected.address} as ${connected.namespace}/${connected.name} ` +
      `(proxy id ${proxy.proxyId ?? '?'}); ${local}: ${parts.join(', ')}`
    )
  }
  return `config version ${proxy.version} from ${command.configFile ?? '?'}; ${parts.join(', ')}`
}

async function run(command: Extract<ProxyCommand, { kind: 'run' }>): Promise<number> {
  // Signals are taken over before the (possibly slow) start, so a SIGHUP from a deploy tool
  // cannot kill the process by its default action, and a stop request is not lost.
  let proxy: MeshProxy | undefined
  let stopSignal: NodeJS.Signals | undefined
  let reloadPending = false
  let finish: (status: number) => void = () => {}
  const finished = new Promise<number>((resolve) => (finish = resolve))

  const drain = (running: MeshProxy, signal: NodeJS.Signals) => {
    const deregister = running.controlPlaneAddress === undefined ? '' : 'deregistering, then '
    say(`${signal}: ${deregister}draining (up to ${formatDuration(running.drainTimeoutMs)})`)
    running.close().then(
      () => {
        say('stopped')
        finish(0)
      },
      (err: unknown) => finish(reportFailure(err)),
    )
  }
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      say(`${signal} again: exiting without waiting for the drain`)
      process.exit(EXIT_RUNTIME)
    }
    stopSignal = signal
    if (proxy) drain(proxy, signal)
  }
  const reload = (running: MeshProxy) => {
    void running.reload().then((result) => {
      // A file reload reports itself; with no file there is nothing to say but that.
      if (!result.ok && command.configFile === undefined) say(`SIGHUP: ${result.error}`)
    })
  }
  const onHangup = () => {
    if (stopSignal !== undefined) return
    if (proxy) reload(proxy)
    else reloadPending = true
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)
  process.on('SIGHUP', onHangup)

  // Loaded here, not at the top, so --help works even where the native addon does not load.
  const { MeshProxy } = await import('../proxy/index.js')
  const connected = command.controlPlane
  proxy = await MeshProxy.start({
    configFile: command.configFile,
    ...(connected === undefined
      ? {}
      : {
          controlPlane: {
            address: connected.address,
            name: connected.name,
            namespace: connected.namespace,
            token: connected.token,
            advertiseAddress: connected.advertiseAddress,
            services: connected.services,
          },
        }),
    adminListen: command.adminListen,
    workerThreads: command.workerThreads,
    drainTimeoutMs: command.drainTimeoutMs,
    watch: command.watch,
  }).catch((err: unknown) => {
    // The embedding API names its option; on the command line it is the flag.
    if (err instanceof ConfigError && err.message.startsWith('adminListen: ')) {
      throw new ConfigError([`--admin: ${err.message.slice('adminListen: '.length)}`])
    }
    throw err
  })
  say(describeStart(proxy, command))

  if (stopSignal !== undefined) drain(proxy, stopSignal)
  else if (reloadPending) reload(proxy)
  return finished
}

/** Runs the command line and returns the exit status; never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const command = parseProxyArgs(argv)
    switch (command.kind) {
      case 'help':
        process.stdout.write(MESH_PROXY_USAGE)
        return 0
      case 'version': {
        const { engineVersion } = await import('../../native/index.js')
        process.stdout.write(`mesh-proxy ${packageVersion()} (engine ${engineVersion()})\n`)
        return 0
      }
      case 'run':
        return await run(command)
    }
  } catch (err) {
    return reportFailure(err)
  }
}

/** The `bin/mesh-proxy.js` entry: runs main and exits with its status. */
export function runFromCommandLine(): void {
  const fail = (err: unknown) => process.exit(reportFailure(err))
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)
  main(process.argv.slice(2)).then((status) => process.exit(status), fail)
}
