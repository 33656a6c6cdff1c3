#!/usr/bin/env bash
# `npm run build:oci`: an OCI image for arm64 edge nodes, built without a container
# engine, as an OCI image layout (https://github.com/opencontainers/image-spec):
#   target/oci/mesh-core-<version>-linux-arm64/      oci-layout, index.json, blobs/sha256/
#   target/oci/mesh-core-<version>-linux-arm64.tar   the same layout as one archive
# Layer 1 (base): Debian 12's arm64 Node.js 18 and the libraries it links, unpacked from
#   Debian packages by scripts/sysroot.sh (no shell, no package manager: distroless-like).
# Layer 2 (app): the packed mesh-core and mesh-core-linux-arm64-gnu tarballs, installed
#   with `npm install --cpu=arm64` into /opt/mesh-core.
# Entrypoint: node /opt/mesh-core/node_modules/mesh-core/bin/mesh-proxy.js, default
# arguments `--config /etc/mesh/mesh.yaml`, user 65534 (nobody).
# Layers are reproducible: sorted entries, owner 0, mtime from the last commit.
#
# Usage: scripts/oci-image.sh [--skip-pack]
#   --skip-pack  use the tarballs already in target/pack (scripts/pack.sh made them)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

skip_pack=false
case "${1:-}" in
  --skip-pack) skip_pack=true ;;
  "") ;;
  *) echo "oci-image: unknown argument $1 (usage: scripts/oci-image.sh [--skip-pack])" >&2; exit 2 ;;
esac

version="$(node -p 'require("./package.json").version')"
if ! $skip_pack; then
  scripts/pack.sh --platforms arm64
fi
root_tgz="target/pack/mesh-core-$version.tgz"
arm64_tgz="target/pack/mesh-core-linux-arm64-gnu-$version.tgz"
for tgz in "$root_tgz" "$arm64_tgz"; do
  [ -f "$tgz" ] || { echo "oci-image: $tgz is missing; run npm run build:all -- --targets arm64, then npm run build:oci" >&2; exit 1; }
done

base_sysroot="$(scripts/sysroot.sh arm64 | tail -n1)"

# One timestamp for every file and for the config, so a rebuild of the same commit
# yields the same digests.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

out="$repo_root/target/oci"
name="mesh-core-$version-linux-arm64"
work="$out/.work"
rm -rf "$work" "${out:?}/$name" "$out/$name.tar"
mkdir -p "$work/base" "$work/app" "$out/$name/blobs/sha256"

echo "oci-image: base layer from $base_sysroot" >&2
cp -a "$base_sysroot/." "$work/base/"
# Keep Debian's copyright files (the licences travel with the binaries); drop the rest
# of the documentation.
mv "$work/base/.manifest" "$work/debian-packages.txt"
find "$work/base/usr/share/doc" -type f ! -name copyright -delete
find "$work/base/usr/share/doc" -type l -delete
rm -rf "$work/base/usr/share/man" "$work/base/usr/share/lintian"
mkdir -p "$work/base/usr/share/mesh-core" "$work/base/tmp" "$work/base/etc/mesh"
cp "$work/debian-packages.txt" "$work/base/usr/share/mesh-core/base-packages.txt"
chmod 1777 "$work/base/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$work/base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/base/etc/group"

echo "oci-image: app layer (npm install --cpu=arm64 of the packed tarballs)" >&2
app="$work/app/opt/mesh-core"
mkdir -p "$app"
# npm selects the arm64 binding through mesh-core's optionalDependencies, as it would
# from the registry; `overrides` points that name at the packed tarball.
printf '{ "name": "mesh-core-image", "private": true, "dependencies": { "mesh-core": "file:%s" }, "overrides": { "mesh-core-linux-arm64-gnu": "file:%s" } }\n' \
  "$repo_root/$root_tgz" "$repo_root/$arm64_tgz" >"$app/package.json"
(cd "$app" && npm install --silent --no-audit --no-fund --prefer-offline --ignore-scripts --omit=dev \
  --no-package-lock --cpu=arm64 --os=linux --libc=glibc)
[ -f "$app/node_modules/mesh-core-linux-arm64-gnu/mesh-core.linux-arm64-gnu.node" ] || {
  echo "oci-image: npm did not install the arm64 binding into the image" >&2
  exit 1
}
# Name the installed versions, not this machine's tarball paths.
printf '{ "name": "mesh-core-image", "private": true, "dependencies": { "mesh-core": "%s", "mesh-core-linux-arm64-gnu": "%s" } }\n' \
  "$version" "$version" >"$app/package.json"

make_layer() { # DIR OUT.tar.gz
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$1" -cf - . | gzip -n -6 >"$2"
}
make_layer "$work/base" "$work/base.tar.gz"
make_layer "$work/app" "$work/app.tar.gz"

manifest_digest="$(node "$repo_root/scripts/oci-layout.js" \
  --out "$out/$name" --version "$version" --epoch "$epoch" \
  --layer "$work/base.tar.gz=Debian 12 arm64 nodejs and libraries: $(paste -sd' ' "$work/debian-packages.txt")" \
  --layer "$work/app.tar.gz=npm install --cpu=arm64 mesh-core@$version mesh-core-linux-arm64-gnu@$version")"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$out/$name" -cf "$out/$name.tar" .
rm -rf "$work"
echo "oci-image: target/oci/$name (layout) and target/oci/$name.tar (archive), manifest $manifest_digest, tag $version" >&2
