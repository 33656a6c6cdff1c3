// The arm64 OCI image layout from `npm run build:oci`: its index, manifest and config
// describe linux/arm64, every blob matches its digest, and the root filesystem made by
// unpacking the layers in order runs the image's entrypoint (`mesh-proxy --version`)
// under qemu-aarch64.

import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { artifact, makeTempDir, removeDir, repoRoot, runToEnd, version } from './helpers.js'

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { architecture: string; os: string; variant?: string }
  annotations?: Record<string, string>
}

interface ImageConfig {
  architecture: string
  os: string
  config: { Entrypoint: string[]; Cmd?: string[]; User?: string; Env?: string[] }
  rootfs: { type: string; diff_ids: string[] }
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

describe('arm64 OCI image layout', () => {
  const layout = join(repoRoot, 'target', 'oci', `mesh-core-${version}-linux-arm64`)
  let rootfs: string | undefined

  const blob = (descriptor: Descriptor): Buffer => {
    const [algorithm, hex] = descriptor.digest.split(':')
    expect(algorithm).toBe('sha256')
    return readFileSync(join(layout, 'blobs', 'sha256', hex!))
  }
  const index = () => JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Descriptor[] }
  const manifest = () => JSON.parse(blob(index().manifests[0]!).toString('utf8')) as { mediaType: string; config: Descriptor; layers: Descriptor[] }
  const config = () => JSON.parse(blob(manifest().config).toString('utf8')) as ImageConfig

  beforeAll(() => {
    artifact(join(layout, 'index.json'))
    rootfs = makeTempDir('oci-rootfs')
  })

  afterAll(() => removeDir(rootfs))

  it('is an OCI image layout whose index names one linux/arm64 manifest', () => {
    expect(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' })
    const { schemaVersion, manifests } = index()
    expect(schemaVersion).toBe(2)
    expect(manifests).toHaveLength(1)
    expect(manifests[0]!.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
    expect(manifests[0]!.platform).toMatchObject({ architecture: 'arm64', os: 'linux' })
    expect(manifests[0]!.annotations?.['org.opencontainers.image.ref.name']).toBe(version)
  })

  it('has blobs that match their digests and sizes', () => {
    const descriptors = [index().manifests[0]!, manifest().config, ...manifest().layers]
    for (const descriptor of descriptors) {
      const bytes = blob(descriptor)
      expect(sha256(bytes), descriptor.digest).toBe(descriptor.digest)
      expect(bytes.length).toBe(descriptor.size)
    }
  })

  it('has a config for linux/arm64 whose diff_ids are the uncompressed layers', () => {
    const image = config()
    expect(image.architecture).toBe('arm64')
    expect(image.os).toBe('linux')
    expect(manifest().config.mediaType).toBe('application/vnd.oci.image.config.v1+json')
    const layers = manifest().layers
    expect(layers.length).toBeGreaterThanOrEqual(2)
    expect(image.rootfs.type).toBe('layers')
    expect(image.rootfs.diff_ids).toEqual(layers.map((layer) => sha256(gunzipSync(blob(layer)))))
    expect(image.config.Entrypoint.join(' ')).toMatch(/mesh-proxy/)
  })

  it('unpacks to a root filesystem that runs `mesh-proxy --version` under qemu-aarch64', async () => {
    for (const layer of manifest().layers) {
      expect(layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip')
      execFileSync('tar', ['-xzf', '-', '-C', rootfs!], { input: blob(layer), maxBuffer: 1 << 30 })
    }
    const image = config()
    const [program, ...programArgs] = image.config.Entrypoint
    // Image paths are absolute inside the root filesystem; qemu's -L serves the
    // dynamic loader and libraries from there too.
    const inRootfs = (p: string) => (isAbsolute(p) && existsSync(join(rootfs!, p)) ? join(rootfs!, p) : p)
    expect(existsSync(inRootfs(program!)), `${program} in the image`).toBe(true)
    mkdirSync(join(rootfs!, 'tmp'), { recursive: true })

    const result = await runToEnd('qemu-aarch64', ['-L', rootfs!, inRootfs(program!), ...programArgs.map(inRootfs), '--version'], {
      cwd: rootfs!,
      env: { PATH: '/usr/bin:/bin', ...Object.fromEntries((image.config.Env ?? []).map((kv) => kv.split(/=(.*)/s).slice(0, 2))) },
      timeoutMs: 120_000,
    })
    expect(result.status, result.output).toBe(0)
    expect(result.output).toContain(version)
    expect(image.config.User).toBe('65534:65534')
    expect(readFileSync(join(rootfs!, 'etc', 'passwd'), 'utf8')).toMatch(/^nobody:x:65534:65534:/m)
  })
})
