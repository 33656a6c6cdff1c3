#!/usr/bin/env bash
# Packs the npm tarballs a release publishes, into target/pack/:
#   mesh-core-<version>.tgz                  the root package (TypeScript, CLI, loader)
#   mesh-core-<platform>-<version>.tgz       one per platform package with its .node
# The root tarball's package.json gets `optionalDependencies` naming every platform
# package at the exact version (what `napi pre-publish` writes before a publish). The
# repository's package.json does not list them: they are not on the registry until
# published, and npm records failed optional dependencies nowhere in package-lock.json,
# after which `npm ci` refuses the lock file.
#
# Usage: scripts/pack.sh [--platforms x64,arm64,ppc64]  (default: all three)
# Needs the .node files from scripts/build-all.sh and takes native/index.js and
# native/index.d.ts from the same builds (target/cross/napi-out/loader); builds the
# TypeScript itself.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

platforms="x64,arm64,ppc64"
while [ $# -gt 0 ]; do
  case "$1" in
    --platforms) platforms="${2:?--platforms needs a list}"; shift 2 ;;
    --platforms=*) platforms="${1#--platforms=}"; shift ;;
    *) echo "pack: unknown argument $1 (usage: scripts/pack.sh [--platforms x64,arm64,ppc64])" >&2; exit 2 ;;
  esac
done

out="$repo_root/target/pack"
loader="${MESH_CROSS_TARGET_DIR:-$repo_root/target/cross}/napi-out/loader"
if [ ! -f "$loader/index.js" ] || [ ! -f "$loader/index.d.ts" ]; then
  echo "pack: no napi loader in $loader; run npm run build:all first" >&2
  exit 1
fi
stage="$out/stage"
rm -rf "$stage"
mkdir -p "$out" "$stage/mesh-core"

echo "pack: building TypeScript (npm run build:ts)" >&2
npm run --silent build:ts >&2

version="$(node -p 'require("./package.json").version')"

# Platform packages first: each must carry its .node at the root version.
IFS=',' read -r -a platform_list <<<"$platforms"
for name in "${platform_list[@]}"; do
  case "$name" in
    x64) platform=linux-x64-gnu ;;
    arm64) platform=linux-arm64-gnu ;;
    ppc64) platform=linux-ppc64-gnu ;;
    *) echo "pack: unknown platform $name (known: x64, arm64, ppc64)" >&2; exit 2 ;;
  esac
  dir="npm/$platform"
  [ -f "$dir/mesh-core.$platform.node" ] || {
    echo "pack: $dir/mesh-core.$platform.node is missing; run npm run build:all -- --targets $name" >&2
    exit 1
  }
  platform_version="$(node -p "require('./$dir/package.json').version")"
  [ "$platform_version" = "$version" ] || {
    echo "pack: $dir/package.json has version $platform_version, the root has $version (run npx napi version)" >&2
    exit 1
  }
  (cd "$dir" && npm pack --silent --ignore-scripts --pack-destination "$out" >/dev/null)
  echo "pack: target/pack/mesh-core-$platform-$version.tgz" >&2
done

# Root package: copy exactly the files npm would pack, then add optionalDependencies.
node - "$stage/mesh-core" "$loader" <<'JS'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const [stage, loader] = process.argv.slice(2)
const [listing] = JSON.parse(
  execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }),
)
for (const { path: file } of listing.files) {
  fs.mkdirSync(path.dirname(path.join(stage, file)), { recursive: true })
  fs.copyFileSync(file, path.join(stage, file))
}
// The loader of the release builds, whatever native/ holds in this checkout.
fs.mkdirSync(path.join(stage, 'native'), { recursive: true })
for (const file of ['index.js', 'index.d.ts']) fs.copyFileSync(path.join(loader, file), path.join(stage, 'native', file))
for (const required of ['bin/mesh-proxy.js', 'dist/index.js']) {
  if (!listing.files.some((f) => f.path === required)) {
    console.error(`pack: the root package would not contain ${required}`)
    process.exit(1)
  }
}
const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8'))
const optional = {}
for (const dir of fs.readdirSync('npm').sort()) {
  const platformManifest = JSON.parse(fs.readFileSync(path.join('npm', dir, 'package.json'), 'utf8'))
  optional[platformManifest.name] = manifest.version
}
manifest.optionalDependencies = { ...manifest.optionalDependencies, ...optional }
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
JS
(cd "$stage/mesh-core" && npm pack --silent --ignore-scripts --pack-destination "$out" >/dev/null)
rm -rf "$stage"
echo "pack: target/pack/mesh-core-$version.tgz" >&2
