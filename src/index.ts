/**
 * mesh-core: a service mesh data plane (a Rust engine) driven from TypeScript.
 *
 *   import { MeshProxy } from 'mesh-core'
 *   await using proxy = await MeshProxy.start({ configFile: 'mesh.yaml' })
 */
export * from './proxy/index.js'

export {
  ConfigError,
  loadResourcesFromFile,
  loadResourcesFromFileSync,
  loadResourcesFromText,
  validateResources,
  parseDuration,
  formatDuration,
} from './config/index.js'
export type {
  LoadOptions,
  LoadResult,
  MeshResource,
  ProxyResource,
  ServiceResource,
  HTTPRouteResource,
  TCPRouteResource,
  AuthorizationPolicyResource,
  ResourceKind,
} from './config/index.js'
