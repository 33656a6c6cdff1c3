/**
 * Builders for mesh/v1 resource documents as the product contract spells them
 * (shared/spec/product.md), rendered as one multi-document YAML file.
 */
import YAML from 'yaml'

export type Doc = Record<string, unknown>

export function renderYaml(docs: Doc[]): string {
  return docs.map((d) => YAML.stringify(d)).join('---\n')
}

export interface InboundSpec {
  port: number
  forwardTo: string
  protocol?: 'auto' | 'http1' | 'http2' | 'grpc' | 'tcp'
}

export interface ProxySpec {
  adminPort: number
  outboundPort?: number
  inbound?: InboundSpec[]
  tcp?: { port: number; service: string }[]
  /** Extra top-level Proxy fields (drainTimeout, detectTimeout, workerThreads, ...). */
  extra?: Doc
}

export function proxyDoc(spec: ProxySpec): Doc {
  const doc: Doc = { apiVersion: 'mesh/v1', kind: 'Proxy', name: 'e2e', namespace: 'default' }
  if (spec.inbound) {
    // Loopback only, and mTLS off: these tests are about plaintext forwarding; mTLS has its own.
    doc.inbound = spec.inbound.map((i) => ({
      port: i.port,
      address: '127.0.0.1',
      forwardTo: i.forwardTo,
      protocol: i.protocol ?? 'auto',
      mtls: 'off',
    }))
  }
  if (spec.outboundPort !== undefined || spec.tcp) {
    const outbound: Doc = {}
    if (spec.outboundPort !== undefined) outbound.listen = `127.0.0.1:${spec.outboundPort}`
    if (spec.tcp) outbound.tcp = spec.tcp.map((t) => ({ listen: `127.0.0.1:${t.port}`, service: t.service }))
    doc.outbound = outbound
  }
  doc.admin = { listen: `127.0.0.1:${spec.adminPort}` }
  // Short drain so teardown is quick; tests that exercise drain set their own.
  Object.assign(doc, { drainTimeout: '2s' }, spec.extra ?? {})
  return doc
}

export interface ServiceOptions {
  port?: number
  protocol?: 'http' | 'http2' | 'grpc' | 'tcp'
  loadBalancer?: string | Doc
  weights?: number[]
}

/** A Service whose endpoints are 127.0.0.1 ports. */
export function serviceDoc(name: string, endpointPorts: number[], opts: ServiceOptions = {}): Doc {
  const doc: Doc = {
    apiVersion: 'mesh/v1',
    kind: 'Service',
    name,
    namespace: 'default',
    port: opts.port ?? 80,
    protocol: opts.protocol ?? 'http',
    endpoints: endpointPorts.map((p, i) => ({ address: `127.0.0.1:${p}`, weight: opts.weights?.[i] ?? 1 })),
  }
  if (opts.loadBalancer !== undefined) doc.loadBalancer = opts.loadBalancer
  return doc
}

export interface RuleSpec {
  matches?: Doc[]
  backendRefs?: { name: string; weight?: number }[]
  timeouts?: { request?: string; backendRequest?: string }
}

export function httpRouteDoc(name: string, parent: string, rules: RuleSpec[]): Doc {
  return { apiVersion: 'mesh/v1', kind: 'HTTPRoute', name, namespace: 'default', parentRefs: [{ name: parent }], rules }
}
