#!/usr/bin/env bash
# Unpacks Debian 12's Node.js 18 (N-API 9) and the libraries it links for a foreign
# architecture into a sysroot, so qemu-user can run it:
#   qemu-aarch64 -L SYSROOT SYSROOT/usr/bin/node ...
# The packages are fetched with `apt-get download` and unpacked with `dpkg -x`; nothing
# is installed on the host. The sysroot is rebuilt only when the package set changes.
# It is also the base layer of the arm64 OCI image (scripts/oci-image.sh).
#
# Usage: scripts/sysroot.sh arm64|ppc64el   (aliases: aarch64, ppc64le, ppc64)
# Prints the sysroot's path as the last line of stdout.
# Cache: $MESH_CACHE_DIR (default: <repo>/.cache), subfolders debs/ARCH and sysroot/ARCH.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${MESH_CACHE_DIR:-$repo_root/.cache}"

# Node.js is the thing under test, so its version is pinned; the libraries it links
# take the archive's current version (recorded in the sysroot's manifest).
NODE_DEB_VERSION="${NODE_DEB_VERSION:-18.20.4+dfsg-1~deb12u2}"

case "${1:-}" in
  arm64 | aarch64) arch=arm64 qemu=qemu-aarch64 ;;
  ppc64el | ppc64le | ppc64) arch=ppc64el qemu=qemu-ppc64le ;;
  *)
    echo "usage: scripts/sysroot.sh arm64|ppc64el" >&2
    exit 2
    ;;
esac

command -v "$qemu" >/dev/null 2>&1 || {
  echo "sysroot: $qemu is missing; run scripts/setup-cross.sh (installs qemu-user)" >&2
  exit 1
}

arch_packages=(nodejs libnode108 libuv1 libssl3 libicu72 libbrotli1 libc-ares2
  libnghttp2-14 zlib1g libstdc++6 libgcc-s1 libc6)
# Debian's Node loads these bundled-elsewhere modules from /usr/share/nodejs.
all_packages=(node-acorn node-cjs-module-lexer node-undici)

# One apt-cache call for all candidates: NAME[:ARCH] VERSION per line.
candidates="$(apt-cache policy "${arch_packages[@]/%/:$arch}" "${all_packages[@]}" 2>/dev/null |
  awk '/^[^ ].*:$/ { name = substr($0, 1, length($0) - 1) } /^  Candidate:/ { print name, $2 }')"
candidate_version() {
  awk -v name="$1" '$1 == name { print $2; exit }' <<<"$candidates"
}

manifest=()
for pkg in "${arch_packages[@]}"; do
  case "$pkg" in
    nodejs | libnode108) version="$NODE_DEB_VERSION" ;;
    *) version="$(candidate_version "$pkg:$arch")" ;;
  esac
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "sysroot: apt knows no $pkg:$arch; run scripts/setup-cross.sh (adds the $arch architecture and updates apt)" >&2
    exit 1
  fi
  manifest+=("$pkg:$arch=$version")
done
for pkg in "${all_packages[@]}"; do
  version="$(candidate_version "$pkg")"
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "sysroot: apt knows no $pkg; run apt-get update" >&2
    exit 1
  fi
  manifest+=("$pkg=$version")
done
manifest_text="$(printf '%s\n' "${manifest[@]}")"

sysroot="$cache_dir/sysroot/$arch"
debs="$cache_dir/debs/$arch"
mkdir -p "$cache_dir/sysroot" "$debs"

# Tests for different architectures (and the OCI build) may ask for sysroots at once.
exec 9>"$cache_dir/sysroot/$arch.lock"
flock 9

if [ -f "$sysroot/.manifest" ] && [ "$(cat "$sysroot/.manifest")" = "$manifest_text" ]; then
  printf '%s\n' "$sysroot"
  exit 0
fi

echo "sysroot: downloading ${#manifest[@]} Debian packages for $arch" >&2
(
  cd "$debs"
  need=()
  for spec in "${manifest[@]}"; do
    name="${spec%%=*}"
    name="${name%%:*}"
    version="${spec#*=}"
    # apt-get download names files NAME_VERSION_ARCH.deb with the epoch colon as %3a.
    ls "${name}_${version/:/%3a}_"*.deb >/dev/null 2>&1 || need+=("$spec")
  done
  if [ ${#need[@]} -gt 0 ]; then
    # apt drops to the _apt user for downloads; as root into a root-owned folder it
    # falls back to downloading unsandboxed and says so on stderr.
    if ! apt-get download -q "${need[@]}" >apt-download.log 2>&1; then
      echo "sysroot: apt-get download failed for $arch ($(grep -m1 '^E:' apt-download.log || tail -1 apt-download.log)); NODE_DEB_VERSION=$NODE_DEB_VERSION may have left the archive" >&2
      exit 1
    fi
  fi
)

staging="$(mktemp -d "$cache_dir/sysroot/.$arch.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
for spec in "${manifest[@]}"; do
  name="${spec%%=*}"
  name="${name%%:*}"
  version="${spec#*=}"
  found=("$debs/${name}_${version/:/%3a}_"*.deb)
  dpkg -x "${found[0]}" "$staging"
done
printf '%s\n' "$manifest_text" >"$staging/.manifest"

# Prove the sysroot runs before publishing it.
if ! smoke="$("$qemu" -L "$staging" "$staging/usr/bin/node" -p 'process.arch + " napi " + process.versions.napi' 2>&1)"; then
  echo "sysroot: $arch Node.js does not start under $qemu: $smoke" >&2
  exit 1
fi
rm -rf "$sysroot"
mv "$staging" "$sysroot"
trap - EXIT
echo "sysroot: $arch ready ($smoke, node $NODE_DEB_VERSION)" >&2
printf '%s\n' "$sysroot"
