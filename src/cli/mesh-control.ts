// `mesh-control`: a thin shell over MeshControl. Parses flags, starts the server, says
// where it listens and what it holds in one line on stderr, and stops cleanly on
// SIGTERM/SIGINT. Failures are one line `mesh-control: <reason>`: exit 2 for usage, 1 for
// anything at run time (port in use, unusable data dir, corrupt store).

import { isLoopbackAddress } from '../config/address.js'
import { formatDuration, parseDuration, parseHostPort } from '../config/index.js'
import type { MeshControl } from '../controlplane/index.js'
import { DEFAULT_CERT_TTL_MS, MAX_CERT_TTL_MS, MIN_CERT_TTL_MS } from '../controlplane/identity/limits.js'
import {
  EXIT_RUNTIME,
  flagValue,
  hasFlag,
  packageVersion,
  quietGrpcLogs,
  reporter,
  runFromCommandLine as runEntry,
  scanArgs,
  treatAsUserError,
  UsageError,
  type FlagSpec,
} from './common.js'

const COMMAND = 'mesh-control'
export const DEFAULT_DATA_DIR = './.mesh-control'
const MIN_LEASE_TTL_MS = 100
const MAX_LEASE_TTL_MS = 24 * 3_600_000

export const MESH_CONTROL_USAGE = `Usage: mesh-control [options]

Runs the mesh's control plane: stores Services, routes and policies (applied with
meshctl), registers proxies' endpoints under leases, health-checks endpoints, pushes
to each connected proxy what its traffic can reach, and signs the proxies' workload
certificates (SPIFFE ids) as the mesh's certificate authority. gRPC on one address.

Options:
      --listen HOST:PORT        gRPC listen address (default 127.0.0.1:7443; port 0 picks one)
      --data-dir DIR            where state lives (default ${DEFAULT_DATA_DIR}); survives restarts
      --store file|etcd         the store: file (default, in --data-dir); etcd is not
                                available in this version
      --etcd-endpoints URL,...  etcd endpoints, with --store etcd
      --trust-domain DOMAIN     the mesh's SPIFFE trust domain (default mesh.local)
      --ca-cert FILE            sign with this CA certificate (PEM; may be followed by its
                                issuers) instead of the data dir's own root; with --ca-key
      --ca-key FILE             the CA's private key (PKCS#8 PEM), with --ca-cert
      --trust-bundle FILE       more roots for the trust bundle (PEM), e.g. the next or the
                                previous root during a rotation; repeatable
      --cert-ttl DURATION       life of workload certificates (default ${formatDuration(DEFAULT_CERT_TTL_MS)}, at least
                                ${formatDuration(MIN_CERT_TTL_MS)}); proxies renew at about 70 % of it
      --mtls-namespaces NS,...  scoped mTLS: only workloads in these namespaces get mTLS
                                on permissive ports (strict ports always do); the others
                                are reached in plaintext. Default: every namespace
      --lease-ttl DURATION      how long a registered endpoint lives without a heartbeat
                                (default 10s; proxies heartbeat every third of it)
  -h, --help                    show this help
  -V, --version                 show the version

Without --ca-cert, the first start creates a root (ECDSA P-256, 10 years) in
DIR/ca/ (directory mode 0700, key mode 0600) and later starts reuse it.
Create a join token per workload with: meshctl token create --name SERVICE
Signals: SIGTERM/SIGINT stop the server and exit 0 (a second one exits at once).
`

export type ControlCommand =
  | { kind: 'help' }
  | { kind: 'version' }
  | {
      kind: 'run'
      listen?: string
      dataDir: string
      trustDomain?: string
      leaseTtlMs?: number
      caCertFile?: string
      caKeyFile?: string
      trustBundleFiles: string[]
      certTtlMs?: number
      mtlsNamespaces?: string[]
    }

const FLAGS = {
  listen: { names: ['--listen'], value: true },
  dataDir: { names: ['--data-dir'], value: true },
  store: { names: ['--store'], value: true },
  etcdEndpoints: { names: ['--etcd-endpoints'], value: true },
  trustDomain: { names: ['--trust-domain'], value: true },
  leaseTtl: { names: ['--lease-ttl'], value: true },
  caCert: { names: ['--ca-cert'], value: true },
  caKey: { names: ['--ca-key'], value: true },
  trustBundle: { names: ['--trust-bundle'], value: true, repeatable: true },
  certTtl: { names: ['--cert-ttl'], value: true },
  mtlsNamespaces: { names: ['--mtls-namespaces'], value: true },
  help: { names: ['-h', '--help'], value: false },
  version: { names: ['-V', '--version'], value: false },
} satisfies Record<string, FlagSpec>

/** A namespace: a DNS label, as the resource model has it. */
const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/

/** SPIFFE trust domain characters (lower case letters, digits, `.`, `-`, `_`). */
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/

export function parseControlArgs(argv: readonly string[]): ControlCommand {
  const args = scanArgs(argv, Object.values(FLAGS), 'mesh-control --help')
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[0])}`)
  if (hasFlag(args, '-h')) return { kind: 'help' }
  if (hasFlag(args, '-V')) return { kind: 'version' }

  const listen = flagValue(args, '--listen')
  if (listen !== undefined) {
    try {
      parseHostPort(listen, { allowPortZero: true })
    } catch (err) {
      throw new UsageError(`--listen: ${(err as Error).message}`)
    }
  }
  const dataDir = flagValue(args, '--data-dir') ?? DEFAULT_DATA_DIR
  if (dataDir === '') throw new UsageError('--data-dir needs a directory')

  const store = flagValue(args, '--store') ?? 'file'
  if (store === 'etcd') throw new UsageError('--store etcd: the etcd store is not available in this version (use --store file)')
  if (store !== 'file') throw new UsageError(`--store: expected file or etcd, got ${JSON.stringify(store)}`)
  if (hasFlag(args, '--etcd-endpoints')) throw new UsageError('--etcd-endpoints is only used with --store etcd')

  const trustDomain = flagValue(args, '--trust-domain')
  if (trustDomain !== undefined && !TRUST_DOMAIN.test(trustDomain)) {
    throw new UsageError(
      `--trust-domain: expected a trust domain of lower case letters, digits, ".", "-" and "_" (e.g. mesh.local), got ${JSON.stringify(trustDomain)}`,
    )
  }

  let leaseTtlMs: number | undefined
  const leaseTtl = flagValue(args, '--lease-ttl')
  if (leaseTtl !== undefined) {
    try {
      leaseTtlMs = parseDuration(leaseTtl)
    } catch {
      leaseTtlMs = Number.NaN
    }
    if (!(leaseTtlMs >= MIN_LEASE_TTL_MS && leaseTtlMs <= MAX_LEASE_TTL_MS)) {
      throw new UsageError(
        `--lease-ttl: expected a duration from ${formatDuration(MIN_LEASE_TTL_MS)} to ${formatDuration(MAX_LEASE_TTL_MS)} like 10s or 1m, got ${JSON.stringify(leaseTtl)}`,
      )
    }
  }

  const caCertFile = flagValue(args, '--ca-cert')
  const caKeyFile = flagValue(args, '--ca-key')
  if (caCertFile === '' || caKeyFile === '') throw new UsageError(`${caCertFile === '' ? '--ca-cert' : '--ca-key'} needs a file`)
  if ((caCertFile === undefined) !== (caKeyFile === undefined)) {
    throw new UsageError(caCertFile === undefined ? '--ca-key needs --ca-cert' : '--ca-cert needs --ca-key')
  }
  const trustBundleFiles = args.flags.get('--trust-bundle') ?? []
  if (trustBundleFiles.includes('')) throw new UsageError('--trust-bundle needs a file')

  let certTtlMs: number | undefined
  const certTtl = flagValue(args, '--cert-ttl')
  if (certTtl !== undefined) {
    try {
      certTtlMs = parseDuration(certTtl)
    } catch {
      certTtlMs = Number.NaN
    }
    if (!(certTtlMs >= MIN_CERT_TTL_MS && certTtlMs <= MAX_CERT_TTL_MS)) {
      throw new UsageError(
        `--cert-ttl: expected a duration from ${formatDuration(MIN_CERT_TTL_MS)} to ${formatDuration(MAX_CERT_TTL_MS)} like 24h or 30m, got ${JSON.stringify(certTtl)}`,
      )
    }
  }
  let mtlsNamespaces: string[] | undefined
  const namespaces = flagValue(args, '--mtls-namespaces')
  if (namespaces !== undefined) {
    mtlsNamespaces = namespaces.split(',').map((ns) => ns.trim())
    const bad = mtlsNamespaces.find((ns) => !NAMESPACE.test(ns))
    if (bad !== undefined) {
      throw new UsageError(`--mtls-namespaces: expected namespaces separated by commas (lower-case DNS labels), got ${JSON.stringify(bad)}`)
    }
  }
  return { kind: 'run', listen, dataDir, trustDomain, leaseTtlMs, caCertFile, caKeyFile, trustBundleFiles, certTtlMs, mtlsNamespaces }
}

/** A warning when the unauthenticated Admin API is reachable beyond this host. */
export function adminExposureWarning(address: string): string | undefined {
  if (isLoopbackAddress(parseHostPort(address, { allowPortZero: true }).host)) return undefined
  return `warning: the Admin API (meshctl) is not authenticated in this version; anyone who can reach ${address} can change the mesh`
}

async function run(command: Extract<ControlCommand, { kind: 'run' }>): Promise<number> {
  const { say, fail } = reporter(COMMAND)
  // Signals are taken over before the start, so a stop request during it is not lost.
  let control: MeshControl | undefined
  let stopSignal: NodeJS.Signals | undefined
  let finish: (status: number) => void = () => {}
  const finished = new Promise<number>((resolve) => (finish = resolve))

  const stop = (running: MeshControl, signal: NodeJS.Signals) => {
    say(`${signal}: stopping`)
    running.close().then(
      () => finish(0),
      (err: unknown) => finish(fail(err)),
    )
  }
  const onStop = (signal: NodeJS.Signals) => {
    if (stopSignal !== undefined) {
      say(`${signal} again: exiting at once`)
      process.exit(EXIT_RUNTIME)
    }
    stopSignal = signal
    if (control) stop(control, signal)
  }
  process.on('SIGTERM', onStop)
  process.on('SIGINT', onStop)

  const { MeshControl, MeshControlError } = await import('../controlplane/index.js')
  treatAsUserError(MeshControlError)
  quietGrpcLogs(await import('@grpc/grpc-js'))
  control = await MeshControl.start({
    listen: command.listen,
    dataDir: command.dataDir,
    trustDomain: command.trustDomain,
    leaseTtlMs: command.leaseTtlMs,
    caCertFile: command.caCertFile,
    caKeyFile: command.caKeyFile,
    trustBundleFiles: command.trustBundleFiles,
    certTtlMs: command.certTtlMs,
    mtlsNamespaces: command.mtlsNamespaces,
    logger: say,
  })
  // MeshControl itself logs where it serves and what it restored (through `say`).
  const exposure = adminExposureWarning(control.address)
  if (exposure !== undefined) say(exposure)

  if (stopSignal !== undefined) stop(control, stopSignal)
  return finished
}

/** Runs the command line and returns the exit status; never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  const { fail } = reporter(COMMAND)
  try {
    const command = parseControlArgs(argv)
    switch (command.kind) {
      case 'help':
        process.stdout.write(MESH_CONTROL_USAGE)
        return 0
      case 'version':
        process.stdout.write(`mesh-control ${packageVersion()}\n`)
        return 0
      case 'run':
        return await run(command)
    }
  } catch (err) {
    return fail(err)
  }
}

/** The `bin/mesh-control.js` entry. */
export function runFromCommandLine(): void {
  runEntry(COMMAND, main)
}
