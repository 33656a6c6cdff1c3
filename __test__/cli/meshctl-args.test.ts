/** meshctl's and mesh-control's command-line parsing, in process. */
import { describe, expect, it } from 'vitest'

import { UsageError } from '../../src/cli/common.js'
import { adminExposureWarning, parseControlArgs } from '../../src/cli/mesh-control.js'
import { DEFAULT_CONTROL_PLANE, parseMeshctlArgs, USAGE, type MeshctlCommand } from '../../src/cli/meshctl/args.js'
import { parseKind } from '../../src/cli/meshctl/kinds.js'

const defaults = { controlPlane: DEFAULT_CONTROL_PLANE, output: 'table', timeoutMs: 5_000 }

function usageError(run: () => unknown): string {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return (err as Error).message
  }
  throw new Error('expected a UsageError')
}

const meshctl = (...argv: string[]): MeshctlCommand => parseMeshctlArgs(argv)

describe('meshctl arguments', () => {
  it('parses each command with the global defaults', () => {
    expect(meshctl('apply', '-f', 'mesh.yaml')).toEqual({ kind: 'apply', file: 'mesh.yaml', options: defaults })
    expect(meshctl('apply', '-f', '-')).toEqual({ kind: 'apply', file: '-', options: defaults })
    expect(meshctl('get', 'svc')).toEqual({ kind: 'get', resourceKind: 'Service', name: undefined, namespace: 'default', options: defaults })
    expect(meshctl('delete', 'httproute', 'orders-canary')).toEqual({
      kind: 'delete',
      resourceKind: 'HTTPRoute',
      name: 'orders-canary',
      namespace: 'default',
      options: defaults,
    })
    expect(meshctl('check')).toEqual({ kind: 'check', options: defaults })
    expect(meshctl('token', 'create', '--name', 'orders')).toEqual({
      kind: 'token-create',
      service: 'orders',
      namespace: 'default',
      options: defaults,
    })
  })

  it('takes global flags before or after the command, in every spelling', () => {
    const expected = { controlPlane: '127.0.0.1:9000', output: 'yaml', timeoutMs: 1500 }
    for (const argv of [
      ['--control-plane', '127.0.0.1:9000', '-o', 'yaml', '--timeout', '1.5s', 'check'],
      ['check', '--control-plane=127.0.0.1:9000', '--output=yaml', '--timeout=1500ms'],
      ['-oyaml', 'check', '--timeout', '1500ms', '--control-plane', '127.0.0.1:9000'],
    ]) {
      expect(parseMeshctlArgs(argv)).toEqual({ kind: 'check', options: expected })
    }
    expect(meshctl('--control-plane', '[::1]:7443', 'check')).toMatchObject({ options: { controlPlane: '[::1]:7443' } })
    expect(meshctl('--control-plane', 'mesh-control.internal:7443', 'check')).toMatchObject({
      options: { controlPlane: 'mesh-control.internal:7443' },
    })
  })

  it('maps every kind spelling onto the canonical kind', () => {
    const cases: [string, string][] = [
      ['service', 'Service'],
      ['services', 'Service'],
      ['svc', 'Service'],
      ['Service', 'Service'],
      ['httproute', 'HTTPRoute'],
      ['httproutes', 'HTTPRoute'],
      ['HTTPRoute', 'HTTPRoute'],
      ['tcproute', 'TCPRoute'],
      ['tcproutes', 'TCPRoute'],
      ['authorizationpolicy', 'AuthorizationPolicy'],
      ['authorizationpolicies', 'AuthorizationPolicy'],
      ['authz', 'AuthorizationPolicy'],
    ]
    for (const [spelling, kind] of cases) expect(parseKind(spelling), spelling).toBe(kind)
    expect(parseKind('all', { allowAll: true })).toBe('all')
    expect(usageError(() => parseKind('all'))).toMatch(/^unknown kind "all"/)
  })

  it('reads names, namespaces and KIND/NAME', () => {
    expect(meshctl('get', 'svc', 'orders', '-n', 'shop')).toMatchObject({ resourceKind: 'Service', name: 'orders', namespace: 'shop' })
    expect(meshctl('get', 'svc/orders', '--namespace=shop')).toMatchObject({ name: 'orders', namespace: 'shop' })
    expect(meshctl('get', 'httproutes', '-A')).toMatchObject({ resourceKind: 'HTTPRoute', namespace: undefined })
    expect(meshctl('get', 'all', '--all-namespaces')).toMatchObject({ resourceKind: 'all', namespace: undefined })
    expect(meshctl('delete', 'svc/orders', '-nshop')).toMatchObject({ resourceKind: 'Service', name: 'orders', namespace: 'shop' })
    expect(meshctl('token', 'create', '--name', 'web', '--namespace', 'shop')).toMatchObject({ service: 'web', namespace: 'shop' })
    expect(meshctl('token', 'create', '--name=web', '-n', 'shop')).toMatchObject({ service: 'web', namespace: 'shop' })
  })

  it('answers help and version for the tool and each command', () => {
    expect(meshctl('--help')).toEqual({ kind: 'help', topic: 'meshctl' })
    expect(meshctl('-h')).toEqual({ kind: 'help', topic: 'meshctl' })
    expect(meshctl('help')).toEqual({ kind: 'help', topic: 'meshctl' })
    expect(meshctl('help', 'get')).toEqual({ kind: 'help', topic: 'get' })
    expect(meshctl('apply', '--help')).toEqual({ kind: 'help', topic: 'apply' })
    expect(meshctl('token', 'create', '-h')).toEqual({ kind: 'help', topic: 'token' })
    expect(meshctl('stat', '--help')).toEqual({ kind: 'help', topic: 'stat' })
    expect(meshctl('--version')).toEqual({ kind: 'version' })
    expect(meshctl('-V')).toEqual({ kind: 'version' })
    expect(meshctl('version')).toEqual({ kind: 'version' })
    for (const topic of ['apply', 'get', 'delete', 'check', 'token'] as const) {
      expect(USAGE[topic]).toMatch(new RegExp(`^Usage: meshctl ${topic} `))
    }
  })

  it('refuses mistakes with one line each', () => {
    const cases: [string[], string][] = [
      [[], 'missing COMMAND (see meshctl --help)'],
      [['frobnicate'], 'unknown command "frobnicate" (see meshctl --help)'],
      [['check', '--bogus'], 'unknown flag --bogus (see meshctl --help)'],
      [['apply'], 'meshctl apply needs -f FILE (see meshctl apply --help)'],
      [['apply', '-f'], '-f needs a value'],
      [['apply', '-f', 'a.yaml', '-f', 'b.yaml'], '-f given more than once'],
      [['apply', '-f', 'a.yaml', 'extra'], 'meshctl apply: unexpected argument "extra"'],
      [['get'], 'meshctl get needs a KIND (see meshctl get --help)'],
      [['get', 'svcs'], 'unknown kind "svcs" (did you mean "svc"?); expected service (svc), httproute, tcproute or authorizationpolicy (authz), or all'],
      [['get', 'proxy'], 'Proxy resources are not stored by mesh-control (each proxy reads its own from --config); `meshctl check` lists connected proxies'],
      [['get', 'svc', 'a', 'b'], 'meshctl get: unexpected argument "b"'],
      [['get', 'svc', '-A', '-n', 'x'], '-A and -n cannot be used together'],
      [['get', 'svc', 'orders', '-A'], '-A cannot be used with a NAME: give its namespace with -n'],
      [['get', 'all', 'orders'], 'meshctl get all takes no NAME'],
      [['get', 'svc/'], 'meshctl get: "svc/" has no name after the /'],
      [['delete', 'svc'], 'meshctl delete needs a NAME after "svc" (see meshctl delete --help)'],
      [['delete', 'all', 'x'], 'unknown kind "all"; expected service (svc), httproute, tcproute or authorizationpolicy (authz)'],
      [['delete', 'svc', 'orders', '-A'], 'meshctl delete does not take -A (see meshctl delete --help)'],
      [['check', '-f', 'x.yaml'], 'meshctl check does not take -f (see meshctl check --help)'],
      [['token'], 'meshctl token needs a subcommand: create (see meshctl token --help)'],
      [['token', 'list'], 'meshctl token: unknown subcommand "list"; expected create'],
      [['token', 'create'], 'meshctl token create needs --name SERVICE (see meshctl token --help)'],
      [['token', 'create', '--name='], '--name needs a service name'],
      [['-o', 'xml', 'check'], '-o: expected table, json or yaml, got "xml"'],
      [['--output', 'wide', 'check'], '--output: expected table, json or yaml, got "wide"'],
      [['--timeout', '5', 'check'], '--timeout: expected a duration above zero like 500ms, 5s or 1m, got "5"'],
      [['--timeout', '0s', 'check'], '--timeout: expected a duration above zero like 500ms, 5s or 1m, got "0s"'],
      [['--control-plane', 'localhost', 'check'], '--control-plane: expected HOST:PORT, got "localhost"'],
      [['--control-plane', '127.0.0.1:0', 'check'], '--control-plane: expected HOST:PORT, got "127.0.0.1:0"'],
      [['--control-plane', '127.0.0.1:99999', 'check'], '--control-plane: expected HOST:PORT, got "127.0.0.1:99999"'],
      [['-A', 'check'], 'meshctl check does not take -A (see meshctl check --help)'],
      [['--help=yes'], '--help takes no value'],
      [['stat'], 'meshctl stat is not available in this version'],
      [['tap', 'deploy/web'], 'meshctl tap is not available in this version'],
    ]
    for (const [argv, message] of cases) expect(usageError(() => parseMeshctlArgs(argv)), argv.join(' ')).toBe(message)
  })
})

describe('mesh-control arguments', () => {
  it('defaults to the file store in ./.mesh-control', () => {
    expect(parseControlArgs([])).toEqual({
      kind: 'run',
      listen: undefined,
      dataDir: './.mesh-control',
      trustDomain: undefined,
      leaseTtlMs: undefined,
      caCertFile: undefined,
      caKeyFile: undefined,
      trustBundleFiles: [],
      certTtlMs: undefined,
    })
  })

  it('reads every flag', () => {
    expect(
      parseControlArgs([
        '--listen',
        '127.0.0.1:0',
        '--data-dir=/var/lib/mesh',
        '--store',
        'file',
        '--trust-domain',
        'prod.example',
        '--lease-ttl',
        '3s',
        '--ca-cert',
        '/etc/mesh/ca.pem',
        '--ca-key=/etc/mesh/ca.key',
        '--trust-bundle',
        'old-root.pem',
        '--trust-bundle',
        'next-root.pem',
        '--cert-ttl',
        '90m',
        '--mtls-namespaces',
        'shop, payments',
      ]),
    ).toEqual({
      kind: 'run',
      listen: '127.0.0.1:0',
      dataDir: '/var/lib/mesh',
      trustDomain: 'prod.example',
      leaseTtlMs: 3000,
      caCertFile: '/etc/mesh/ca.pem',
      caKeyFile: '/etc/mesh/ca.key',
      trustBundleFiles: ['old-root.pem', 'next-root.pem'],
      certTtlMs: 5_400_000,
      mtlsNamespaces: ['shop', 'payments'],
    })
    expect(parseControlArgs(['--listen', '[::1]:7443'])).toMatchObject({ listen: '[::1]:7443' })
    expect(parseControlArgs(['--help'])).toEqual({ kind: 'help' })
    expect(parseControlArgs(['-V'])).toEqual({ kind: 'version' })
  })

  it('refuses mistakes with one line each', () => {
    const cases: [string[], string][] = [
      [['--bogus'], 'unknown flag --bogus (see mesh-control --help)'],
      [['serve'], 'unexpected argument "serve"'],
      [['--listen'], '--listen needs a value'],
      [['--listen', 'localhost:7443'], '--listen: expected HOST:PORT with an IP address, got "localhost:7443"'],
      [['--listen', '127.0.0.1:70000'], '--listen: expected HOST:PORT with a port from 0 to 65535, got "127.0.0.1:70000"'],
      [['--data-dir='], '--data-dir needs a directory'],
      [['--store', 'etcd'], '--store etcd: the etcd store is not available in this version (use --store file)'],
      [['--store', 'etcd', '--etcd-endpoints', 'http://127.0.0.1:2379'], '--store etcd: the etcd store is not available in this version (use --store file)'],
      [['--store', 'redis'], '--store: expected file or etcd, got "redis"'],
      [['--etcd-endpoints', 'http://127.0.0.1:2379'], '--etcd-endpoints is only used with --store etcd'],
      [['--trust-domain', 'Mesh.Local'], '--trust-domain: expected a trust domain of lower case letters, digits, ".", "-" and "_" (e.g. mesh.local), got "Mesh.Local"'],
      [['--lease-ttl', '10'], '--lease-ttl: expected a duration from 100ms to 24h like 10s or 1m, got "10"'],
      [['--lease-ttl', '50ms'], '--lease-ttl: expected a duration from 100ms to 24h like 10s or 1m, got "50ms"'],
      [['--lease-ttl', '2h', '--lease-ttl', '3h'], '--lease-ttl given more than once'],
      [['--ca-cert', 'ca.pem'], '--ca-cert needs --ca-key'],
      [['--ca-key', 'ca.key'], '--ca-key needs --ca-cert'],
      [['--ca-cert=', '--ca-key', 'k'], '--ca-cert needs a file'],
      [['--trust-bundle='], '--trust-bundle needs a file'],
      [['--cert-ttl', '30s'], '--cert-ttl: expected a duration from 1m to 720h like 24h or 30m, got "30s"'],
      [['--cert-ttl', '31d'], '--cert-ttl: expected a duration from 1m to 720h like 24h or 30m, got "31d"'],
      [['--cert-ttl', 'soon'], '--cert-ttl: expected a duration from 1m to 720h like 24h or 30m, got "soon"'],
      [['--mtls-namespaces', 'shop,'], '--mtls-namespaces: expected namespaces separated by commas (lower-case DNS labels), got ""'],
      [['--mtls-namespaces', 'Shop'], '--mtls-namespaces: expected namespaces separated by commas (lower-case DNS labels), got "Shop"'],
    ]
    for (const [argv, message] of cases) expect(usageError(() => parseControlArgs(argv)), argv.join(' ')).toBe(message)
  })

  it('warns when the unauthenticated Admin API listens beyond loopback', () => {
    expect(adminExposureWarning('127.0.0.1:7443')).toBeUndefined()
    expect(adminExposureWarning('[::1]:7443')).toBeUndefined()
    expect(adminExposureWarning('0.0.0.0:7443')).toBe(
      'warning: the Admin API (meshctl) is not authenticated in this version; anyone who can reach 0.0.0.0:7443 can change the mesh',
    )
    expect(adminExposureWarning('[::]:7443')).toMatch(/^warning: /)
    expect(adminExposureWarning('10.1.2.3:7443')).toMatch(/^warning: /)
  })
})
