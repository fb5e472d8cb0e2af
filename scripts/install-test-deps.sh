#!/usr/bin/env bash
# Install what weft's lab tests (tests/lab/*.sh, tests/lab.rs), the platform
# checks (platform/check.sh, tests/platform.rs) and the benchmark harness
# need on Debian 12.  Idempotent: only packages that are
# missing are installed, and apt-get update runs only if something is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: must run as root (needs apt-get, and the lab needs network namespaces)" >&2
    exit 1
fi

# command that must exist  -> Debian package providing it
need=(
    "ip:iproute2"
    "wireguard-go:wireguard-go"
    "wg:wireguard-tools"
    "iperf3:iperf3"
    "mandoc:mandoc"
    "nft:nftables"
    "ping:iputils-ping"
    "ps:procps"
    "python3:python3"
    "sha256sum:coreutils"
    "timeout:coreutils"
    # platform/check.sh (tests/platform.rs): the service files and crate lists
    "make:make"
    "shellcheck:shellcheck"
    "mksh:mksh"
    "xmllint:libxml2-utils"
    "systemd-analyze:systemd"
)

missing=()
for pair in "${need[@]}"; do
    cmd=${pair%%:*} pkg=${pair#*:}
    # python3 must be the system one: the lab runs it inside `ip netns exec`
    # with a clean PATH, and pyenv shims are not guaranteed to be there.
    if [ "$cmd" = python3 ]; then
        [ -x /usr/bin/python3 ] && continue
    elif command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ]; then
        continue
    fi
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        continue
    fi
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-test-deps: all test dependencies present"
    exit 0
fi

echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-test-deps: apt-get failed" >&2
    exit 1
fi
echo "install-test-deps: done"
