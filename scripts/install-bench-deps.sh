#!/usr/bin/env bash
# Install everything the benchmark harness (bench/run.sh) needs on Debian 12:
# the test dependencies, the Go-built Tailscale peers of the tailnet rows, plus boringtun-cli, built once from crates.io with
# cargo and cached under <repo>/.cache/boringtun (override: BORINGTUN_ROOT).
# Idempotent: a second run does nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "install-bench-deps: must run as root (needs apt-get)" >&2
    exit 1
fi

"$here/install-test-deps.sh"
# tailscaled, tailscale and testcontrol for the tailnet rows (cached; a no-op once built).
bash "$repo/tests/interop/build.sh"

root=${BORINGTUN_ROOT:-$repo/.cache/boringtun}
bin=$root/bin/boringtun-cli
if [ -x "$bin" ]; then
    echo "install-bench-deps: boringtun-cli already built at $bin"
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "install-bench-deps: cargo not found; install a Rust toolchain (rustup) first" >&2
    exit 1
fi

echo "install-bench-deps: building boringtun-cli into $root (takes a few minutes)..."
mkdir -p "$root"
# CARGO_BUILD_JOBS may be set by the caller to be gentle on a shared machine.
cargo install --quiet --locked --root "$root" boringtun-cli
[ -x "$bin" ] || { echo "install-bench-deps: build finished but $bin missing" >&2; exit 1; }
echo "install-bench-deps: boringtun-cli ready at $bin"
