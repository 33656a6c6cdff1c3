#!/usr/bin/env bash
# `npm run build:all`: builds the release N-API addon for every platform package
#   linux-x64-gnu    x86_64-unknown-linux-gnu       glibc >= 2.17 (napi-rs gcc toolchain)
#   linux-arm64-gnu  aarch64-unknown-linux-gnu      glibc >= 2.17 (napi-rs gcc toolchain)
#   linux-ppc64-gnu  powerpc64le-unknown-linux-gnu  glibc >= 2.19 (zig via cargo-zigbuild)
# into npm/<platform>/mesh-core.<platform>.node, with Debian's rustc 1.85 (the MSRV),
# fat LTO and stripped symbols ([profile.release] in Cargo.toml). It then checks each
# file's ELF machine and glibc symbol versions and prints its size and glibc floor.
#
# Usage: scripts/build-all.sh [--targets x64,arm64,ppc64]
# On a fresh machine it installs the apt toolchain (scripts/setup-cross.sh, as root)
# and downloads the pinned linkers into .cache/ (scripts/lib/toolchains.sh).
# Cargo output goes to target/cross (or $MESH_CROSS_TARGET_DIR) so it neither waits on
# nor invalidates the host build in target/.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${MESH_CACHE_DIR:-$repo_root/.cache}"
cd "$repo_root"
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib/toolchains.sh
. "$repo_root/scripts/lib/toolchains.sh"

targets="x64,arm64,ppc64"
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets="${2:?--targets needs a list, e.g. x64,arm64}"; shift 2 ;;
    --targets=*) targets="${1#--targets=}"; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "build-all: unknown argument $1 (usage: scripts/build-all.sh [--targets x64,arm64,ppc64])" >&2; exit 2 ;;
  esac
done

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] ||
  toolchain_fail "cross builds need a Linux x86_64 host (the pinned toolchains are x86_64 binaries); this is $(uname -s)-$(uname -m)"
for tool in node npm xz readelf; do
  command -v "$tool" >/dev/null 2>&1 || toolchain_fail "$tool is missing (node/npm: Node.js >= 18.17; xz: xz-utils; readelf: binutils)"
done

# Debian's rustc-web 1.85 with the arm64/ppc64el std, cross gcc and qemu-user.
if [ "$(id -u)" -eq 0 ]; then
  "$repo_root/scripts/setup-cross.sh" >&2
else
  "$repo_root/scripts/setup-cross.sh" --check >&2
fi
RUSTC=/usr/bin/rustc
CARGO=/usr/bin/cargo
export RUSTC

target_dir="${MESH_CROSS_TARGET_DIR:-$repo_root/target/cross}"
stage_dir="$target_dir/napi-out"
report="$target_dir/build-report.tsv"
mkdir -p "$stage_dir"
: >"$report.tmp"
# Rows of platforms not rebuilt now stay in the report.
[ -f "$report" ] && cp "$report" "$report.tmp"

# Highest GLIBC_x.y symbol version the file needs (readelf reads any architecture).
glibc_floor() {
  readelf --dyn-syms --wide "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1
}

version_le() { # A B: A <= B
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}

build_target() {
  local name="$1" triple platform machine max_glibc napi_target mode toolchain
  case "$name" in
    x64) triple=x86_64-unknown-linux-gnu platform=linux-x64-gnu machine='X86-64' max_glibc=2.17 ;;
    arm64) triple=aarch64-unknown-linux-gnu platform=linux-arm64-gnu machine='AArch64' max_glibc=2.17 ;;
    ppc64) triple=powerpc64le-unknown-linux-gnu platform=linux-ppc64-gnu machine='PowerPC64' max_glibc=2.19 ;;
    *) echo "build-all: unknown target $name (known: x64, arm64, ppc64)" >&2; exit 2 ;;
  esac
  [ -d "/usr/lib/rustlib/$triple/lib" ] ||
    toolchain_fail "the Rust std for $triple is missing (/usr/lib/rustlib/$triple); run scripts/setup-cross.sh as root"

  local -a env_vars=("RUSTC=$RUSTC" "CARGO_TARGET_DIR=$target_dir")
  local -a napi_args=(build --platform --release --js index.js --dts index.d.ts
    --manifest-path crates/binding/Cargo.toml --package-json-path package.json
    --output-dir "$stage_dir/$platform")
  local upper
  upper="$(printf '%s' "$triple" | tr 'a-z-' 'A-Z_')"
  case "$name" in
    x64 | arm64)
      toolchain="$(ensure_napi_cross "$triple")"
      local gcc="$toolchain/bin/$triple-gcc"
      # The same variables `napi build --use-napi-cross` would set.
      env_vars+=("CARGO=$CARGO" "PATH=$toolchain/bin:/usr/bin:$PATH"
        "CARGO_TARGET_${upper}_LINKER=$gcc" "TARGET_CC=$gcc" "TARGET_CXX=$toolchain/bin/$triple-g++"
        "TARGET_AR=$toolchain/bin/$triple-ar" "TARGET_RANLIB=$toolchain/bin/$triple-ranlib"
        "TARGET_SYSROOT=$toolchain/$triple/sysroot")
      # gcc 4.8 predates __ARM_ARCH on aarch64 (ACLE support came in 4.9); ring's
      # assembly refuses to build without it. ARMv8-A is what aarch64 means.
      [ "$name" = arm64 ] && env_vars+=("CFLAGS_aarch64_unknown_linux_gnu=-D__ARM_ARCH=8")
      napi_target="$triple"
      mode="gcc $("$gcc" -dumpversion), glibc 2.17 sysroot"
      ;;
    ppc64)
      toolchain="$(ensure_zig)"
      # cargo-zigbuild runs `cargo` from PATH: Debian's 1.85 must come first.
      env_vars+=("PATH=$toolchain:/usr/bin:$PATH")
      napi_target="$triple.$max_glibc"
      napi_args+=(--cross-compile)
      mode="zig $ZIG_VERSION, glibc $max_glibc stubs"
      ;;
  esac

  echo "build-all: $platform ($triple, $mode)" >&2
  local started=$SECONDS
  rm -f "$stage_dir/$platform/mesh-core.$platform.node"
  env "${env_vars[@]}" "$repo_root/node_modules/.bin/napi" "${napi_args[@]}" --target "$napi_target" -- --locked >&2
  local seconds=$((SECONDS - started))

  local built="$stage_dir/$platform/mesh-core.$platform.node"
  [ -f "$built" ] || toolchain_fail "napi build for $triple produced no $built"
  local header
  header="$(readelf -h "$built")"
  grep -q "Machine:.*$machine" <<<"$header" ||
    toolchain_fail "$built is not a $machine ELF file: $(grep Machine: <<<"$header")"
  local floor
  floor="$(glibc_floor "$built")"
  version_le "$floor" "$max_glibc" ||
    toolchain_fail "$built needs GLIBC_$floor, above the $max_glibc this target promises"
  mkdir -p "npm/$platform" "$stage_dir/loader"
  cp "$built" "npm/$platform/mesh-core.$platform.node"
  # The JS loader and type definitions napi generated with this build: the same for
  # every platform; scripts/pack.sh puts them in the root package.
  cp "$stage_dir/$platform/index.js" "$stage_dir/$platform/index.d.ts" "$stage_dir/loader/"
  sed -i "/^$platform\t/d" "$report.tmp"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$platform" "$triple" "$(stat -c %s "$built")" "$floor" "$seconds" "$mode" >>"$report.tmp"
}

IFS=',' read -r -a target_list <<<"$targets"
for name in "${target_list[@]}"; do
  build_target "$name"
done
sort "$report.tmp" >"$report"
rm -f "$report.tmp"

printf '\n%-16s %-31s %10s %7s %6s  %s\n' platform triple bytes glibc secs toolchain
while IFS=$'\t' read -r platform triple bytes floor seconds mode; do
  printf '%-16s %-31s %10s %7s %6s  %s\n' "$platform" "$triple" "$bytes" "$floor" "$seconds" "$mode"
done <"$report"
echo "build-all: wrote npm/<platform>/mesh-core.<platform>.node; report in target/cross/build-report.tsv"
