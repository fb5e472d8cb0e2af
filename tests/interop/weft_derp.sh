#!/usr/bin/env bash
# weft and a real tailscaled talking only through DERP: both registered with the
# testcontrol runner (its DERP: region 1 "test", TLS with InsecureForTests), all
# UDP between the two nodes dropped with nft, so no direct path exists.
#
#   1 relay-home     weft connects to the DERP region; tailscaled's status shows
#                    weft with Relay "test"
#   2 ping           kernel ICMP weft -> tailscaled through weft0, and
#                    tailscaled -> weft through tailscale0 (both directions);
#                    `weft ping` (disco) gets pongs "via DERP(test)", and with
#                    --until-direct (the default) ends with "direct connection
#                    not established" and exit 1, as `tailscale ping` does
#   3 tcp            1 MiB over TCP tailscaled -> weft, byte for byte (sha256)
#   4 status         weft's status shows tailscaled's Relay "test" and no
#                    CurAddr, its table 'active; relay "test"'; tailscaled's
#                    shows no CurAddr for weft (no UDP path was ever used)
#
#   tests/interop/weft_derp.sh
#   WEFT_BIN=target/debug/weft LAB_KEEP=1 tests/interop/weft_derp.sh
# Exit 0 only if every test passed; 77 if the lab cannot run here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"

LAB_SKIP_RC=77
weft_need_bin
lab_need_bins testcontrol-runner tailscaled tailscale
command -v nft >/dev/null || skip "nft (nftables) not found; needed to force the DERP path"
command -v python3 >/dev/null || skip "python3 not found; the TCP test uses it"
lab_init
weft_init

lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns t1 "$LAB_SUBNET.11"
lab_add_ns w1 "$LAB_SUBNET.21"
# No UDP between the nodes, in either namespace: only DERP (TCP to srv) is left.
lab_block_udp w1 "$LAB_SUBNET.11" || die "nft failed in w1"
lab_block_udp t1 "$LAB_SUBNET.21" || die "nft failed in t1"

start_testcontrol srv --authkey "tskey-weft-derp-$$"
start_weftd w1
start_tailscaled t1
wf_up w1 "$TC_URL" "$TC_AUTHKEY" 30 >/dev/null || die "weft up failed"
ts_up t1 "$TC_URL" "$TC_AUTHKEY"
WKEY=$(wf_key w1)
WIP=$(wf_ip4 w1)
TIP=$(ts_ip t1)
log "weft w1 $WKEY $WIP, tailscaled t1 $TIP"

t1_view_of_weft() { ts_status_json t1 | jq -c --arg k "$WKEY" '.Peer[] | select(.PublicKey == $k)'; }

weft_on_derp() { ! wf_status w1 | jq -e '.Health // [] | index("not connected to DERP")' >/dev/null; }
t1_sees_weft_relay() { [[ $(t1_view_of_weft | jq -r .Relay) == test ]]; }
wait_for_ts() {
    wait_for "kernel ICMP w1 -> t1 ($TIP) over weft0" 30 lab_exec w1 ping -c 1 -W 2 "$TIP"
}

test_relay_home() {
    wait_for "weft connected to DERP (no health warning)" 20 weft_on_derp \
        || die "weft reports 'not connected to DERP': $(wf_status w1 | jq -c .Health)"
    wait_for "t1 sees weft homed on region test" 30 t1_sees_weft_relay \
        || die "tailscaled does not see weft's home DERP: $(t1_view_of_weft)"
    log "t1's view of weft: $(t1_view_of_weft | jq -c '{HostName, Relay, CurAddr}')"
}

test_ping() {
    local out
    wait_for_ts || die "weft cannot reach tailscaled through DERP"
    out=$(lab_exec w1 ping -c 3 -W 2 "$TIP" 2>&1) || die "kernel ping w1 -> t1 lost packets: $out"
    log "w1 -> t1: $(grep -m1 'bytes from' <<<"$out")"
    out=$(lab_exec t1 ping -c 3 -W 2 "$WIP" 2>&1) || die "kernel ping t1 -> w1 failed: $out"
    log "t1 -> w1: $(grep -m1 'bytes from' <<<"$out")"
    out=$(ts t1 ping --icmp --c 2 --timeout 3s "$WIP" 2>&1) || die "tailscale ping --icmp w1 failed: $out"
    log "tailscale ping --icmp: $(head -1 <<<"$out")"
    out=$(wf w1 ping -c 2 --timeout 3s --until-direct=false t1 2>&1) || die "weft ping t1 failed: $out"
    log "weft ping t1: $out"
    [[ $(grep -Ec "^pong from t1 \($TIP\) via DERP\(test\) in [0-9.]+m?s\$" <<<"$out") == 2 ]] \
        || die "weft ping t1: want 2 pongs via DERP(test): $out"
    local rc=0
    out=$(wf w1 ping -c 2 --timeout 3s t1 2>&1) || rc=$?
    [[ $rc == 1 ]] && grep -q "direct connection not established" <<<"$out" \
        || die "weft ping --until-direct over DERP: exit $rc: $out"
}

test_tcp() {
    local src=$LAB_DIR/tcp.src dst=$LAB_DIR/tcp.dst
    head -c 1048576 /dev/urandom >"$src"
    lab_bg w1 "$LAB_DIR/tcp-server.log" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(60)
c, _ = s.accept(); c.settimeout(60)
with open(sys.argv[2], "wb") as f:
    while True:
        b = c.recv(65536)
        if not b: break
        f.write(b)
open(sys.argv[2] + ".done", "w").write("done")
' "$WIP" "$dst"
    sleep 1
    lab_exec t1 timeout 60 python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], 5001), timeout=30)
c.sendall(open(sys.argv[2], "rb").read()); c.close()
' "$WIP" "$src" || die "TCP send t1 -> w1 failed"
    wait_for "the whole transfer arrived" 30 test -s "$dst.done" \
        || die "received $(stat -c %s "$dst" 2>/dev/null || echo 0) of 1048576 bytes"
    [[ $(sha256sum <"$src") == "$(sha256sum <"$dst")" ]] || die "TCP transfer corrupted"
    log "1 MiB t1 -> w1 over TCP through DERP: sha256 matches"
}

test_status() {
    local peer
    peer=$(wf_status w1 | jq -c '.Peer[]')
    log "weft's view of t1: $(jq -c '{HostName, Relay, CurAddr, RxBytes, TxBytes}' <<<"$peer"), drops $(wf_status w1 | jq -c .Drops)"
    [[ $(jq -r .Relay <<<"$peer") == test ]] || die "weft shows Relay $(jq -r .Relay <<<"$peer"), want test"
    [[ $(jq -r .CurAddr <<<"$peer") == "" ]] || die "weft shows a CurAddr for t1 with UDP blocked: $peer"
    local row
    lab_exec w1 ping -c 1 -W 2 "$TIP" >/dev/null || die "no traffic w1 -> t1 before the status check"
    row=$(wf w1 status | grep -w t1)
    log "weft status: $row"
    grep -q 'active; relay "test"' <<<"$row" || die "weft status shows t1 as: $row"
    [[ $(t1_view_of_weft | jq -r '.CurAddr // ""') == "" ]] || die "tailscaled has a direct CurAddr for weft: $(t1_view_of_weft)"
    log "tailscale status: $(ts t1 status | grep -w w1 | tr -s ' ')"
}

results=() failed=0
run() {
    local name=$1 fn=$2 t0=$SECONDS rc=0
    log "=== derp: test $name"
    (set -euo pipefail; "$fn") || rc=$?
    if [[ $rc == 0 ]]; then
        results+=("RESULT derp $name PASS $((SECONDS - t0))s")
    else
        results+=("RESULT derp $name FAIL $((SECONDS - t0))s")
        failed=1
    fi
}
run 1-relay-home test_relay_home
run 2-ping test_ping
run 3-tcp test_tcp
run 4-status test_status
printf '%s\n' "${results[@]}"
[[ $failed == 0 ]] || die "some tests failed (logs in $LAB_DIR)"
log "PASS: derp"
