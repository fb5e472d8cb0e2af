#!/usr/bin/env bash
# Install what `make fuzz` and `make fuzz-smoke` need: a nightly toolchain (libFuzzer's
# sanitizer flags are nightly-only) and cargo-fuzz. Idempotent: each is installed only if
# missing, so a machine that already has them makes no network request.
set -euo pipefail

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
