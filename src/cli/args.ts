// Command-line parsing for mesh-proxy. Hand-written rather than util.parseArgs so that every
// mistake gets one short line naming the flag, in the CLI's own words.

import { isIP } from 'node:net'

import { parseDuration } from '../config/index.js'
import { parseHostPort } from '../proxy/address.js'
import { DNS_LABEL_EXPECTED, isDnsLabel, parseWantedService } from '../proxy/control-plane-options.js'

/** A mistake in how the command was called: reported in one line, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Connected mode's flags, checked. */
export interface ConnectedFlags {
  /** `--control-plane HOST:PORT`. */
  address: string
  name: string
  namespace: string
  token: string
  advertiseAddress?: string
  /** `--services a,b.ns`, as given (MeshProxy resolves namespaces). */
  services: string[]
}

export type ProxyCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'run'
      /** Standalone: the resource file. Connected: optional, the local Proxy resource. */
      configFile?: string
      controlPlane?: ConnectedFlags
      adminListen?: string
      workerThreads?: number
      drainTimeoutMs?: number
      watch: boolean
    }

/** Where connected mode reads the join token when --token is not given. */
export const TOKEN_ENV = 'MESH_TOKEN'

export const MESH_PROXY_USAGE = `Usage: mesh-proxy --config FILE [options]
       mesh-proxy --control-plane HOST:PORT --name SERVICE [--namespace NS] --token TOKEN
                  [--config FILE] [--advertise-address IP] [--services LIST] [options]

Runs the mesh data plane for one workload.

Standalone mode: FILE (YAML or JSON, one or many documents) holds a Proxy resource and
any Service, HTTPRoute, TCPRoute and AuthorizationPolicy resources. The file is re-read
on SIGHUP and whenever it changes; a bad new file is rejected and the config in force
stays.

Connected mode: Services, routes and policies come from mesh-control over gRPC; each
push is validated like a file and acknowledged, or refused (NACK) with the error while
the config in force stays. The inbound ports are registered under SERVICE with a lease
kept alive by heartbeats and withdrawn on shutdown. FILE, if given, holds only this
proxy's Proxy resource (ports, timeouts; its name and namespace must be SERVICE and NS);
without it: outbound 127.0.0.1:4140, admin 127.0.0.1:4191, no inbound. /ready answers
200 from the first applied push on, also while the control plane is away (the last
config keeps serving; the proxy reconnects with backoff).

Options:
  -c, --config FILE            the resource file (required in standalone mode)
      --admin HOST:PORT|off    admin listener (/live /ready /metrics /config);
                               overrides the Proxy's admin.listen (default 127.0.0.1:4191)
      --workers N              data-plane worker threads; overrides Proxy workerThreads
      --drain-timeout DURATION how long SIGTERM/SIGINT waits for in-flight requests,
                               e.g. 500ms, 10s, 1m; overrides Proxy drainTimeout (default 10s)
      --no-watch               do not reload when the file changes (SIGHUP still does)
  -h, --help                   show this help
  -V, --version                show the package and engine versions

Connected-mode options:
      --control-plane HOST:PORT  mesh-control's gRPC address (e.g. 127.0.0.1:7443)
      --name SERVICE             the workload's service name (a DNS label)
      --namespace NS             its namespace (default "default")
      --token TOKEN              join token from \`meshctl token create\`; better, set the
                                 ${TOKEN_ENV} environment variable instead, which keeps it
                                 out of the process list
      --advertise-address IP     the address registered for the inbound ports (default:
                                 the local address of a connection to the control plane)
      --services LIST            the Services this workload calls, comma-separated NAME or
                                 NAME.NAMESPACE (default: every Service in the mesh)

Signals: SIGHUP reloads the file; SIGTERM/SIGINT drain and exit 0 (a second one exits at
once); in connected mode the endpoints are deregistered before the drain.
`

const CONNECTED_ONLY_FLAGS = ['--name', '--namespace', '--token', '--advertise-address', '--services'] as const

/**
 * Parses mesh-proxy's command line; `env` supplies MESH_TOKEN when --token is absent.
 * Throws UsageError (one line) on any mistake.
 */
export function parseProxyArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ProxyCommand {
  let configFile: string | undefined
  let adminListen: string | undefined
  let workerThreads: number | undefined
  let drainTimeoutMs: number | undefined
  let watch = true
  let help = false
  let version = false
  let controlPlane: string | undefined
  let name: string | undefined
  let namespace: string | undefined
  let token: string | undefined
  let advertiseAddress: string | undefined
  let services: string[] | undefined

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      if (i + 1 < argv.length) throw new UsageError(`unexpected argument ${JSON.stringify(argv[i + 1])}`)
      break
    }
    if (!arg.startsWith('-') || arg === '-') throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`)

    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const inlineValue = eq === -1 ? undefined : arg.slice(eq + 1)
    const value = (): string => {
      if (inlineValue !== undefined) return inlineValue
      const next = argv[i + 1]
      if (next === undefined || (next.startsWith('-') && next !== '-')) throw new UsageError(`${flag} needs a value`)
      i++
      return next
    }
    const noValue = (): void => {
      if (inlineValue !== undefined) throw new UsageError(`${flag} takes no value`)
    }

    switch (flag) {
      case '-c':
      case '--config':
        configFile = value()
        if (configFile === '') throw new UsageError(`${flag} needs a file name`)
        break
      case '--admin': {
        adminListen = value()
        if (adminListen !== 'off' && parseHostPort(adminListen) === null) {
          throw new UsageError(`--admin: expected HOST:PORT or off, got ${JSON.stringify(adminListen)}`)
        }
        break
      }
      case '--workers': {
        const text = value()
        const n = Number(text)
        if (!/^\d+$/.test(text) || n < 1 || n > 1024) {
          throw new UsageError(`--workers: expected a whole number from 1 to 1024, got ${JSON.stringify(text)}`)
        }
        workerThreads = n
        break
      }
      case '--drain-timeout': {
        const text = value()
        try {
          drainTimeoutMs = parseDuration(text)
        } catch {
          throw new UsageError(`--drain-timeout: expected a duration like 500ms, 10s or 1m, got ${JSON.stringify(text)}`)
        }
        break
      }
      case '--no-watch':
        noValue()
        watch = false
        break
      case '-h':
      case '--help':
        noValue()
        help = true
        break
      case '-V':
      case '--version':
        noValue()
        version = true
        break
      case '--control-plane': {
        controlPlane = value()
        const parsed = parseHostPort(controlPlane)
        if (parsed === null || parsed.port === 0) {
          throw new UsageError(`--control-plane: expected HOST:PORT, got ${JSON.stringify(controlPlane)}`)
        }
        break
      }
      case '--name':
        name = value()
        if (!isDnsLabel(name)) throw new UsageError(`--name: expected ${DNS_LABEL_EXPECTED}, got ${JSON.stringify(name)}`)
        break
      case '--namespace':
        namespace = value()
        if (!isDnsLabel(namespace)) {
          throw new UsageError(`--namespace: expected ${DNS_LABEL_EXPECTED}, got ${JSON.stringify(namespace)}`)
        }
        break
      case '--token':
        token = value()
        if (token.trim() === '' || /\s/.test(token)) throw new UsageError('--token: expected a join token (non-empty, no spaces)')
        break
      case '--advertise-address':
        advertiseAddress = value()
        if (isIP(advertiseAddress) === 0) {
          throw new UsageError(`--advertise-address: expected an IP address, got ${JSON.stringify(advertiseAddress)}`)
        }
        break
      case '--services': {
        const text = value()
        services = text.split(',').map((s) => s.trim())
        for (const service of services) {
          if (parseWantedService(service) === null) {
            throw new UsageError(`--services: expected NAME or NAME.NAMESPACE (DNS labels), comma-separated, got ${JSON.stringify(service)}`)
          }
        }
        break
      }
      default:
        throw new UsageError(`unknown flag ${flag} (see mesh-proxy --help)`)
    }
  }

  if (help) return { kind: 'help' }
  if (version) return { kind: 'version' }

  const common = { adminListen, workerThreads, drainTimeoutMs, watch }
  if (controlPlane === undefined) {
    const given = { '--name': name, '--namespace': namespace, '--token': token, '--advertise-address': advertiseAddress, '--services': services }
    const stray = CONNECTED_ONLY_FLAGS.find((f) => given[f] !== undefined)
    if (stray !== undefined) throw new UsageError(`${stray} needs --control-plane HOST:PORT (connected mode)`)
    if (configFile === undefined) {
      throw new UsageError('missing --config FILE or --control-plane HOST:PORT (see mesh-proxy --help)')
    }
    return { kind: 'run', configFile, ...common }
  }

  if (name === undefined) throw new UsageError('connected mode needs --name SERVICE (the workload\'s service name)')
  if (token === undefined) {
    const fromEnv = env[TOKEN_ENV]
    if (fromEnv === undefined || fromEnv.trim() === '') {
      throw new UsageError(`connected mode needs a join token: --token TOKEN or the ${TOKEN_ENV} environment variable`)
    }
    token = fromEnv.trim()
    if (/\s/.test(token)) throw new UsageError(`${TOKEN_ENV}: expected a join token (no spaces)`)
  }
  return {
    kind: 'run',
    ...(configFile === undefined ? {} : { configFile }),
    controlPlane: {
      address: controlPlane,
      name,
      namespace: namespace ?? 'default',
      token,
      ...(advertiseAddress === undefined ? {} : { advertiseAddress }),
      services: services ?? [],
    },
    ...common,
  }
}
