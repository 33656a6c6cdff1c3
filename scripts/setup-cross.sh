#!/usr/bin/env bash
# Installs, from Debian 12's archive and at pinned versions, what cross-building the
# N-API addon for arm64 and ppc64le and running the results under qemu needs:
#   - rustc-web/cargo-web 1.85 (/usr/bin/rustc, the project's MSRV) with the Rust std
#     for amd64, arm64 and ppc64el (rustup cannot download targets on these machines),
#   - gcc cross linkers for aarch64 and powerpc64le (fallback linkers; release builds
#     link with the glibc 2.17 toolchain from @napi-rs/cross-toolchain),
#   - qemu-user, which runs the arm64/ppc64le Node.js and test binaries.
# Idempotent: when everything is installed at the pinned versions it changes nothing
# and does not touch the network. Facts behind the workarounds: shared/toolchain.md.
#
# Usage: scripts/setup-cross.sh [--check]
#   --check  only report; exit 1 with one line naming what is missing.
set -euo pipefail

# Pins. Override from the environment when Debian moves a version out of the archive.
RUST_DEB_VERSION="${RUST_DEB_VERSION:-1.85.0+dfsg3-1~deb12u3}"
# Multi-Arch: same libraries must have one version across architectures; this is the
# newest liblzma5 that exists for amd64, arm64 and ppc64el alike.
LZMA_DEB_VERSION="${LZMA_DEB_VERSION:-5.4.1-1+deb12u1}"
GCC_CROSS_DEB_VERSION="${GCC_CROSS_DEB_VERSION:-4:12.2.0-3}"
LIBC_CROSS_DEB_VERSION="${LIBC_CROSS_DEB_VERSION:-2.36-8cross1}"
QEMU_DEB_VERSION="${QEMU_DEB_VERSION:-1:7.2+dfsg-7+deb12u18+b3}"

FOREIGN_ARCHES=(arm64 ppc64el)
NATIVE_ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"

pinned_packages() {
  local v="$RUST_DEB_VERSION" arch
  printf '%s\n' "rustc-web=$v" "cargo-web=$v" "libstd-rust-web-dev=$v" "libstd-rust-web-1.85=$v"
  printf '%s\n' "liblzma5=$LZMA_DEB_VERSION"
  for arch in "${FOREIGN_ARCHES[@]}"; do
    printf '%s\n' "libstd-rust-web-dev:$arch=$v" "libstd-rust-web-1.85:$arch=$v" "liblzma5:$arch=$LZMA_DEB_VERSION"
  done
  printf '%s\n' "gcc-aarch64-linux-gnu=$GCC_CROSS_DEB_VERSION" "gcc-powerpc64le-linux-gnu=$GCC_CROSS_DEB_VERSION"
  # The cross gcc only recommends its C library; linking Rust binaries needs crt*.o.
  printf '%s\n' "libc6-dev-arm64-cross=$LIBC_CROSS_DEB_VERSION" "libc6-dev-ppc64el-cross=$LIBC_CROSS_DEB_VERSION"
  printf '%s\n' "qemu-user=$QEMU_DEB_VERSION"
}

# Prints the pinned packages that are not installed at their pinned version.
missing_packages() {
  local spec name want arch installed
  while IFS= read -r spec; do
    name="${spec%%=*}"
    want="${spec#*=}"
    # A name without an architecture means the native one (or `all`); dpkg-query lists
    # every installed architecture of a name, one line each.
    case "$name" in
      *:*) arch="${name#*:}" name="${name%%:*}" ;;
      *) arch="$NATIVE_ARCH" ;;
    esac
    # Captured first: with pipefail, `dpkg-query | grep -q` fails when grep exits early
    # and dpkg-query dies of SIGPIPE.
    installed="$(dpkg-query -W -f='${db:Status-Abbrev} ${Version} ${Architecture}\n' "$name" 2>/dev/null || true)"
    grep -Eqx "ii +$(printf '%s' "$want" | sed 's/[.+~^$]/\\&/g') ($arch|all)" <<<"$installed" || printf '%s\n' "$spec"
  done < <(pinned_packages)
}

missing_arches() {
  local arch foreign
  foreign="$(dpkg --print-foreign-architectures)"
  for arch in "${FOREIGN_ARCHES[@]}"; do
    grep -qx "$arch" <<<"$foreign" || printf '%s\n' "$arch"
  done
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-cross: this machine has no dpkg/apt; cross builds need Debian 12 (bookworm) packages, see README 'Building all platforms'" >&2
  exit 1
fi

mapfile -t todo < <(missing_packages)
mapfile -t todo_arches < <(missing_arches)
if [ ${#todo[@]} -eq 0 ] && [ ${#todo_arches[@]} -eq 0 ]; then
  echo "setup-cross: cross toolchain present (rustc-web $RUST_DEB_VERSION, arm64 + ppc64el std, cross gcc, qemu-user)"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "setup-cross: missing: ${todo_arches[*]/#/dpkg-arch:} ${todo[*]}; run scripts/setup-cross.sh as root" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-cross: missing ${todo_arches[*]/#/dpkg-arch:} ${todo[*]}; run scripts/setup-cross.sh as root (it uses dpkg and apt-get)" >&2
  exit 1
fi

for arch in "${todo_arches[@]}"; do
  dpkg --add-architecture "$arch"
done

# Debian's mirror serves a bookworm-security ppc64el index whose size does not match its
# Release file; apt then drops *every* new security index. ppc64el packages come from
# the main suite, so restrict the security suite to amd64 and arm64.
restrict_security_suite() {
  local deb822=/etc/apt/sources.list.d/debian.sources legacy=/etc/apt/sources.list
  if [ -f "$deb822" ] && grep -q 'bookworm-security' "$deb822" &&
    ! awk 'BEGIN { RS = "" } /(^|\n)Suites:[^\n]*bookworm-security/ { found = /(^|\n)Architectures:/ } END { exit !found }' "$deb822"; then
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         /(^|\n)Suites:[^\n]*bookworm-security/ && !/(^|\n)Architectures:/ { $0 = $0 "\nArchitectures: amd64 arm64" }
         { print }' "$deb822" >"$deb822.tmp"
    mv "$deb822.tmp" "$deb822"
  fi
  if [ -f "$legacy" ] && grep -Eq '^deb +[^[]*bookworm-security' "$legacy"; then
    sed -i -E 's/^deb +([^[][^ ]* +bookworm-security)/deb [arch=amd64,arm64] \1/' "$legacy"
  fi
}
restrict_security_suite

echo "setup-cross: apt-get update"
# A broken foreign index makes apt-get update exit non-zero while every index this
# script needs is fine; the install below is what must succeed.
apt-get update -qq || echo "setup-cross: apt-get update reported errors; continuing" >&2

echo "setup-cross: apt-get install ${todo[*]}"
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades "${todo[@]}" >/tmp/setup-cross-apt.log 2>&1; then
  echo "setup-cross: apt-get install failed (a pinned version may have left the archive; override RUST_DEB_VERSION/LZMA_DEB_VERSION/GCC_CROSS_DEB_VERSION/LIBC_CROSS_DEB_VERSION/QEMU_DEB_VERSION): $(grep -m1 '^E:' /tmp/setup-cross-apt.log || tail -1 /tmp/setup-cross-apt.log)" >&2
  exit 1
fi

mapfile -t still < <(missing_packages)
if [ ${#still[@]} -ne 0 ]; then
  echo "setup-cross: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "setup-cross: installed rustc-web $RUST_DEB_VERSION with arm64 + ppc64el std, cross gcc, qemu-user"
