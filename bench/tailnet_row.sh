#!/usr/bin/env bash
# bench/tailnet_row.sh IMPL OUT — one throughput row of bench/run.sh through a real
# tailnet: Tailscale's testcontrol (with its DERP and STUN) in one namespace, node a and
# node b in two more, all on the interop lab's bridge (tests/interop/lib.sh).
#
#   tailscaled             tailscaled <-> tailscaled, direct: the reference
#   weft-tailscaled        weftd (a) <-> tailscaled (b), direct (disco-proven UDP path)
#   weft-tailscaled-derp   the same pair with UDP between them dropped (nftables):
#                          every packet relayed through the DERP server
#
# Measured by bench/measure.sh like every other row; the DERP server's own CPU is not
# counted (it runs inside testcontrol). Exit 77 (with "[lab] SKIP: reason") when the
# Go-built peers are missing (tests/interop/build.sh builds them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
impl=$1 out=$2
# shellcheck source=../tests/interop/lib.sh
source "$here/../tests/interop/lib.sh"
# shellcheck source=../tests/interop/weft_lib.sh
source "$here/../tests/interop/weft_lib.sh"
# shellcheck source=measure.sh
source "$here/measure.sh"

# bench/run.sh reads a skip reason in this form.
skip() { printf '[lab] SKIP: %s\n' "$*" >&2; exit 77; }

case "$impl" in
tailscaled | weft-tailscaled | weft-tailscaled-derp) ;;
*) die "unknown tailnet row $impl" ;;
esac
[[ $impl == tailscaled ]] || weft_need_bin
lab_need_bins testcontrol-runner tailscaled tailscale
for tool in iperf3 nft python3; do
    command -v "$tool" >/dev/null || skip "$tool not found (scripts/install-test-deps.sh installs it)"
done
udp_tests=$(wc -w <<<"$BENCH_UDP_RATES")
LAB_TIMEOUT=$(((udp_tests + 2) * (BENCH_SECONDS + 20) + BENCH_SETTLE_SECONDS + BENCH_IDLE_SECONDS + 180))
lab_init
[[ $impl == tailscaled ]] || weft_init

lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns a "$LAB_SUBNET.21"
lab_add_ns b "$LAB_SUBNET.22"
if [[ $impl == *-derp ]]; then
    lab_block_udp a "$LAB_SUBNET.22" || die "nft failed in a"
    lab_block_udp b "$LAB_SUBNET.21" || die "nft failed in b"
fi
start_testcontrol srv --authkey "tskey-weft-bench-$$"

# daemon_pid LAUNCHER_PID: the daemon itself, not the `timeout` that lab_bg started.
daemon_pid() { pgrep -P "$1" | head -1; }

pids=()
if [[ $impl == tailscaled ]]; then
    start_tailscaled a
    ts_up a "$TC_URL" "$TC_AUTHKEY"
    pids+=("$(daemon_pid "$TSD_PID_a")")
    a_path() { ts_status_json a | jq -r '.Peer[] | select(.HostName == "b") | .CurAddr'; }
else
    WEFT_VERBOSE=0 start_weftd a
    wf_up a "$TC_URL" "$TC_AUTHKEY" 30 >/dev/null || die "weft up on a failed"
    pids+=("$(daemon_pid "$(cat "$(wf_dir a)/weftd.pid")")")
    a_path() { wf_status a | jq -r '.Peer[] | select(.HostName == "b") | .CurAddr'; }
fi
TS_VERBOSE=0 start_tailscaled b
ts_up b "$TC_URL" "$TC_AUTHKEY"
pids+=("$(daemon_pid "$TSD_PID_b")")
dst=$(ts_ip b)
wait_for "a sees b ($dst)" 30 lab_exec a ping -c 1 -W 1 "$dst" || die "a cannot reach b over the tailnet"

# The path the row claims: direct rows wait for a disco-proven address, the DERP row
# checks there is none.
if [[ $impl == *-derp ]]; then
    [[ -z $(a_path) ]] || die "UDP is dropped, yet a has a direct path to b: $(a_path)"
    path="relayed through DERP (UDP between the nodes dropped)"
else
    direct() { [[ -n $(a_path) ]]; }
    wait_for "a's direct path to b" 30 direct || die "no direct path from a to b"
    path="direct, $(a_path)"
fi
log "$impl: a -> b is $path"

version=$("$INTEROP_BIN/tailscale" version 2>/dev/null | head -1)
case "$impl" in
tailscaled) note="tailscaled $version <-> tailscaled, $path" ;;
*) note="weftd $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo '?') <-> tailscaled $version, $path" ;;
esac

bench_in_a() { lab_exec a "$@"; }
bench_iperf_server() {
    lab_bg b "$LAB_DIR/iperf3.log" iperf3 -s -p "$1"
    listening() { lab_exec b ss -Hltn "sport = :$1" | grep -q .; }
    wait_for "iperf3 server in b" 10 listening "$1" || die "iperf3 server did not start"
}
bench_log() { log "$@"; }
bench_fail() { die "$@"; }
BENCH_TMP=$LAB_DIR
measure_tunnel "$out" "$impl" "$note" "$dst" "${pids[@]}"
