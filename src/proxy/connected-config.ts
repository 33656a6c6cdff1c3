// Config in connected mode: the local Proxy resource (ports, timeouts: what only this
// host knows) from the config file, or a default one, combined with whatever the control
// plane pushed (Services, routes, policies), validated by the same validator and compiled
// by the same compiler as a standalone file. Pure, like prepare.ts: nothing here touches
// the running engine.


import { compileProxyConfig, proxySettings } from '../compile/index.js'
import {
  ConfigError,
  parseDocuments,
  readConfigFile,
  validateDocuments,
  RESOURCE_KINDS,
  type MeshResource,
  type ProxyResource,
  type ServiceResource,
  type SourceDocument,
} from '../config/index.js'
import { PUSH_LABEL } from '../control/push-state.js'
import type { ConfigInput, PreparedConfig } from './prepare.js'

/** Who the proxy is to the control plane (`--name`, `--namespace`). */
export interface WorkloadIdentity {
  name: string
  namespace: string
}

export interface LocalProxy {
  proxy: ProxyResource
  /** How messages name its origin: the file as given, the embedding label, or `default Proxy`. */
  label: string
  /** Its document number there, so messages about it point into the right file. */
  documentNumber: number
  warnings: readonly string[]
}

/** The defaults of a connected proxy started without a config file. */
export const DEFAULT_CONNECTED_OUTBOUND = '127.0.0.1:4140'
export const DEFAULT_CONNECTED_ADMIN = '127.0.0.1:4191'
const DEFAULT_PROXY_LABEL = 'default Proxy'

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * The local Proxy from a file, text or objects. In connected mode they may hold only the
 * Proxy (everything else comes from the control plane, and a second source of Services
 * would silently disagree with it), and its name and namespace must be the identity the
 * proxy joins the mesh with. Throws a ConfigError naming the file and document.
 */
export async function loadLocalProxy(input: ConfigInput, identity: WorkloadIdentity): Promise<LocalProxy> {
  let label: string
  let documents: SourceDocument[]
  switch (input.kind) {
    case 'file':
      label = input.path
      documents = parseDocuments(await readConfigFile(input.path), label)
      break
    case 'text':
      label = input.label
      documents = parseDocuments(input.text, label)
      break
    case 'resources':
      label = input.label
      documents = input.resources.map((value, index) => ({ number: index + 1, value }))
      break
  }

  const errors: string[] = []
  let proxyDocument: SourceDocument | undefined
  for (const document of documents) {
    const value = document.value
    if (!isMapping(value) || typeof value.kind !== 'string') continue
    if (value.kind === 'Proxy') {
      proxyDocument ??= document
    } else if ((RESOURCE_KINDS as readonly string[]).includes(value.kind)) {
      const name = typeof value.name === 'string' ? ` ${JSON.stringify(value.name)}` : ''
      errors.push(
        `${label}: document ${document.number} (${value.kind}${name}): connected mode takes only the Proxy resource ` +
          `from this file; ${value.kind} resources come from the control plane (meshctl apply)`,
      )
    }
  }
  if (errors.length > 0) throw new ConfigError(errors)

  // Schema errors first (a Proxy with a typo must say so), then the identity.
  const { resources, warnings } = validateDocuments(documents, { fileLabel: label, requireProxy: false, checkReferences: false })
  const proxy = resources.find((r): r is ProxyResource => r.kind === 'Proxy')
  if (proxy === undefined || proxyDocument === undefined) {
    throw new ConfigError([
      `${label}: no Proxy resource (in connected mode this file holds the proxy's own Proxy resource: its ports and timeouts)`,
    ])
  }
  checkIdentity(proxy, identity, `${label}: document ${proxyDocument.number} (Proxy ${JSON.stringify(proxy.name)})`)
  return { proxy, label, documentNumber: proxyDocument.number, warnings }
}

/** Without a file: outbound on 127.0.0.1:4140, admin on 127.0.0.1:4191, no inbound. */
export function defaultLocalProxy(identity: WorkloadIdentity): LocalProxy {
  const { resources, warnings } = validateDocuments(
    [
      {
        number: 1,
        value: {
          apiVersion: 'mesh/v1',
          kind: 'Proxy',
          name: identity.name,
          namespace: identity.namespace,
          outbound: { listen: DEFAULT_CONNECTED_OUTBOUND },
          admin: { listen: DEFAULT_CONNECTED_ADMIN },
        },
      },
    ],
    { fileLabel: DEFAULT_PROXY_LABEL, requireProxy: true, checkReferences: false },
  )
  return { proxy: resources[0] as ProxyResource, label: DEFAULT_PROXY_LABEL, documentNumber: 1, warnings }
}

function checkIdentity(proxy: ProxyResource, identity: WorkloadIdentity, where: string): void {
  if (proxy.name !== identity.name) {
    throw new ConfigError([
      `${where}: name: expected ${JSON.stringify(identity.name)}, the service this proxy joins the mesh as (--name), got ${JSON.stringify(proxy.name)}`,
    ])
  }
  if (proxy.namespace !== identity.namespace) {
    throw new ConfigError([
      `${where}: namespace: expected ${JSON.stringify(identity.namespace)}, the namespace this proxy joins the mesh in (--namespace), got ${JSON.stringify(proxy.namespace)}`,
    ])
  }
}

/**
 * Services a tcp outbound port names, as stand-ins with no endpoints until the first push:
 * they let the engine bind every port at start (a port in use fails the start, not a
 * push later) while connections to them have nowhere to go yet, exactly as before a config.
 */
function tcpStandIns(proxy: ProxyResource): ServiceResource[] {
  const seen = new Map<string, ServiceResource>()
  for (const tcp of proxy.outbound?.tcp ?? []) {
    const key = `${tcp.namespace}/${tcp.service}`
    if (seen.has(key)) continue
    seen.set(key, {
      apiVersion: 'mesh/v1',
      kind: 'Service',
      name: tcp.service,
      namespace: tcp.namespace,
      port: 1,
      protocol: 'tcp',
      endpoints: [],
      loadBalancer: { type: 'round_robin' },
    })
  }
  return [...seen.values()]
}

/** The config before the first push: the local Proxy alone (its listeners bound, no Services). */
export function prepareLocalOnly(local: LocalProxy, source: string): PreparedConfig {
  const resources: MeshResource[] = [local.proxy]
  return {
    label: local.label,
    source,
    resources,
    warnings: local.warnings,
    settings: proxySettings(resources),
    compiled: compileProxyConfig([...resources, ...tcpStandIns(local.proxy)], { source }),
  }
}

/**
 * The local Proxy plus the pushed documents (from decodeResources), validated together so
 * references from the Proxy (tcp ports) and between pushed resources resolve. Pushed
 * documents keep their `control-plane: document N` labels; lines about the Proxy name its
 * own file. Throws a ConfigError.
 */
export function preparePushed(local: LocalProxy, pushed: readonly SourceDocument[], source: string): PreparedConfig {
  const proxyNumber = pushed.length + 1
  // The validator labels every document with one file label; the Proxy's lines are moved
  // back to the file it came from, where the user can fix them.
  const pushedPrefix = `${PUSH_LABEL}: document ${proxyNumber} (Proxy ${JSON.stringify(local.proxy.name)})`
  const localPrefix = `${local.label}: document ${local.documentNumber} (Proxy ${JSON.stringify(local.proxy.name)})`
  const relabel = (line: string): string => (line.startsWith(pushedPrefix) ? localPrefix + line.slice(pushedPrefix.length) : line)

  let validated
  try {
    validated = validateDocuments([...pushed, { number: proxyNumber, value: local.proxy }], {
      fileLabel: PUSH_LABEL,
      requireProxy: false,
      // mesh-control health-checks the endpoints it pushes.
      activeHealthChecks: true,
    })
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.errors.map(relabel))
    throw err
  }
  const resources = validated.resources
  return {
    label: PUSH_LABEL,
    source,
    resources,
    warnings: validated.warnings.map(relabel),
    settings: proxySettings(resources),
    compiled: compileProxyConfig(resources, { source }),
  }
}
