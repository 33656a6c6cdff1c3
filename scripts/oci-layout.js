#!/usr/bin/env node
'use strict'
// Writes an OCI image layout (image-spec v1.1) for linux/arm64 from gzipped layer
// tarballs: blobs/sha256/<digest> for each layer, the image config and the manifest,
// then index.json and oci-layout. Called by scripts/oci-image.sh.
//
// node scripts/oci-layout.js --out DIR --version V --epoch SECONDS
//   --layer FILE.tar.gz=DESCRIPTION [--layer ...]   (in order, base first)

const { createHash } = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
}

function parseArgs(argv) {
  const args = { layers: [] }
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]]
    if (value === undefined) throw new Error(`${flag} needs a value`)
    if (flag === '--layer') {
      const at = value.indexOf('=')
      if (at < 0) throw new Error(`--layer wants FILE=DESCRIPTION, got ${value}`)
      args.layers.push({ file: value.slice(0, at), createdBy: value.slice(at + 1) })
    } else if (flag === '--out' || flag === '--version' || flag === '--epoch') {
      args[flag.slice(2)] = value
    } else {
      throw new Error(`unknown argument ${flag}`)
    }
  }
  for (const required of ['out', 'version', 'epoch']) {
    if (args[required] === undefined) throw new Error(`--${required} is required`)
  }
  if (args.layers.length === 0) throw new Error('at least one --layer is required')
  return args
}

const sha256 = (bytes) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`

/** Stores bytes as a blob and returns its descriptor. */
function writeBlob(out, mediaType, bytes) {
  const digest = sha256(bytes)
  fs.writeFileSync(path.join(out, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes)
  return { mediaType, digest, size: bytes.length }
}

function main() {
  const args = parseArgs(process.argv.slice(2))
  const created = new Date(Number(args.epoch) * 1000).toISOString().replace(/\.000Z$/, 'Z')
  fs.mkdirSync(path.join(args.out, 'blobs', 'sha256'), { recursive: true })

  const layers = []
  const diffIds = []
  for (const layer of args.layers) {
    const gz = fs.readFileSync(layer.file)
    layers.push(writeBlob(args.out, MEDIA.layer, gz))
    // The config names layers by the digest of their uncompressed tar.
    diffIds.push(sha256(zlib.gunzipSync(gz)))
  }

  const config = {
    created,
    author: 'mesh-core',
    architecture: 'arm64',
    variant: 'v8',
    os: 'linux',
    config: {
      User: '65534:65534',
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NODE_ENV=production'],
      Entrypoint: ['/usr/bin/node', '/opt/mesh-core/node_modules/mesh-core/bin/mesh-proxy.js'],
      Cmd: ['--config', '/etc/mesh/mesh.yaml'],
      WorkingDir: '/',
      Labels: {
        'org.opencontainers.image.title': 'mesh-core',
        'org.opencontainers.image.description': 'mesh-proxy, the mesh-core data plane, for linux/arm64',
        'org.opencontainers.image.version': args.version,
        'org.opencontainers.image.licenses': 'Apache-2.0',
      },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: args.layers.map((layer) => ({ created, created_by: layer.createdBy })),
  }
  const configDescriptor = writeBlob(args.out, MEDIA.config, Buffer.from(JSON.stringify(config)))

  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: configDescriptor,
    layers,
    annotations: { 'org.opencontainers.image.created': created, 'org.opencontainers.image.version': args.version },
  }
  const manifestDescriptor = writeBlob(args.out, MEDIA.manifest, Buffer.from(JSON.stringify(manifest)))

  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        ...manifestDescriptor,
        platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
        annotations: { 'org.opencontainers.image.ref.name': args.version },
      },
    ],
  }
  fs.writeFileSync(path.join(args.out, 'index.json'), JSON.stringify(index))
  fs.writeFileSync(path.join(args.out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  process.stdout.write(`${manifestDescriptor.digest}\n`)
}

try {
  main()
} catch (err) {
  process.stderr.write(`oci-layout: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}
