/** mesh-control: the control plane server (gRPC Discovery, Registry, Admin) and its store. */
export {
  MeshControl,
  DEFAULT_LISTEN,
  DEFAULT_LEASE_TTL_MS,
  DEFAULT_TRUST_DOMAIN,
  SERVER_OPTIONS,
  type MeshControlOptions,
} from './mesh-control.js'
export { MeshControlError } from './errors.js'
export { TOKEN_PREFIX, hashToken, tokenIdOf, type IssuedToken, type Identity } from './tokens.js'
export { LEASE_FILE } from './registry/lease-file.js'
