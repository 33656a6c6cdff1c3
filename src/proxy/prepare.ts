// From config input (a file, text, or objects) to everything the proxy needs to put it in
// force: the normalised resources, their warnings, the Proxy settings and the engine snapshot.
// No side effects, so a config that fails anywhere here never touches the running engine.

import { resolve as resolvePath } from 'node:path'

import type { BindingProxyConfig } from '../../native/index.js'
import { compileProxyConfig, proxySettings, type ProxySettings } from '../compile/index.js'
import {
  loadResourcesFromFile,
  loadResourcesFromText,
  validateResources,
  type LoadResult,
  type MeshResource,
} from '../config/index.js'

export type ConfigInput =
  | { kind: 'file'; path: string }
  | { kind: 'text'; text: string; label: string }
  | { kind: 'resources'; resources: readonly unknown[]; label: string }

export interface PreparedConfig {
  /** How messages name this config: the file as the user gave it, or a label. */
  label: string
  /** Where it came from, for /config and the engine: an absolute file path, or the label. */
  source: string
  resources: readonly MeshResource[]
  warnings: readonly string[]
  /** The Proxy settings the proxy itself (not the engine) acts on. */
  settings: ProxySettings
  compiled: BindingProxyConfig
}

export async function prepareConfig(input: ConfigInput): Promise<PreparedConfig> {
  let label: string
  let source: string
  let loaded: LoadResult
  switch (input.kind) {
    case 'file':
      label = input.path
      source = resolvePath(input.path)
      loaded = await loadResourcesFromFile(input.path)
      break
    case 'text':
      label = input.label
      source = input.label
      loaded = loadResourcesFromText(input.text, input.label)
      break
    case 'resources':
      label = input.label
      source = input.label
      loaded = validateResources(input.resources, { fileLabel: input.label })
      break
  }

  const { resources, warnings } = loaded
  return {
    label,
    source,
    resources,
    warnings,
    settings: proxySettings(resources),
    compiled: compileProxyConfig(resources, { source }),
  }
}
