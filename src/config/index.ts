/** The resource model: types, parsing helpers, loading and validation. */
export * from './types.js'
export { ConfigError, firstLine, messageOf } from './errors.js'
export { parseDuration, formatDuration } from './duration.js'
export { parseHostPort, formatHostPort, type HostPort, type HostPortOptions } from './address.js'
export {
  validateResources,
  validateDocuments,
  type LoadResult,
  type SourceDocument,
  type ValidateInput,
  type ValidateOptions,
} from './validate.js'
export {
  loadResourcesFromFile,
  loadResourcesFromFileSync,
  loadResourcesFromText,
  parseDocuments,
  readConfigFile,
  describeReadError,
  type LoadOptions,
} from './load.js'
