// Command-line parsing for mesh-proxy. Hand-written rather than util.parseArgs so that every
// mistake gets one short line naming the flag, in the CLI's own words.

import { parseDuration } from '../config/index.js'
import { parseHostPort } from '../proxy/address.js'

/** A mistake in how the command was called: reported in one line, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

export type ProxyCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'run'
      configFile: string
      adminListen?: string
      workerThreads?: number
      drainTimeoutMs?: number
      watch: boolean
    }

export const MESH_PROXY_USAGE = `Usage: mesh-proxy --config FILE [options]

Runs the mesh data plane for one workload in standalone mode: FILE (YAML or JSON, one
or many documents) holds a Proxy resource and any Service, HTTPRoute, TCPRoute and
AuthorizationPolicy resources. The file is re-read on SIGHUP and whenever it changes;
a bad new file is rejected and the config in force stays.

Options:
  -c, --config FILE            the resource file (required)
      --admin HOST:PORT|off    admin listener (/live /ready /metrics /config);
                               overrides the Proxy's admin.listen (default 127.0.0.1:4191)
      --workers N              data-plane worker threads; overrides Proxy workerThreads
      --drain-timeout DURATION how long SIGTERM/SIGINT waits for in-flight requests,
                               e.g. 500ms, 10s, 1m; overrides Proxy drainTimeout (default 10s)
      --no-watch               do not reload when the file changes (SIGHUP still does)
  -h, --help                   show this help
  -V, --version                show the package and engine versions

Connected mode (--control-plane HOST:PORT --name SERVICE [--namespace NS] --token TOKEN)
is not available in this version.

Signals: SIGHUP reloads the file; SIGTERM/SIGINT drain and exit 0 (a second one exits at once).
`

const CONNECTED_MODE_FLAGS = new Set(['--control-plane', '--name', '--namespace', '--token'])

export function parseProxyArgs(argv: readonly string[]): ProxyCommand {
  let configFile: string | undefined
  let adminListen: string | undefined
  let workerThreads: number | undefined
  let drainTimeoutMs: number | undefined
  let watch = true
  let help = false
  let version = false
  let connectedFlag: string | undefined

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
      default:
        if (CONNECTED_MODE_FLAGS.has(flag)) {
          // Consume its value so the rest still parses; the mode itself is refused below.
          value()
          connectedFlag ??= flag
          break
        }
        throw new UsageError(`unknown flag ${flag} (see mesh-proxy --help)`)
    }
  }

  if (help) return { kind: 'help' }
  if (version) return { kind: 'version' }
  if (connectedFlag !== undefined) {
    throw new UsageError('connected mode (--control-plane) is not available in this version')
  }
  if (configFile === undefined) throw new UsageError('missing --config FILE (see mesh-proxy --help)')
  return { kind: 'run', configFile, adminListen, workerThreads, drainTimeoutMs, watch }
}
