#!/usr/bin/env bash
# Build the interop peers from pinned Go module versions into .cache/interop/bin/.
#
#   tests/interop/build.sh            # build what is missing or stale
#   tests/interop/build.sh --force    # rebuild everything
#   WEFT_INTEROP_SKIP_HEADSCALE=1 ... # skip the (slow) headscale build
#
# Idempotent: each artefact carries a stamp (pinned version + go version +,
# for our runner, a hash of its sources); it is rebuilt only when that changes.
# Exits 0 and prints "SKIP: ..." when no usable Go toolchain is present, so
# callers can treat the harness as unavailable rather than broken.
# The Go module and build caches are Go's own per-user ones (GOMODCACHE /
# GOCACHE), so a fresh checkout on a machine that built them before reuses
# them; only the binaries live under .cache/interop/.
set -euo pipefail

# ---- pins (see shared/interop/README.md; re-check with `go list -m -versions`)
TAILSCALE_VERSION=v1.102.3              # tailscale.com: tailscaled, tailscale, derper; also the runner's go.mod
HEADSCALE_VERSION=v0.29.2               # github.com/juanfont/headscale
GO_MIN=1.26.6                           # go line of tailscale.com@v1.102.3 (headscale v0.29.2 needs 1.26.4)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${WEFT_INTEROP_CACHE:-$REPO/.cache/interop}
BIN=$CACHE/bin
LOGS=$CACHE/logs
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

say() { printf '[interop-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
    echo "SKIP: interop build: 'go' not found on PATH (install Go >= $GO_MIN)"; exit 0
fi
GOV=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
ver_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" == "$2" ]]; }
if ! ver_ge "$GOV" "$GO_MIN"; then
    if [[ $(go env GOTOOLCHAIN) == local* ]]; then
        echo "SKIP: interop build: go $GOV < $GO_MIN and GOTOOLCHAIN=local (set GOTOOLCHAIN=auto to let go fetch go$GO_MIN from the module proxy)"; exit 0
    fi
    say "go $GOV < $GO_MIN: the go command will switch toolchains (GOTOOLCHAIN=$(go env GOTOOLCHAIN))"
fi

mkdir -p "$BIN" "$LOGS"
export CGO_ENABLED=0 GOFLAGS=-modcacherw
export GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)}
export GOCACHE=${GOCACHE:-$(go env GOCACHE)}
GOTOOLCHAIN=${GOTOOLCHAIN:-$(go env GOTOOLCHAIN)}
export GOTOOLCHAIN

# fresh DIR STAMP -> 0 if DIR/.stamp matches
fresh() { [[ $FORCE == 0 && -f $1/.stamp && "$(cat "$1/.stamp")" == "$2" ]]; }

# link NAME TARGET: stable name in $BIN pointing at the versioned build
link() { ln -sfn "$2" "$BIN/$1"; }

build_step() { # name dir stamp log cmd...
    local name=$1 dir=$2 stamp=$3 log=$4; shift 4
    if fresh "$dir" "$stamp"; then
        say "$name: up to date ($stamp)"; return 0
    fi
    say "$name: building ($stamp); log: $log"
    rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
    local t0=$SECONDS
    if ! "$@" >"$log" 2>&1; then
        say "$name: BUILD FAILED after $((SECONDS - t0))s; last lines of $log:"
        tail -n 30 "$log" >&2
        return 1
    fi
    rm -rf "$dir"; mv "$dir.tmp" "$dir"
    echo "$stamp" >"$dir/.stamp"
    say "$name: built in $((SECONDS - t0))s"
    echo "$name $((SECONDS - t0))s" >>"$LOGS/build-times.txt"
}

# 1. tailscaled, tailscale, derper
TSV=${TAILSCALE_VERSION#v}
TSDIR=$BIN/tailscale-$TAILSCALE_VERSION
ts_build() {
    GOBIN=$TSDIR.tmp go install -trimpath \
        -ldflags="-s -w -X tailscale.com/version.longStamp=$TSV-weft-interop -X tailscale.com/version.shortStamp=$TSV" \
        tailscale.com/cmd/tailscaled@"$TAILSCALE_VERSION" \
        tailscale.com/cmd/tailscale@"$TAILSCALE_VERSION" \
        tailscale.com/cmd/derper@"$TAILSCALE_VERSION"
}
build_step tailscale "$TSDIR" "tailscale.com@$TAILSCALE_VERSION go$GOV" "$LOGS/tailscale.log" ts_build
for b in tailscaled tailscale derper; do link "$b" "tailscale-$TAILSCALE_VERSION/$b"; done

# 2. our testcontrol runner (own module; go.mod pins tailscale.com)
RUNNER_SRC=$HERE/testcontrol-runner
if ! grep -Eq "^[[:space:]]*(require[[:space:]]+)?tailscale.com $TAILSCALE_VERSION\$" "$RUNNER_SRC/go.mod"; then
    say "testcontrol-runner/go.mod does not pin tailscale.com $TAILSCALE_VERSION; update it (go get tailscale.com@$TAILSCALE_VERSION && go mod tidy)"
    exit 1
fi
RHASH=$(cat "$RUNNER_SRC"/go.mod "$RUNNER_SRC"/go.sum "$RUNNER_SRC"/*.go | sha256sum | cut -c1-12)
RDIR=$BIN/testcontrol-runner-$RHASH
runner_build() {
    (cd "$RUNNER_SRC" && go build -mod=readonly -trimpath -ldflags="-s -w" -o "$RDIR.tmp/testcontrol-runner" .)
}
build_step testcontrol-runner "$RDIR" "runner-src-$RHASH tailscale.com@$TAILSCALE_VERSION go$GOV" "$LOGS/testcontrol-runner.log" runner_build
link testcontrol-runner "testcontrol-runner-$RHASH/testcontrol-runner"
for old in "$BIN"/testcontrol-runner-*; do # drop builds of older runner sources
    [[ -d $old && $old != "$RDIR" ]] && rm -rf "$old"
done

# 3. headscale (heaviest: ~400 MB module incl. test fixtures, modernc sqlite)
# Built from the wrapper module tests/interop/headscale-build (go.mod with a
# `tool` line + go.sum). Not `go install pkg@version`: that also asks the proxy
# for headscale's version list (deprecation check), which answers 403 here.
if [[ ${WEFT_INTEROP_SKIP_HEADSCALE:-0} == 1 ]]; then
    say "headscale: skipped (WEFT_INTEROP_SKIP_HEADSCALE=1)"
else
    HS_SRC=$HERE/headscale-build
    if ! grep -Eq "^[[:space:]]*(require[[:space:]]+)?github.com/juanfont/headscale $HEADSCALE_VERSION( // indirect)?\$" "$HS_SRC/go.mod"; then
        say "headscale-build/go.mod does not pin headscale $HEADSCALE_VERSION; edit its require line and run go mod tidy there"
        exit 1
    fi
    HSDIR=$BIN/headscale-$HEADSCALE_VERSION
    hs_build() {
        (cd "$HS_SRC" && go build -mod=readonly -trimpath -ldflags="-s -w" \
            -o "$HSDIR.tmp/headscale" github.com/juanfont/headscale/cmd/headscale)
    }
    HSHASH=$(cat "$HS_SRC"/go.mod "$HS_SRC"/go.sum | sha256sum | cut -c1-12)
    build_step headscale "$HSDIR" "headscale@$HEADSCALE_VERSION mod-$HSHASH go$GOV" "$LOGS/headscale.log" hs_build
    link headscale "headscale-$HEADSCALE_VERSION/headscale"
fi

say "binaries in $BIN:"
for l in "$BIN"/*; do
    [[ -L $l ]] && printf '  %s -> %s\n' "${l##*/}" "$(readlink "$l")" >&2
done
true
