/** mesh-control: the control plane server (gRPC Discovery, Registry, Identity, Admin) and its store. */
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
export { DEFAULT_CERT_TTL_MS, MIN_CERT_TTL_MS, MAX_CERT_TTL_MS, spiffeIdOf } from './identity/authority.js'
