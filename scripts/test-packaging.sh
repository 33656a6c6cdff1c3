#!/usr/bin/env bash
# `npm run test:packaging`: builds what the packaging suite needs, then runs it.
#   x64           release .node for linux-x64-gnu, packed tarballs installed in a fresh
#                 directory with no Rust on PATH: `npx mesh-proxy --version`, a proxied request
#   arm64         the same install for --cpu=arm64, run by Debian's arm64 Node 18 under
#                 qemu-aarch64: the binding loads and a real request is proxied
#   ppc64         the same for powerpc64le under qemu-ppc64le
#   oci           the arm64 OCI image layout: manifest/config and `mesh-proxy --version`
#                 from its unpacked rootfs under qemu-aarch64
#   cargo-ppc64le the engine's cargo tests built for powerpc64le, run under qemu-ppc64le
#
# Usage: scripts/test-packaging.sh [--only PART,PART...]   (default: every part)
# On a fresh machine, run as root: it installs the apt toolchain (scripts/setup-cross.sh).
# Prints how long each step took.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

parts="x64,arm64,ppc64,oci,cargo-ppc64le"
while [ $# -gt 0 ]; do
  case "$1" in
    --only) parts="${2:?--only needs a list}"; shift 2 ;;
    --only=*) parts="${1#--only=}"; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "test-packaging: unknown argument $1 (usage: scripts/test-packaging.sh [--only x64,arm64,ppc64,oci,cargo-ppc64le])" >&2; exit 2 ;;
  esac
done

want() { [[ ",$parts," == *",$1,"* ]]; }
for part in ${parts//,/ }; do
  case "$part" in
    x64 | arm64 | ppc64 | oci | cargo-ppc64le) ;;
    *) echo "test-packaging: unknown part $part (x64, arm64, ppc64, oci, cargo-ppc64le)" >&2; exit 2 ;;
  esac
done

timings=()
step() { # NAME COMMAND...
  local name="$1" started=$SECONDS
  shift
  echo "== test-packaging: $name" >&2
  "$@"
  timings+=("$(printf '%-34s %5ss' "$name" $((SECONDS - started)))")
}
# shellcheck disable=SC2317 # called by the EXIT trap
report() {
  local status=$?
  [ ${#timings[@]} -gt 0 ] && printf '\ntest-packaging timings:\n' >&2 && printf '  %s\n' "${timings[@]}" >&2
  [ "$status" -eq 0 ] || echo "test-packaging: failed (exit $status)" >&2
}
trap report EXIT

targets=()
want x64 && targets+=(x64)
{ want arm64 || want oci; } && targets+=(arm64)
want ppc64 && targets+=(ppc64)
tests=()
want x64 && tests+=(__test__/packaging/x64-tarball.test.ts)
want arm64 && tests+=(__test__/packaging/arm64-qemu.test.ts)
want ppc64 && tests+=(__test__/packaging/ppc64-qemu.test.ts)
want oci && tests+=(__test__/packaging/oci-arm64.test.ts)

if [ ${#targets[@]} -gt 0 ]; then
  list="$(IFS=,; echo "${targets[*]}")"
  step "build .node ($list)" scripts/build-all.sh --targets "$list"
  step "pack tarballs ($list)" scripts/pack.sh --platforms "$list"
fi
{ want arm64 || want oci; } && step "sysroot arm64" scripts/sysroot.sh arm64 >/dev/null
{ want ppc64 || want cargo-ppc64le; } && step "sysroot ppc64el" scripts/sysroot.sh ppc64el >/dev/null
want oci && step "OCI image (arm64)" scripts/oci-image.sh --skip-pack
if [ ${#tests[@]} -gt 0 ]; then
  step "vitest packaging suite" npx vitest run --config __test__/packaging/vitest.config.mts "${tests[@]}"
fi
want cargo-ppc64le && step "cargo test mesh-engine (ppc64le)" scripts/cross-test.sh ppc64le
exit 0
