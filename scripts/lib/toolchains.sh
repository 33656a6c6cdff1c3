# shellcheck shell=bash
# Sourced by scripts/build-all.sh, which sets $cache_dir. Fetches, verifies and unpacks the linkers that give
# the release .node files an old glibc floor, into $cache_dir (default <repo>/.cache):
#   - @napi-rs/cross-toolchain-x64-target-{x86_64,aarch64} (npm): gcc 4.8.5 with a glibc
#     2.17 sysroot, for linux-x64-gnu and linux-arm64-gnu;
#   - zig (PyPI wheel `ziglang`) driven by cargo-zigbuild (PyPI wheel), for
#     linux-ppc64-gnu: napi-rs publishes no powerpc64le toolchain, and zig links against
#     glibc stubs of a chosen version (its oldest for powerpc64le is 2.19).
# Every download is pinned by version and sha256.
#
# `napi build --use-napi-cross` is not used: it needs @napi-rs/lzma's native binding,
# which npm skips below Node 22.20 (its engines field), and it asks for toolchain
# packages at the CLI's own version (1.0.5), which the registry does not have.

NAPI_CROSS_X86_64_VERSION=1.0.0
NAPI_CROSS_X86_64_SHA256=351f6ee9bc8e444dfb8ac6eddfe9daed02c9508399bd20c511e3f9e027d6e988
NAPI_CROSS_AARCH64_VERSION=1.0.3
NAPI_CROSS_AARCH64_SHA256=8ec59a37c2a8cac720d0f92e9c19b2940a427ef1f32ddde43e800a8043301e51
ZIG_VERSION=0.15.2
ZIG_WHEEL_SHA256=806316453d1ede7174ed3fefb8e5348154629089c3bb5fe812dfd0e172fac130
CARGO_ZIGBUILD_VERSION=0.24.0
CARGO_ZIGBUILD_WHEEL_SHA256=484412e39e4c6039474535ce97ee75a22bab22d58233056f8ec8a8f9034bb957

toolchain_fail() {
  echo "build-all: $*" >&2
  exit 1
}

check_sha256() { # FILE SHA256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [ "$got" = "$2" ] || toolchain_fail "$1 has sha256 $got, expected $2 (a changed upstream artifact; delete it and check before updating the pin)"
}

# ensure_napi_cross TRIPLE: prints the unpacked toolchain's root
# (bin/TRIPLE-gcc, TRIPLE/sysroot).
ensure_napi_cross() {
  local triple="$1" short version sha
  case "$triple" in
    x86_64-unknown-linux-gnu) short=x86_64 version=$NAPI_CROSS_X86_64_VERSION sha=$NAPI_CROSS_X86_64_SHA256 ;;
    aarch64-unknown-linux-gnu) short=aarch64 version=$NAPI_CROSS_AARCH64_VERSION sha=$NAPI_CROSS_AARCH64_SHA256 ;;
    *) toolchain_fail "no napi-rs cross toolchain for $triple" ;;
  esac
  local root="${cache_dir:?}/napi-cross/$triple-$version"
  if [ -x "$root/bin/$triple-gcc" ] && [ -f "$root/.complete" ]; then
    printf '%s\n' "$root"
    return
  fi
  local pkg="@napi-rs/cross-toolchain-x64-target-$short"
  local tgz="$cache_dir/napi-cross/napi-rs-cross-toolchain-x64-target-$short-$version.tgz"
  mkdir -p "$cache_dir/napi-cross"
  if [ ! -f "$tgz" ]; then
    echo "build-all: downloading $pkg@$version (gcc + glibc 2.17 sysroot) from the npm registry" >&2
    (cd "$cache_dir/napi-cross" && npm pack --silent "$pkg@$version" >/dev/null) ||
      toolchain_fail "npm pack $pkg@$version failed (is the npm registry reachable?)"
  fi
  check_sha256 "$tgz" "$sha"
  rm -rf "$root"
  mkdir -p "$root"
  tar -xzOf "$tgz" "package/$triple.tar.xz" | xz -dc | tar -x -C "$root" ||
    toolchain_fail "could not unpack $tgz (needs xz-utils)"
  touch "$root/.complete"
  printf '%s\n' "$root"
}

# ensure_zig: prints a folder holding `zig` and `cargo-zigbuild`, for PATH.
ensure_zig() {
  local root="${cache_dir:?}/zig/$ZIG_VERSION-zigbuild-$CARGO_ZIGBUILD_VERSION"
  if [ -x "$root/bin/zig" ] && [ -x "$root/bin/cargo-zigbuild" ]; then
    printf '%s\n' "$root/bin"
    return
  fi
  if ! python3 -m pip --version >/dev/null 2>&1; then
    toolchain_fail "python3 with pip is needed to fetch zig $ZIG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION from PyPI (apt-get install python3-pip)"
  fi
  local wheels="$cache_dir/zig/wheels"
  mkdir -p "$wheels"
  local req
  req="$(mktemp)"
  printf '%s\n' \
    "ziglang==$ZIG_VERSION --hash=sha256:$ZIG_WHEEL_SHA256" \
    "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION --hash=sha256:$CARGO_ZIGBUILD_WHEEL_SHA256" >"$req"
  echo "build-all: downloading zig $ZIG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION wheels from PyPI" >&2
  # The wheels are plain zip files holding static x86_64 binaries: unpack, no install.
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_12_x86_64 --platform manylinux_2_5_x86_64 \
    --require-hashes -r "$req" -d "$wheels" >&2 ||
    toolchain_fail "pip download of zig/cargo-zigbuild failed (is PyPI reachable?)"
  rm -f "$req"
  rm -rf "$root"
  mkdir -p "$root/bin"
  python3 - "$wheels" "$root" "$ZIG_VERSION" "$CARGO_ZIGBUILD_VERSION" <<'PY' || toolchain_fail "could not unpack the zig wheels"
import glob, os, sys, zipfile
wheels, root, zig_version, zigbuild_version = sys.argv[1:]
zipfile.ZipFile(glob.glob(f"{wheels}/ziglang-{zig_version}-*.whl")[0]).extractall(root)
with zipfile.ZipFile(glob.glob(f"{wheels}/cargo_zigbuild-{zigbuild_version}-*.whl")[0]) as wheel:
    with open(f"{root}/bin/cargo-zigbuild", "wb") as out:
        out.write(wheel.read(f"cargo_zigbuild-{zigbuild_version}.data/scripts/cargo-zigbuild"))
os.chmod(f"{root}/ziglang/zig", 0o755)
os.chmod(f"{root}/bin/cargo-zigbuild", 0o755)
os.symlink("../ziglang/zig", f"{root}/bin/zig")
PY
  printf '%s\n' "$root/bin"
}
