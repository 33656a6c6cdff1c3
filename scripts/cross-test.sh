#!/usr/bin/env bash
# Runs the engine's cargo tests built for a foreign architecture under qemu-user, with
# Debian's rustc 1.85 and cross gcc (.cargo/config.toml) and the Debian sysroot from
# scripts/sysroot.sh as qemu's library root.
#
# Usage: scripts/cross-test.sh [ppc64le|arm64] [extra cargo test arguments...]
#        (default ppc64le; e.g. scripts/cross-test.sh ppc64le -- --test-threads=1)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

arch="${1:-ppc64le}"
[ $# -gt 0 ] && shift
case "$arch" in
  ppc64le | ppc64el | ppc64) triple=powerpc64le-unknown-linux-gnu qemu=qemu-ppc64le deb=ppc64el gcc=powerpc64le-linux-gnu ;;
  arm64 | aarch64) triple=aarch64-unknown-linux-gnu qemu=qemu-aarch64 deb=arm64 gcc=aarch64-linux-gnu ;;
  *) echo "cross-test: unknown architecture $arch (ppc64le or arm64)" >&2; exit 2 ;;
esac

if [ "$(id -u)" -eq 0 ]; then scripts/setup-cross.sh >&2; else scripts/setup-cross.sh --check >&2; fi
sysroot="$(scripts/sysroot.sh "$deb" | tail -n1)"
upper="$(printf '%s' "$triple" | tr 'a-z-' 'A-Z_')"

echo "cross-test: cargo test -p mesh-engine --target $triple under $qemu" >&2
env RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="${MESH_CROSS_TARGET_DIR:-$repo_root/target/cross}" \
  "CARGO_TARGET_${upper}_RUNNER=$qemu -L $sysroot" \
  TARGET_CC="$gcc-gcc" TARGET_AR="$gcc-ar" \
  /usr/bin/cargo test --locked -p mesh-engine --target "$triple" "$@"
