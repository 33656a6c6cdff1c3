// meshctl's command line: `meshctl [global flags] COMMAND [args] [flags]`, flags anywhere
// (kubectl habits). Every mistake is one UsageError line naming the flag or argument.

import { parseDuration } from '../../config/index.js'
import { parseHostPort } from '../../proxy/address.js'
import { flagValue, hasFlag, scanArgs, UsageError, type FlagSpec, type ScannedArgs } from '../common.js'
import { parseKind, type KindSelector, type MeshctlKind } from './kinds.js'

export const DEFAULT_CONTROL_PLANE = '127.0.0.1:7443'
export const DEFAULT_TIMEOUT_MS = 5_000
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const
export type OutputFormat = (typeof OUTPUT_FORMATS)[number]

/** Flags every command takes. */
export interface GlobalOptions {
  controlPlane: string
  output: OutputFormat
  /** Deadline of each call to mesh-control. */
  timeoutMs: number
}

export type MeshctlCommand =
  | { kind: 'help'; topic: HelpTopic }
  | { kind: 'version' }
  | { kind: 'apply'; file: string; options: GlobalOptions }
  | {
      kind: 'get'
      resourceKind: KindSelector
      name?: string
      /** Undefined: every namespace (`-A`). */
      namespace?: string
      options: GlobalOptions
    }
  | { kind: 'delete'; resourceKind: MeshctlKind; name: string; namespace: string; options: GlobalOptions }
  | { kind: 'check'; options: GlobalOptions }
  | { kind: 'token-create'; service: string; namespace: string; options: GlobalOptions }

export type HelpTopic = 'meshctl' | 'apply' | 'get' | 'delete' | 'check' | 'token' | 'stat' | 'tap'

const GLOBAL_FLAGS = {
  controlPlane: { names: ['--control-plane'], value: true },
  output: { names: ['-o', '--output'], value: true },
  timeout: { names: ['--timeout'], value: true },
  help: { names: ['-h', '--help'], value: false },
  version: { names: ['-V', '--version'], value: false },
} satisfies Record<string, FlagSpec>

const COMMAND_FLAGS = {
  file: { names: ['-f', '--filename'], value: true },
  namespace: { names: ['-n', '--namespace'], value: true },
  allNamespaces: { names: ['-A', '--all-namespaces'], value: false },
  name: { names: ['--name'], value: true },
} satisfies Record<string, FlagSpec>

const ALL_FLAGS: FlagSpec[] = [...Object.values(GLOBAL_FLAGS), ...Object.values(COMMAND_FLAGS)]

/** Which command flags each command accepts (global flags are accepted by all). */
const ACCEPTS: Record<Exclude<HelpTopic, 'meshctl'>, FlagSpec[]> = {
  apply: [COMMAND_FLAGS.file],
  get: [COMMAND_FLAGS.namespace, COMMAND_FLAGS.allNamespaces],
  delete: [COMMAND_FLAGS.namespace],
  check: [],
  token: [COMMAND_FLAGS.name, COMMAND_FLAGS.namespace],
  stat: [COMMAND_FLAGS.namespace],
  tap: [COMMAND_FLAGS.namespace],
}

const COMMANDS = Object.keys(ACCEPTS) as Exclude<HelpTopic, 'meshctl'>[]

export const USAGE: Record<HelpTopic, string> = {
  meshctl: `Usage: meshctl [global flags] COMMAND [args]

The operator's CLI for mesh-control.

Commands:
  apply -f FILE                 validate and store the resources of FILE, all or nothing
  get KIND [NAME]               list stored resources (KIND: service, httproute, tcproute,
                                authorizationpolicy, or all)
  delete KIND NAME              delete one stored resource
  check                         is mesh-control up, its store writable, every proxy in sync
  token create --name SERVICE   issue a join token for a workload
  stat, tap                     not available in this version

Global flags:
      --control-plane HOST:PORT  mesh-control's address (default ${DEFAULT_CONTROL_PLANE})
  -o, --output FORMAT           table (default), json or yaml
      --timeout DURATION        how long to wait for mesh-control, e.g. 2s (default 5s)
  -h, --help                    show help (meshctl COMMAND --help for a command)
  -V, --version                 show meshctl's version

Exit status: 0 success, 1 failure (refused, unreachable, check failed), 2 bad usage.
`,
  apply: `Usage: meshctl apply -f FILE [-o table|json|yaml]

Sends the resources of FILE (YAML or JSON, one or many documents; - reads stdin) to
mesh-control, which validates them with the same validator as mesh-proxy --config and
stores them all or nothing: if any document is invalid, every problem is printed and
nothing of FILE is stored. Prints one line per resource: created, configured (changed)
or unchanged. Re-applying an unchanged file changes nothing.

Flags:
  -f, --filename FILE   the resource file, or - for stdin (required)
`,
  get: `Usage: meshctl get KIND [NAME] [-n NAMESPACE | -A] [-o table|json|yaml]

Lists resources as stored in mesh-control (Services with the endpoints written in
their files, not the ones proxies registered).

KIND: service (services, svc), httproute(s), tcproute(s), authorizationpolicy
(authorizationpolicies, authz), or all. KIND/NAME is accepted too (service/orders).

Flags:
  -n, --namespace NS      the namespace (default: default)
  -A, --all-namespaces    every namespace
  -o yaml prints documents that meshctl apply -f accepts back; -o json prints one
  resource for a NAME, a list otherwise.
`,
  delete: `Usage: meshctl delete KIND NAME [-n NAMESPACE]

Deletes one stored resource. A Service that a stored route or policy still names is
not deleted: delete or change those first.

Flags:
  -n, --namespace NS   the namespace (default: default)
`,
  check: `Usage: meshctl check [-o table|json|yaml]

Checks mesh-control and its proxies, one line per check (ok or FAIL): control plane
reachable, store writable, certificate authority, proxies connected, proxies in sync
(each proxy that is not is listed with its service, id, acked and pushed versions and
its NACK error). Exits 0 when every check is ok, 1 otherwise. -o json or yaml prints
mesh-control's status instead of the check lines (the exit status is the same).
`,
  token: `Usage: meshctl token create --name SERVICE [--namespace NS] [-o table|json|yaml]

Issues a join token that admits one workload (SERVICE in NS, default namespace
"default") to the mesh: pass it to mesh-proxy --token. The token is printed once;
mesh-control keeps only its hash and cannot show it again.

Flags:
      --name SERVICE        the workload's service name (required)
  -n, --namespace NS        its namespace (default: default)
`,
  stat: `Usage: meshctl stat [SERVICE]

Golden metrics per service. Not available in this version.
`,
  tap: `Usage: meshctl tap TARGET

A live stream of requests through a proxy. Not available in this version.
`,
}

function parseGlobal(args: ScannedArgs): GlobalOptions {
  const controlPlane = flagValue(args, '--control-plane') ?? DEFAULT_CONTROL_PLANE
  const address = parseHostPort(controlPlane)
  if (address === null || address.port === 0) {
    throw new UsageError(`--control-plane: expected HOST:PORT, got ${JSON.stringify(controlPlane)}`)
  }
  const outputText = flagValue(args, '-o')
  if (outputText !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(outputText)) {
    throw new UsageError(`${args.typed.get('-o')}: expected table, json or yaml, got ${JSON.stringify(outputText)}`)
  }
  const output = (outputText ?? 'table') as OutputFormat
  let timeoutMs = DEFAULT_TIMEOUT_MS
  const timeoutText = flagValue(args, '--timeout')
  if (timeoutText !== undefined) {
    try {
      timeoutMs = parseDuration(timeoutText)
    } catch {
      timeoutMs = 0
    }
    if (timeoutMs <= 0) {
      throw new UsageError(`--timeout: expected a duration above zero like 500ms, 5s or 1m, got ${JSON.stringify(timeoutText)}`)
    }
  }
  return { controlPlane, output, timeoutMs }
}

/** Refuses command flags that the command does not take (`meshctl check -f x`). */
function checkFlagsFor(command: Exclude<HelpTopic, 'meshctl'>, args: ScannedArgs): void {
  const accepted = new Set<FlagSpec>([...Object.values(GLOBAL_FLAGS), ...ACCEPTS[command]])
  for (const spec of ALL_FLAGS) {
    const key = spec.names[0] as string
    if (!accepted.has(spec) && args.flags.has(key)) {
      throw new UsageError(`meshctl ${command} does not take ${args.typed.get(key)} (see meshctl ${command} --help)`)
    }
  }
}

function nonEmpty(args: ScannedArgs, key: string, what: string): string | undefined {
  const value = flagValue(args, key)
  if (value === '') throw new UsageError(`${args.typed.get(key)} needs ${what}`)
  return value
}

function noMoreArguments(command: string, rest: readonly string[]): void {
  if (rest.length > 0) throw new UsageError(`meshctl ${command}: unexpected argument ${JSON.stringify(rest[0])}`)
}

/** `KIND NAME`, `KIND/NAME`, or `KIND` alone when `nameRequired` is false. */
function kindAndName(
  command: 'get' | 'delete',
  rest: readonly string[],
  nameRequired: boolean,
): { resourceKind: KindSelector; name?: string } {
  const [first, second, ...more] = rest
  if (first === undefined) {
    throw new UsageError(`meshctl ${command} needs a KIND${nameRequired ? ' and a NAME' : ''} (see meshctl ${command} --help)`)
  }
  let kindText = first
  let name = second
  const slash = first.indexOf('/')
  if (slash !== -1) {
    kindText = first.slice(0, slash)
    name = first.slice(slash + 1)
    if (name === '') throw new UsageError(`meshctl ${command}: ${JSON.stringify(first)} has no name after the /`)
    noMoreArguments(command, rest.slice(1))
  } else {
    noMoreArguments(command, more)
  }
  const resourceKind = parseKind(kindText, { allowAll: command === 'get' })
  if (resourceKind === 'all' && name !== undefined) throw new UsageError(`meshctl get all takes no NAME`)
  if (name === '') throw new UsageError(`meshctl ${command}: the NAME is empty`)
  if (nameRequired && name === undefined) {
    throw new UsageError(`meshctl ${command} needs a NAME after ${JSON.stringify(kindText)} (see meshctl ${command} --help)`)
  }
  return { resourceKind, name }
}

export function parseMeshctlArgs(argv: readonly string[]): MeshctlCommand {
  const args = scanArgs(argv, ALL_FLAGS, 'meshctl --help')
  const [commandWord, ...rest] = args.positionals
  const help = hasFlag(args, '-h')

  if (commandWord === undefined) {
    if (help) return { kind: 'help', topic: 'meshctl' }
    if (hasFlag(args, '-V')) return { kind: 'version' }
    throw new UsageError('missing COMMAND (see meshctl --help)')
  }
  if (commandWord === 'help') {
    const topic = rest[0]
    if (topic === undefined) return { kind: 'help', topic: 'meshctl' }
    if (!(COMMANDS as string[]).includes(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)} (see meshctl --help)`)
    return { kind: 'help', topic: topic as HelpTopic }
  }
  if (commandWord === 'version') {
    noMoreArguments('version', rest)
    return { kind: 'version' }
  }
  if (!(COMMANDS as string[]).includes(commandWord)) {
    throw new UsageError(`unknown command ${JSON.stringify(commandWord)} (see meshctl --help)`)
  }
  const command = commandWord as Exclude<HelpTopic, 'meshctl'>
  if (help) return { kind: 'help', topic: command }
  if (hasFlag(args, '-V')) return { kind: 'version' }
  checkFlagsFor(command, args)
  const options = parseGlobal(args)

  switch (command) {
    case 'apply': {
      noMoreArguments('apply', rest)
      const file = nonEmpty(args, '-f', 'a file name (or - for stdin)')
      if (file === undefined) throw new UsageError('meshctl apply needs -f FILE (see meshctl apply --help)')
      return { kind: 'apply', file, options }
    }
    case 'get': {
      const { resourceKind, name } = kindAndName('get', rest, false)
      const namespaceFlag = nonEmpty(args, '-n', 'a namespace')
      const all = hasFlag(args, '-A')
      if (all && namespaceFlag !== undefined) {
        throw new UsageError(`${args.typed.get('-A')} and ${args.typed.get('-n')} cannot be used together`)
      }
      if (all && name !== undefined) {
        throw new UsageError(`${args.typed.get('-A')} cannot be used with a NAME: give its namespace with -n`)
      }
      return { kind: 'get', resourceKind, name, namespace: all ? undefined : (namespaceFlag ?? 'default'), options }
    }
    case 'delete': {
      const { resourceKind, name } = kindAndName('delete', rest, true)
      const namespace = nonEmpty(args, '-n', 'a namespace') ?? 'default'
      return { kind: 'delete', resourceKind: resourceKind as MeshctlKind, name: name as string, namespace, options }
    }
    case 'check':
      noMoreArguments('check', rest)
      return { kind: 'check', options }
    case 'token': {
      const [sub, ...more] = rest
      if (sub === undefined) throw new UsageError('meshctl token needs a subcommand: create (see meshctl token --help)')
      if (sub !== 'create') throw new UsageError(`meshctl token: unknown subcommand ${JSON.stringify(sub)}; expected create`)
      noMoreArguments('token create', more)
      const service = nonEmpty(args, '--name', 'a service name')
      if (service === undefined) throw new UsageError('meshctl token create needs --name SERVICE (see meshctl token --help)')
      const namespace = nonEmpty(args, '-n', 'a namespace') ?? 'default'
      return { kind: 'token-create', service, namespace, options }
    }
    case 'stat':
    case 'tap':
      throw new UsageError(`meshctl ${command} is not available in this version`)
  }
}
