// What every mesh-core command shares: the package version, one-line failure reporting
// with the exit statuses of the product contract (2 usage, 1 run time), a small flag
// scanner, and the entry point that flushes output before exiting.

import { ConfigError, firstLine } from '../config/index.js'
import { packageVersion } from '../version.js'
import { UsageError } from './args.js'

export { UsageError }

export const EXIT_RUNTIME = 1
export const EXIT_USAGE = 2

/**
 * A failure at run time that the user can act on (an unreachable control plane, a
 * refused request): `lines` are printed as they are, each prefixed with the command
 * name, and the command exits with `exitCode` (1 unless said otherwise).
 */
export class CommandError extends Error {
  override name = 'CommandError'
  readonly lines: readonly string[]

  constructor(
    lines: string | readonly string[],
    readonly exitCode: number = EXIT_RUNTIME,
  ) {
    const all = typeof lines === 'string' ? [lines] : lines
    super(all[0] ?? 'failed')
    this.lines = all
  }
}

/**
 * Error classes of other modules that carry a message meant for the user (a store's or
 * server's one-line reason). Registered by the command that loads those modules, so
 * this file need not import them (and --help does not load them).
 */
const userErrorClasses: (new (...args: never[]) => Error)[] = []

export function treatAsUserError(errorClass: new (...args: never[]) => Error): void {
  if (!userErrorClasses.includes(errorClass)) userErrorClasses.push(errorClass)
}

export { packageVersion }

export interface Reporter {
  /** Writes `<command>: <line>` to stderr. */
  say(line: string): void
  /** Reports `err` in one line (several for a ConfigError or CommandError) and returns the exit status. */
  fail(err: unknown): number
}

export function reporter(command: string, write: (text: string) => void = (text) => process.stderr.write(text)): Reporter {
  const say = (line: string) => write(`${command}: ${line}\n`)
  const debug = process.env.MESH_DEBUG === '1'
  return {
    say,
    fail(err: unknown): number {
      if (err instanceof UsageError) {
        say(err.message)
        return EXIT_USAGE
      }
      if (err instanceof CommandError) {
        for (const line of err.lines) say(line)
        return err.exitCode
      }
      if (err instanceof ConfigError) {
        for (const line of err.errors) say(line)
        return EXIT_RUNTIME
      }
      if (userErrorClasses.some((errorClass) => err instanceof errorClass)) {
        say(firstLine((err as Error).message))
        return EXIT_RUNTIME
      }
      const message = err instanceof Error ? err.message : String(err)
      say(`internal error: ${firstLine(message)}${debug ? '' : ' (set MESH_DEBUG=1 for details)'}`)
      if (debug && err instanceof Error && err.stack) write(`${err.stack}\n`)
      return EXIT_RUNTIME
    },
  }
}

export { firstLine }

/**
 * The `bin/<command>.js` entry: runs `main`, waits until stdout has taken everything
 * written (a pipe to `head` or a file must not lose the end of a listing), then exits
 * with main's status. Uncaught errors end as one line too.
 */
export function runFromCommandLine(command: string, main: (argv: readonly string[]) => Promise<number>): void {
  const { fail } = reporter(command)
  const exit = (status: number) => {
    process.stdout.write('', () => process.exit(status))
  }
  const crash = (err: unknown) => process.exit(fail(err))
  process.on('uncaughtException', crash)
  process.on('unhandledRejection', crash)
  // A closed stdout (`meshctl get svc | head -1`) is not an error worth a line.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0)
    crash(err)
  })
  main(process.argv.slice(2)).then(exit, crash)
}

/**
 * grpc-js logs its own errors to stderr ("No address added out of total 1 resolved" next
 * to our "address in use"); the commands report every failure themselves, in one line.
 * Its log stays available with MESH_DEBUG=1, and GRPC_VERBOSITY set by the operator wins.
 */
export function quietGrpcLogs(grpc: typeof import('@grpc/grpc-js')): void {
  if (process.env.MESH_DEBUG === '1' || process.env.GRPC_VERBOSITY !== undefined) return
  grpc.setLogVerbosity(grpc.logVerbosity.NONE)
}

// ---------------------------------------------------------------- flags

/** One flag a command accepts. */
export interface FlagSpec {
  /** Every spelling, e.g. ['-o', '--output']. */
  names: readonly string[]
  /** True when the flag takes a value (`--listen HOST:PORT`, `--listen=HOST:PORT`, `-oyaml`). */
  value: boolean
  /** Allowed more than once (values accumulate); otherwise a repeat is a usage error. */
  repeatable?: boolean
}

export interface ScannedArgs {
  /** Non-flag arguments in order (everything after `--` included). */
  positionals: string[]
  /** By the flag's first spelling: its values in order (`''` for flags without value). */
  flags: Map<string, string[]>
  /** By the flag's first spelling: the spelling the user typed, for messages. */
  typed: Map<string, string>
}

/**
 * Splits a command line into flags and positionals. Flags may appear anywhere (before or
 * after positionals, as kubectl allows). `-` alone is a positional (stdin). A value that
 * looks like a flag is refused rather than taken (`--listen --data-dir x` is a mistake).
 * `help` names what to read in the unknown-flag message.
 */
export function scanArgs(argv: readonly string[], specs: readonly FlagSpec[], help: string): ScannedArgs {
  const bySpelling = new Map<string, FlagSpec>()
  for (const spec of specs) for (const name of spec.names) bySpelling.set(name, spec)
  const positionals: string[] = []
  const flags = new Map<string, string[]>()
  const typed = new Map<string, string>()

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    let flag: string
    let inline: string | undefined
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      flag = eq === -1 ? arg : arg.slice(0, eq)
      inline = eq === -1 ? undefined : arg.slice(eq + 1)
    } else {
      // `-ojson`, `-nshop`: a short flag with its value attached.
      flag = arg.slice(0, 2)
      inline = arg.length > 2 ? arg.slice(2) : undefined
      if (inline?.startsWith('=')) inline = inline.slice(1)
    }
    const spec = bySpelling.get(flag)
    if (spec === undefined) throw new UsageError(`unknown flag ${flag} (see ${help})`)
    let value = ''
    if (spec.value) {
      if (inline !== undefined) {
        value = inline
      } else {
        const next = argv[i + 1]
        if (next === undefined || (next.startsWith('-') && next !== '-')) throw new UsageError(`${flag} needs a value`)
        value = next
        i++
      }
    } else if (inline !== undefined) {
      throw new UsageError(`${flag} takes no value`)
    }
    const key = spec.names[0] as string
    const values = flags.get(key)
    if (values === undefined) {
      flags.set(key, [value])
      typed.set(key, flag)
    } else if (spec.repeatable) {
      values.push(value)
    } else {
      throw new UsageError(`${flag} given more than once`)
    }
  }
  return { positionals, flags, typed }
}

/** The single value of a flag, or undefined when it was not given. */
export function flagValue(args: ScannedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0]
}

export function hasFlag(args: ScannedArgs, name: string): boolean {
  return args.flags.has(name)
}
