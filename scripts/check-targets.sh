#!/usr/bin/env bash
# Type-check weft (every target: lib, bins, tests) for the non-Linux-glibc
# platforms it is meant to run on, from this Linux machine, and lint it with
# clippy there.
#
# How: Debian's rustc-web toolchain (rustc >= 1.96 with its std sources) and
# `cargo check -Zbuild-std` (RUSTC_BOOTSTRAP=1 unlocks the unstable flag on a
# stable compiler), so no per-target std has to be downloaded.  `check` never
# links, but build scripts that compile C (ring) still run a C compiler for
# the target: CC_<target>/AR_<target> point at two tiny shims that write an
# empty object file / an empty archive.  The C code itself is therefore not
# checked here — only the Rust.
#
# The target directory lives outside the checkout, in
# ${WEFT_CHECK_TARGETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft-check-targets},
# so a fresh clone (CI) reuses the compiled std and dependencies.
#
# Usage: scripts/check-targets.sh [target...]   (default: every target below)
set -euo pipefail

targets=(
    x86_64-unknown-freebsd
    x86_64-unknown-netbsd
    x86_64-unknown-openbsd
    x86_64-apple-darwin
    aarch64-apple-darwin
    x86_64-unknown-illumos
    aarch64-unknown-linux-musl
)
[ "$#" -gt 0 ] && targets=("$@")

packages=(rustc-web cargo-web rust-web-src rust-web-clippy)
rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
clippy_driver=/usr/bin/clippy-driver

install_toolchain() {
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "check-targets: missing Debian packages ${missing[*]} (run as root to install them)" >&2
        exit 1
    fi
    echo "check-targets: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Writes the fake C compiler and archiver into $1.
write_c_shims() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/cc" <<'SHIM'
#!/bin/sh
# check-only C compiler: writes an empty object wherever -o points.
out=
while [ "$#" -gt 0 ]; do
    case "$1" in
        -o) shift; out=$1 ;;
        -o*) out=${1#-o} ;;
    esac
    shift
done
[ -n "$out" ] && : >"$out"
exit 0
SHIM
    cat >"$dir/ar" <<'SHIM'
#!/bin/sh
# check-only archiver: writes an empty ar archive (first *.a argument).
for arg in "$@"; do
    case "$arg" in
        *.a) printf '!<arch>\n' >"$arg"; exit 0 ;;
    esac
done
exit 0
SHIM
    chmod 0755 "$dir/cc" "$dir/ar"
}

install_toolchain
cache=${WEFT_CHECK_TARGETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft-check-targets}
write_c_shims "$cache/bin"
cd "$(dirname "$0")/.."

# /usr/bin first: `cargo clippy` must find Debian's cargo-clippy, not a rustup proxy.
export PATH="/usr/bin:$PATH" RUSTC=$rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$cache/target"
unset RUSTUP_TOOLCHAIN RUSTC_WRAPPER
if [ -x "$clippy_driver" ]; then
    command=(clippy)
    lint=(-- -D warnings)
    done_message="type-check and are clippy-clean"
else
    echo "check-targets: clippy for the Debian toolchain (rust-web-clippy) is missing: type-checking only, NOT linting" >&2
    command=(check)
    lint=()
    done_message="type-check (clippy not run)"
fi

failed=()
for target in "${targets[@]}"; do
    env_name=${target//-/_}
    export "CC_$env_name=$cache/bin/cc" "AR_$env_name=$cache/bin/ar"
    start=$SECONDS
    echo "check-targets: cargo ${command[*]} --target $target"
    if "$cargo" "${command[@]}" -q --locked --all-targets -Zbuild-std=std,panic_abort \
        --target "$target" "${lint[@]}"; then
        echo "check-targets: $target ok ($((SECONDS - start))s)"
    else
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "check-targets: FAILED for ${failed[*]}" >&2
    exit 1
fi
echo "check-targets: all ${#targets[@]} targets $done_message"
