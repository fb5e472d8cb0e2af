#!/usr/bin/env bash
# Proves the interop harness: for each control server (our testcontrol runner
# and headscale), two real tailscaled nodes in their own network namespaces
#   1. register (tailscale up with an auth key),
#   2. list each other in `tailscale status --json`,
#   3. reach each other: `tailscale ping` (disco), `tailscale ping --tsmp`
#      (WireGuard) and kernel ICMP through tailscale0,
#   4. still reach each other over DERP once node<->node UDP is dropped (nft),
#   5. a node removed on the server disappears from the other's status.
# Exit 0 only if all of that happened for both servers.
#
#   tests/interop/smoke.sh                 # all three setups (builds first):
#                                          # testcontrol, headscale (embedded plain-HTTP
#                                          # DERP), headscale-derptls (TLS derper)
#   tests/interop/smoke.sh testcontrol     # one server
#   WEFT_INTEROP_NO_BUILD=1 ...            # don't run build.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

one() {
    local server=$1
    # shellcheck source=lib.sh
    source "$HERE/lib.sh"
    case $server in
    testcontrol) lab_need_bins testcontrol-runner tailscaled tailscale ;;
    headscale) lab_need_bins headscale tailscaled tailscale ;;
    headscale-derptls) lab_need_bins headscale derper tailscaled tailscale ;;
    esac
    command -v nft >/dev/null || skip "nft (nftables) not found; needed to force the DERP path"
    lab_init
    lab_add_ns srv "$LAB_SUBNET.1"
    lab_add_ns n1 "$LAB_SUBNET.11"
    lab_add_ns n2 "$LAB_SUBNET.12"

    local url key envs=() t0
    case $server in
    testcontrol)
        start_testcontrol srv --authkey "tskey-weft-interop-$$"
        url=$TC_URL key=$TC_AUTHKEY
        ;;
    headscale)
        start_headscale srv
        url=$HS_URL key=$HS_KEY
        envs=(TS_DEBUG_USE_DERP_HTTP=1) # headscale's embedded DERP is plain HTTP here
        ;;
    headscale-derptls)
        start_headscale srv --derp-tls # separate derper over TLS: no client knob needed
        url=$HS_URL key=$HS_KEY
        ;;
    *) die "unknown server $server" ;;
    esac

    start_tailscaled n1 "${envs[@]}"
    start_tailscaled n2 "${envs[@]}"
    t0=$SECONDS
    ts_up n1 "$url" "$key"
    ts_up n2 "$url" "$key"
    log "both nodes registered in $((SECONDS - t0))s"

    local ip1 ip2
    ip1=$(ts_ip n1) ip2=$(ts_ip n2)
    wait_for "n1 sees n2 ($ip2)" 30 ts_sees n1 "$ip2" || die "n1 never listed n2"
    wait_for "n2 sees n1 ($ip1)" 30 ts_sees n2 "$ip1" || die "n2 never listed n1"
    ts_status_json n1 >"$LAB_DIR/status-n1.json"
    log "n1 self: $(jq -r '"\(.Self.HostName) \(.Self.TailscaleIPs|join(",")) state=\(.BackendState)"' "$LAB_DIR/status-n1.json")"
    log "n1 peers:"; ts_peers n1 | sed 's/^/    /' >&2
    log "n2 peers:"; ts_peers n2 | sed 's/^/    /' >&2

    # Reachability over the tunnel.
    local out
    out=$(ts n1 ping --c 3 --timeout 3s --until-direct=false "$ip2") || die "tailscale ping n1->n2 failed: $out"
    log "n1 -> n2 disco: $(grep -m1 pong <<<"$out")"
    out=$(ts n2 ping --c 3 --timeout 3s --until-direct=false "$ip1") || die "tailscale ping n2->n1 failed: $out"
    log "n2 -> n1 disco: $(grep -m1 pong <<<"$out")"
    out=$(ts n1 ping --tsmp --c 5 --timeout 3s --until-direct=false "$ip2") || die "tailscale ping --tsmp n1->n2 failed: $out"
    log "n1 -> n2 tsmp:  $(grep -m1 pong <<<"$out")"
    out=$(lab_exec n1 ping -c 3 -W 2 "$ip2") || die "kernel ICMP n1->n2 over tailscale0 failed: $out"
    log "n1 -> n2 icmp:  $(grep -m1 'bytes from' <<<"$out")"
    ts n1 status | sed 's/^/    /' >&2

    # DERP path: drop node<->node UDP in n1 (tailscaled runs --netfilter-mode=off).
    lab_block_udp n1 "$LAB_SUBNET.12" || die "nft failed"
    out=$(ts n1 ping --c 3 --timeout 3s --until-direct=false "$ip2") || die "ping over DERP failed: $out"
    grep -q 'via DERP' <<<"$out" || die "expected a DERP pong once UDP is dropped, got: $out"
    log "n1 -> n2 with UDP dropped: $(grep -m1 pong <<<"$out")"
    t0=$SECONDS
    wait_for "kernel ICMP n1->n2 over DERP" 30 lab_exec n1 ping -c 1 -W 1 "$ip2" || die "no WireGuard traffic over DERP"
    log "n1 -> n2 icmp over DERP after $((SECONDS - t0))s; n1 status: $(ts n1 status | grep -w n2 | tr -s ' ')"
    lab_unblock_udp n1

    # Removal on the server side.
    t0=$SECONDS
    case $server in
    testcontrol)
        log "testcontrol nodes: $(tc_admin srv GET nodes | jq -c '[.[] | {id, hostname, addresses}]')"
        tc_admin srv POST "nodes/remove?name=n2" | jq -c .removed >&2 || die "runner removal failed"
        ;;
    headscale*)
        hs srv nodes list -o json | jq -c '[.[] | {id, name, given_name, ip_addresses, online}]' >&2
        local id
        id=$(hs srv nodes list -o json | jq -r '.[] | select(.given_name=="n2" or .name=="n2") | .id')
        [[ -n $id ]] || die "n2 not found in headscale nodes list"
        hs srv nodes delete -i "$id" --force >&2 || die "headscale nodes delete failed"
        ;;
    esac
    wait_for "n2 gone from n1's status" 20 ts_not_sees n1 "$ip2" || die "n2 still listed by n1 after removal"
    log "n2 vanished from n1's status $((SECONDS - t0))s after removal"

    case $server in
    testcontrol)
        testcontrol_alive || die "testcontrol runner crashed (see $LAB_DIR/testcontrol.log)"
        local stats; stats=$(tc_admin srv GET stats)
        log "runner stats: $(jq -c . <<<"$stats")"
        [[ $(jq .rejected <<<"$stats") == 0 ]] || die "runner rejected requests from real tailscaled"
        ;;
    headscale*) headscale_alive || die "headscale died" ;;
    esac
    log "PASS: $server"
}

if [[ ${1:-} == --one ]]; then
    LAB_SKIP_RC=77 one "$2"
    exit 0
fi

servers=("$@")
[[ ${#servers[@]} -gt 0 ]] || servers=(testcontrol headscale headscale-derptls)
if [[ ${WEFT_INTEROP_NO_BUILD:-0} != 1 ]]; then
    out=$("$HERE/build.sh") || { echo "$out"; exit 1; }
    # No Go: carry on with whatever binaries are cached; each server run
    # skips (exit 77) if its binaries are missing.
    if grep -q '^SKIP' <<<"$out"; then echo "$out"; fi
fi
# shellcheck source=per_server.sh
source "$HERE/per_server.sh"
run_each_server interop 600 "$0" "${servers[@]}"
[[ $RUN_FAIL == 0 ]]
