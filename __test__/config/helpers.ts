import { ConfigError, loadResourcesFromText, validateResources, type LoadOptions, type LoadResult } from '../../src/config/index.js'

/** The messages of the ConfigError that `run` throws; fails the test if it does not throw one. */
export function configErrors(run: () => unknown): string[] {
  try {
    run()
  } catch (err) {
    if (err instanceof ConfigError) return [...err.errors]
    throw err
  }
  throw new Error('expected a ConfigError, but the config was accepted')
}

export const PROXY = { apiVersion: 'mesh/v1', kind: 'Proxy', name: 'web', inbound: [{ port: 4143, forwardTo: '127.0.0.1:8080' }] }

/** Validates resources under the label `mesh.yaml`, with the minimal Proxy first (document 1). */
export function validateWithProxy(...documents: unknown[]): LoadResult {
  return validateResources([PROXY, ...documents], { fileLabel: 'mesh.yaml' })
}

/** Errors of a set of resources placed after the minimal Proxy (so they start at document 2). */
export function errorsWithProxy(...documents: unknown[]): string[] {
  return configErrors(() => validateWithProxy(...documents))
}

export function load(text: string, options?: LoadOptions): LoadResult {
  return loadResourcesFromText(text, 'mesh.yaml', options)
}
