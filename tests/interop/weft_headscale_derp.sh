#!/usr/bin/env bash
# weft relayed through headscale's DERP (issue 8, item 4 and the DERP tests),
# with all node-to-node UDP from w1 dropped (nft in w1), so DERP is the only
# path between w1 and the others:
#
#   embedded  headscale's embedded DERP (region 999 "headscale") over plain
#             HTTP on :8080: weftd runs with WEFT_DEBUG_USE_DERP_HTTP=1,
#             tailscaled with TS_DEBUG_USE_DERP_HTTP=1
#   derper    headscale with a separate, pinned derper (region 900 "derper",
#             TLS, InsecureForTests)
#
#   1 relayed       w1 <-> t1 (tailscaled): ICMP both ways, `tailscale ping`
#                   pongs via DERP(<code>), TCP t1 -> w1 byte for byte, Relay
#                   <code> and no CurAddr on both sides
#   2 weft-relayed  w1 <-> w2 (two weftd): ICMP both ways, TCP w2 -> w1
#   3 restart       the DERP server is killed (SIGKILL: embedded = headscale
#                   itself, derper = the derper process; the kernel resets the
#                   connections), stays down 5 s (no ICMP w1 -> t1 then), and
#                   is started again with the same keys: ICMP
#                   w1 <-> t1 and w1 <-> w2 flows again within 30 s and weft
#                   reports no DERP health problem
#
#   tests/interop/weft_headscale_derp.sh embedded|derper
# Exit 0 only if every test passed; 77 if the lab cannot run here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"

SETUP=${1:-embedded}
# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
LAB_TIMEOUT=${LAB_TIMEOUT:-300}
weft_need_bin
case $SETUP in
embedded) lab_need_bins headscale tailscaled tailscale; CODE=headscale ;;
derper) lab_need_bins headscale derper tailscaled tailscale; CODE=derper ;;
*) die "usage: $0 embedded|derper" ;;
esac
command -v nft >/dev/null || skip "nft (nftables) not found; needed to force the DERP path"
command -v python3 >/dev/null || skip "python3 not found; the TCP tests use it"
lab_init
weft_init

T1=$LAB_SUBNET.11 W1=$LAB_SUBNET.21 W2=$LAB_SUBNET.22
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns t1 "$T1"
lab_add_ns w1 "$W1"
lab_add_ns w2 "$W2"
lab_block_udp w1 "$T1" "$W2" || die "nft failed in w1"

TS_ENV=()
if [[ $SETUP == embedded ]]; then
    start_headscale srv
    WF_ENVS=(WEFT_DEBUG_USE_DERP_HTTP=1)
    TS_ENV=(TS_DEBUG_USE_DERP_HTTP=1)
else
    start_headscale srv --derp-tls
fi
start_weftd w1
start_weftd w2
start_tailscaled t1 "${TS_ENV[@]}"
wf_up w1 "$HS_URL" "$HS_KEY" 30 >/dev/null || die "weft up on w1 failed"
wf_up w2 "$HS_URL" "$HS_KEY" 30 >/dev/null || die "weft up on w2 failed"
ts_up t1 "$HS_URL" "$HS_KEY"
WKEY=$(wf_key w1)
W1IP=$(wf_ip4 w1) W2IP=$(wf_ip4 w2) TIP=$(ts_ip t1)
log "w1 $W1IP, w2 $W2IP, t1 $TIP; DERP region $CODE"
DERP_DOWNTIME=5
head -c $((4 * 1024 * 1024)) /dev/urandom >"$LAB_DIR/data"

t1_view_of_w1() { ts_status_json t1 | jq -c --arg k "$WKEY" '.Peer[] | select(.PublicKey == $k)'; }
w1_view_of() { wf_status w1 | jq -c --arg h "$1" '.Peer[] | select(.HostName == $h)'; }
kping() { lab_exec "$1" ping -c 3 -i 0.3 -W 2 "$2" >/dev/null; }
weft_on_derp() { ! wf_status w1 | jq -e '(.Health // []) | map(select(test("DERP"))) | length > 0' >/dev/null; }

# reach A B_IP SECS : ICMP from A to B_IP within SECS, then 3 in a row.
reach() {
    wait_for "ICMP $1 -> $2" "$3" lab_exec "$1" ping -c 1 -W 1 "$2" || die "no ICMP $1 -> $2"
    kping "$1" "$2" || die "ICMP $1 -> $2 lost packets"
}

test_relayed() {
    local out
    reach w1 "$TIP" 30
    reach t1 "$W1IP" 10
    out=$(ts t1 ping --c 2 --timeout 3s --until-direct=false "$W1IP" 2>&1 || true)
    log "tailscale ping w1: $(head -1 <<<"$out")"
    grep -q "^pong from w1 .* via DERP($CODE) " <<<"$out" || die "no pong via DERP($CODE): $out"
    tcp_xfer t1 w1 "$W1IP" "$LAB_DIR/data" 5201 60 || die "TCP t1 -> w1 failed"
    log "t1's view of w1: $(t1_view_of_w1 | jq -c '{Relay, CurAddr}'), w1's of t1: $(w1_view_of t1 | jq -c '{Relay, CurAddr}')"
    [[ $(t1_view_of_w1 | jq -r .Relay) == "$CODE" && $(t1_view_of_w1 | jq -r '.CurAddr // ""') == "" ]] \
        || die "tailscaled does not see w1 relayed through $CODE"
    [[ $(w1_view_of t1 | jq -r .Relay) == "$CODE" && $(w1_view_of t1 | jq -r .CurAddr) == "" ]] \
        || die "weft does not see t1 relayed through $CODE"
}

test_weft_relayed() {
    reach w1 "$W2IP" 30
    reach w2 "$W1IP" 10
    tcp_xfer w2 w1 "$W1IP" "$LAB_DIR/data" 5202 60 || die "TCP w2 -> w1 failed"
    [[ $(w1_view_of w2 | jq -r .CurAddr) == "" ]] || die "weft claims a direct path to w2"
}

test_restart() {
    local t0
    if [[ $SETUP == embedded ]]; then
        lab_crash_pid "$HS_PID" headscale || die "could not kill headscale"
    else
        lab_crash_pid "$DERPER_PID" derper || die "could not kill derper"
    fi
    # Down for a while: the clients' reconnects fail and back off meanwhile.
    sleep "$DERP_DOWNTIME"
    ! lab_exec w1 ping -c 1 -W 1 "$TIP" >/dev/null || die "w1 reached t1 with the DERP server down: is UDP really dropped?"
    if [[ $SETUP == embedded ]]; then restart_headscale srv; else start_derper srv; fi
    t0=$SECONDS
    reach w1 "$TIP" 30
    reach t1 "$W1IP" 10
    reach w1 "$W2IP" 10
    reach w2 "$W1IP" 10
    log "relayed traffic resumed $((SECONDS - t0)) s after the DERP server came back"
    wait_for "weft reports no DERP problem" 10 weft_on_derp || die "weft's health: $(wf_status w1 | jq -c .Health)"
}

lab_test "hs-$SETUP" 1-relayed test_relayed
lab_test "hs-$SETUP" 2-weft-relayed test_weft_relayed
lab_test "hs-$SETUP" 3-restart test_restart
lab_results "hs-$SETUP"
