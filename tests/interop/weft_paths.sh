#!/usr/bin/env bash
# Path choice between weft and a real tailscaled, and between two weftd, on one
# flat bridge with the testcontrol runner (its DERP: region 1 "test", TLS with
# InsecureForTests; its STUN). Node-to-node UDP is dropped and allowed with nft
# inside w1 (w2) only, so DERP (TCP to srv) always works.
#
#   1 relayed      UDP w1<->t1 dropped from the start: ICMP w1 -> t1 flows,
#                  `tailscale ping` says "via DERP(test)", no CurAddr on
#                  either side
#   2 switch       a long TCP stream t1 -> w1 while relayed; the drop is lifted:
#                  both sides' CurAddr becomes the peer's eth0:41641 within 30 s;
#                  the drop is put back: both fall back to DERP (CurAddr empty)
#                  within 15 s; the stream arrives byte for byte
#   3 direct       flat network: `tailscale ping` pongs via w1's direct address,
#                  ICMP both ways, 100 MB of TCP each way byte for byte, CurAddr
#                  still direct on both sides afterwards
#   4 weft-direct  w1 <-> w2 (two weftd): ICMP both ways and TCP each way over
#                  the direct path (CurAddr on both)
#   5 weft-switch  under a TCP stream w2 -> w1, UDP w1<->w2 is dropped: both
#                  weftd fall back to DERP within 15 s, ICMP and TCP flow there;
#                  the drop is lifted: direct again within 30 s; the stream
#                  arrives byte for byte
#
#   6 move         w1's eth0 address changes (.21 -> .31) and UDP w1<->t1 is
#                  dropped: weft's control and DERP connections, bound to the
#                  vanished address, are replaced: within 40 s control lists
#                  w1's new endpoint and ICMP w1 <-> t1 flows through DERP;
#                  w1 stays Running with its one register (the new control
#                  connection only polls the map; testcontrol's --authkey
#                  would refuse a second register)
#
#   tests/interop/weft_paths.sh
#   WEFT_BIN=target/debug/weft LAB_KEEP=1 WEFT_LAB_BULK_MB=10 tests/interop/weft_paths.sh
# Exit 0 only if every test passed; 77 if the lab cannot run here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"

# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
LAB_TIMEOUT=${LAB_TIMEOUT:-400}
BULK_MB=${WEFT_LAB_BULK_MB:-100}
weft_need_bin
lab_need_bins testcontrol-runner tailscaled tailscale
command -v nft >/dev/null || skip "nft (nftables) not found; needed to drop node-to-node UDP"
command -v python3 >/dev/null || skip "python3 not found; the TCP tests use it"
lab_init
weft_init

SRV=$LAB_SUBNET.1 T1=$LAB_SUBNET.11 W1=$LAB_SUBNET.21 W2=$LAB_SUBNET.22 W1_MOVED=$LAB_SUBNET.31
lab_add_ns srv "$SRV"
lab_add_ns t1 "$T1"
lab_add_ns w1 "$W1"
lab_add_ns w2 "$W2"
lab_block_udp w1 "$T1" || die "nft failed in w1"

# With --authkey testcontrol refuses every register without the key: weftd registers
# once and only polls the map again on its later connections (test 6 makes one).
start_testcontrol srv --authkey "tskey-weft-paths-$$"
start_weftd w1
start_weftd w2
start_tailscaled t1
wf_up w1 "$TC_URL" "$TC_AUTHKEY" 30 >/dev/null || die "weft up on w1 failed"
wf_up w2 "$TC_URL" "$TC_AUTHKEY" 30 >/dev/null || die "weft up on w2 failed"
ts_up t1 "$TC_URL" "$TC_AUTHKEY"
WKEY=$(wf_key w1)
W1IP=$(wf_ip4 w1) W2IP=$(wf_ip4 w2) TIP=$(ts_ip t1)
log "w1 $W1IP, w2 $W2IP, t1 $TIP"
head -c $((BULK_MB * 1024 * 1024)) /dev/urandom >"$LAB_DIR/bulk"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$LAB_DIR/small"

# ts_cur : tailscaled t1's CurAddr for w1 (empty while relayed).
ts_cur() { ts_status_json t1 | jq -r --arg k "$WKEY" '.Peer[] | select(.PublicKey == $k) | .CurAddr // ""'; }
# wf_cur NAME PEER_HOST : weftd NAME's CurAddr for the peer named PEER_HOST.
wf_cur() { wf_status "$1" | jq -r --arg h "$2" '.Peer[] | select(.HostName == $h) | .CurAddr // ""'; }
ts_cur_is() { [[ $(ts_cur) == "$1" ]]; }
wf_cur_is() { [[ $(wf_cur "$1" "$2") == "$3" ]]; }
both_direct() { ts_cur_is "$W1:41641" && wf_cur_is w1 t1 "$T1:41641"; }
wefts_direct() { wf_cur_is w1 w2 "$W2:41641" && wf_cur_is w2 w1 "$W1:41641"; }
wefts_relayed() { wf_cur_is w1 w2 "" && wf_cur_is w2 w1 ""; }
paths() { log "paths: t1->w1 '$(ts_cur)', w1->t1 '$(wf_cur w1 t1)', w1->w2 '$(wf_cur w1 w2)', w2->w1 '$(wf_cur w2 w1)'"; }

# ts_pong_via WANT : `tailscale ping` t1 -> w1 gets a pong "via WANT".
ts_pong_via() {
    local out
    out=$(ts t1 ping --c 2 --timeout 3s --until-direct=false "$W1IP" 2>&1 || true)
    log "tailscale ping w1: $(head -1 <<<"$out")"
    grep -q "^pong from w1 .* via $1 " <<<"$out"
}

kping() { lab_exec "$1" ping -c 3 -i 0.3 -W 2 "$2" >/dev/null; }

test_relayed() {
    wait_for "ICMP w1 -> t1 through DERP" 30 lab_exec w1 ping -c 1 -W 2 "$TIP" || die "no ICMP w1 -> t1"
    kping t1 "$W1IP" || die "ICMP t1 -> w1 lost packets"
    ts_pong_via 'DERP(test)' || die "tailscale ping did not go through DERP(test)"
    paths
    ts_cur_is "" || die "tailscaled has a CurAddr for w1 while UDP is dropped"
    wf_cur_is w1 t1 "" || die "weft has a CurAddr for t1 while UDP is dropped"
}

test_switch() {
    local t0
    stream_start t1 w1 "$W1IP" $((512 * 1024)) || die "stream did not start"
    sleep 3
    stream_alive || die "the stream died while relayed"
    lab_unblock_udp w1
    t0=$SECONDS
    wait_for "t1's CurAddr for w1 = $W1:41641" 30 ts_cur_is "$W1:41641" || { paths; die "tailscaled did not upgrade to direct"; }
    wait_for "w1's CurAddr for t1 = $T1:41641" $((t0 + 30 - SECONDS)) wf_cur_is w1 t1 "$T1:41641" || { paths; die "weft did not upgrade to direct"; }
    log "upgraded to direct on both sides after $((SECONDS - t0)) s"
    sleep 3
    lab_block_udp w1 "$T1"
    t0=$SECONDS
    wait_for "t1 falls back to DERP" 15 ts_cur_is "" || { paths; die "tailscaled kept its CurAddr after the drop"; }
    wait_for "w1 falls back to DERP" $((t0 + 15 - SECONDS)) wf_cur_is w1 t1 "" || { paths; die "weft kept its CurAddr after the drop"; }
    log "fell back to DERP on both sides after $((SECONDS - t0)) s"
    sleep 5
    stream_alive || die "the stream died after the fallback"
    stream_finish || die "the stream did not survive the path changes"
}

test_direct() {
    lab_unblock_udp w1 2>/dev/null || true
    wait_for "both sides direct" 30 both_direct || { paths; die "no direct path"; }
    ts_pong_via "$W1:41641" || die "tailscale ping did not pong via $W1:41641"
    kping w1 "$TIP" || die "ICMP w1 -> t1 lost packets"
    kping t1 "$W1IP" || die "ICMP t1 -> w1 lost packets"
    tcp_xfer t1 w1 "$W1IP" "$LAB_DIR/bulk" 5201 120 || die "TCP t1 -> w1 failed"
    tcp_xfer w1 t1 "$TIP" "$LAB_DIR/bulk" 5201 120 || die "TCP w1 -> t1 failed"
    paths
    both_direct || die "the direct path was lost during the transfers"
}

test_weft_direct() {
    wait_for "ICMP w1 -> w2" 20 lab_exec w1 ping -c 1 -W 2 "$W2IP" || die "no ICMP w1 -> w2"
    kping w2 "$W1IP" || die "ICMP w2 -> w1 lost packets"
    wait_for "w1 and w2 direct" 20 wefts_direct || { paths; die "no direct path between the two weftd"; }
    tcp_xfer w1 w2 "$W2IP" "$LAB_DIR/small" 5203 60 || die "TCP w1 -> w2 failed"
    tcp_xfer w2 w1 "$W1IP" "$LAB_DIR/small" 5203 60 || die "TCP w2 -> w1 failed"
}

test_weft_switch() {
    local t0
    stream_start w2 w1 "$W1IP" $((512 * 1024)) 5205 || die "stream did not start"
    lab_block_udp w2 "$W1" || die "nft failed in w2"
    t0=$SECONDS
    wait_for "w1 and w2 fall back to DERP" 15 wefts_relayed || { paths; die "the weftd kept a direct path"; }
    log "w1 and w2 fell back to DERP after $((SECONDS - t0)) s"
    kping w1 "$W2IP" || die "ICMP w1 -> w2 through DERP lost packets"
    kping w2 "$W1IP" || die "ICMP w2 -> w1 through DERP lost packets"
    tcp_xfer w1 w2 "$W2IP" "$LAB_DIR/small" 5204 60 || die "TCP w1 -> w2 through DERP failed"
    lab_unblock_udp w2
    t0=$SECONDS
    wait_for "w1 and w2 direct again" 30 wefts_direct || { paths; die "the weftd did not upgrade to direct again"; }
    log "w1 and w2 upgraded to direct after $((SECONDS - t0)) s"
    stream_finish || die "the stream did not survive the path changes"
}

w1_endpoint_is() {
    tc_admin srv GET 'nodes?full=1' | jq -e --arg ep "$1" '[.[] | select(.Hostinfo.Hostname == "w1") | select((.Endpoints // []) | index($ep))] | length == 1' >/dev/null
}

test_move() {
    local t0
    lab_bg w1 "$LAB_DIR/move-ping.log" ping -i 0.5 -c 120 "$TIP"
    lab_exec w1 ip addr flush dev eth0
    lab_exec w1 ip addr add "$W1_MOVED/24" dev eth0
    lab_exec w1 ip route add default via "$SRV"
    lab_block_udp w1 "$T1" || die "nft failed in w1"
    t0=$SECONDS
    wait_for "control lists w1's new endpoint" 40 w1_endpoint_is "$W1_MOVED:41641" \
        || die "control still has $(tc_admin srv GET 'nodes?full=1' | jq -c '[.[] | select(.Hostinfo.Hostname == "w1") | .Endpoints]')"
    log "control has w1's new endpoint after $((SECONDS - t0)) s"
    wait_for "ICMP w1 -> t1 through DERP from the new address" $((t0 + 40 - SECONDS)) lab_exec w1 ping -c 1 -W 1 "$TIP" \
        || die "no ICMP w1 -> t1 through DERP after the move"
    kping t1 "$W1IP" || die "ICMP t1 -> w1 lost packets after the move"
    log "relayed traffic flows $((SECONDS - t0)) s after the move"
    local registers
    registers=$(grep -c 'POST /machine/register.*hostname="w1"' "$LAB_DIR/testcontrol.log")
    [[ $registers == 1 ]] || die "w1 sent $registers registers; one login, then map polls only"
    wf_state_is w1 Running \
        || die "w1 after the move: $(wf_status w1 | jq -c '{BackendState, LoginError}')"
}

lab_test paths 1-relayed test_relayed
lab_test paths 2-switch test_switch
lab_test paths 3-direct test_direct
lab_test paths 4-weft-direct test_weft_direct
lab_test paths 5-weft-switch test_weft_switch
lab_test paths 6-move test_move
lab_results paths
