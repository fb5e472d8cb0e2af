#!/usr/bin/env bash
# weft behind NATs (issue 8, item 5 and the NAT tests): the testcontrol runner
# (control, DERP, STUN) on the "public" lab bridge; every node behind its own
# NAT router namespace (lib.sh lab_add_router: nft masquerade, forwarding only
# for conntrack mappings):
#
#   r1 10.77.0.2 (port-preserving: endpoint-independent)  -> t1 192.168.1.11 tailscaled
#   r2 10.77.0.3 (port-preserving: endpoint-independent)  -> w1 192.168.2.21 weftd
#   r3 10.77.0.4 (port-preserving: endpoint-independent)  -> w2 192.168.3.22 weftd
#   r4 10.77.0.5 (masquerade fully-random: a new port for every destination)
#                                                          -> w3 192.168.4.23 weftd
#   no NAT: w4 10.77.0.24 weftd and t2 10.77.0.12 tailscaled, on the public
#           bridge itself
#
# The private LANs cannot reach each other: only the NATs' public addresses,
# learned through STUN, can carry a direct path.
#
#   1 stun         the NATs behave as configured: w1's STUN endpoint is
#                  r2's address with port 41641 kept; w3's has another port
#   2 eim-ts       w1 <-> t1 go direct through both NATs: tailscaled's
#                  CurAddr for w1 is r2's 10.77.0.3:41641, weft's for t1
#                  r1's 10.77.0.2:41641; ICMP both ways; TCP each way
#   3 eim-weft     w1 <-> w2 the same way (CurAddr = the other's NAT address)
#   4 edm-ts       w3 (behind the endpoint-dependent NAT) <-> t1: ICMP both
#                  ways and TCP each way. No direct path can exist here (w3's
#                  mapping toward t1 is not the port STUN saw, and t1's NAT
#                  drops what it did not ask for), so both sides must say so:
#                  no CurAddr, traffic through DERP
#   5 edm-weft     w3 <-> w1: the same between two weftd
#   6 public       w4 (no NAT) <-> t1 and w4 <-> w1 (behind NATs) go direct
#                  (CurAddr: w4's own address one way, the NAT's the other)
#   7 edm-public   w3 (endpoint-dependent NAT) <-> w4 (no NAT) go direct: w4
#                  learns w3's address toward it from w3's pings (not the port
#                  STUN saw) and its pong back proves it
#   8 edm-public-ts  w3 <-> t2 (tailscaled, no NAT): the same with tailscaled
#                  learning weft's address from weft's pings
#
#   tests/interop/weft_nat.sh
#   WEFT_BIN=target/debug/weft LAB_KEEP=1 tests/interop/weft_nat.sh
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
weft_need_bin
lab_need_bins testcontrol-runner tailscaled tailscale
command -v nft >/dev/null || skip "nft (nftables) not found; the NAT routers need it"
command -v python3 >/dev/null || skip "python3 not found; the TCP tests use it"
lab_init
weft_init

R1=$LAB_SUBNET.2 R2=$LAB_SUBNET.3 R3=$LAB_SUBNET.4 R4=$LAB_SUBNET.5
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_router r1 "$R1" 192.168.1
lab_add_router r2 "$R2" 192.168.2
lab_add_router r3 "$R3" 192.168.3
lab_add_router r4 "$R4" 192.168.4 fully-random
lab_add_behind t1 r1 192.168.1.11
lab_add_behind w1 r2 192.168.2.21
lab_add_behind w2 r3 192.168.3.22
lab_add_behind w3 r4 192.168.4.23
W4=$LAB_SUBNET.24 T2=$LAB_SUBNET.12
lab_add_ns w4 "$W4"
lab_add_ns t2 "$T2"

start_testcontrol srv --authkey "tskey-weft-nat-$$"
for w in w1 w2 w3 w4; do start_weftd "$w"; done
start_tailscaled t1
start_tailscaled t2
for w in w1 w2 w3 w4; do wf_up "$w" "$TC_URL" "$TC_AUTHKEY" 30 >/dev/null || die "weft up on $w failed"; done
ts_up t1 "$TC_URL" "$TC_AUTHKEY"
ts_up t2 "$TC_URL" "$TC_AUTHKEY"
W1KEY=$(wf_key w1) W3KEY=$(wf_key w3) W4KEY=$(wf_key w4)
W1IP=$(wf_ip4 w1) W2IP=$(wf_ip4 w2) W3IP=$(wf_ip4 w3) W4IP=$(wf_ip4 w4) TIP=$(ts_ip t1) T2IP=$(ts_ip t2)
log "w1 $W1IP, w2 $W2IP, w3 $W3IP, w4 $W4IP, t1 $TIP, t2 $T2IP"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$LAB_DIR/data"

# ts_cur KEY [NAME] : tailscaled NAME's (default t1) CurAddr for the node with KEY.
ts_cur() { ts_status_json "${2:-t1}" | jq -r --arg k "$1" '.Peer[] | select(.PublicKey == $k) | .CurAddr // ""'; }
wf_cur() { wf_status "$1" | jq -r --arg h "$2" '.Peer[] | select(.HostName == $h) | .CurAddr // ""'; }
paths() {
    log "paths: t1->w1 '$(ts_cur "$W1KEY")', w1->t1 '$(wf_cur w1 t1)', w1->w2 '$(wf_cur w1 w2)', w2->w1 '$(wf_cur w2 w1)'," \
        "t1->w3 '$(ts_cur "$W3KEY")', w3->t1 '$(wf_cur w3 t1)', w1->w3 '$(wf_cur w1 w3)', w3->w1 '$(wf_cur w3 w1)'"
}
t1_direct_to_w1() { [[ $(ts_cur "$W1KEY") == "$R2:41641" ]]; }
w1_direct_to_t1() { [[ $(wf_cur w1 t1) == "$R1:41641" ]]; }
wefts_direct() { [[ $(wf_cur w1 w2) == "$R3:41641" && $(wf_cur w2 w1) == "$R2:41641" ]]; }
public_direct() {
    [[ $(ts_cur "$W4KEY") == "$W4:41641" && $(wf_cur w4 t1) == "$R1:41641" \
        && $(wf_cur w4 w1) == "$R2:41641" && $(wf_cur w1 w4) == "$W4:41641" ]]
}
stun_v4() { wf "$1" netcheck --json | jq -r '.GlobalV4 // ""'; }
kping() { lab_exec "$1" ping -c 3 -i 0.3 -W 2 "$2" >/dev/null; }

# reach A B B_IP : ICMP A -> B (waiting for the first), then both ways.
reach() {
    wait_for "ICMP $1 -> $2" 30 lab_exec "$1" ping -c 1 -W 2 "$3" || die "no ICMP $1 -> $2"
    kping "$1" "$3" || die "ICMP $1 -> $2 lost packets"
}

test_stun() {
    local e1 e3
    e1=$(stun_v4 w1) e3=$(stun_v4 w3)
    log "STUN endpoints: w1 $e1, w3 $e3"
    [[ $e1 == "$R2:41641" ]] || die "w1's STUN endpoint is '$e1', want $R2:41641"
    [[ $e3 == "$R4:"* && $e3 != "$R4:41641" ]] || die "w3's STUN endpoint is '$e3', want $R4 with a random port"
}

test_eim_ts() {
    reach w1 t1 "$TIP"
    reach t1 w1 "$W1IP"
    wait_for "t1 direct to w1 via r2" 30 t1_direct_to_w1 || { paths; die "tailscaled has no direct path to w1"; }
    wait_for "w1 direct to t1 via r1" 30 w1_direct_to_t1 || { paths; die "weft has no direct path to t1"; }
    tcp_xfer t1 w1 "$W1IP" "$LAB_DIR/data" 5201 60 || die "TCP t1 -> w1 failed"
    tcp_xfer w1 t1 "$TIP" "$LAB_DIR/data" 5201 60 || die "TCP w1 -> t1 failed"
    paths
}

test_eim_weft() {
    reach w1 w2 "$W2IP"
    reach w2 w1 "$W1IP"
    wait_for "w1 and w2 direct through their NATs" 30 wefts_direct || { paths; die "no direct path w1 <-> w2"; }
    tcp_xfer w2 w1 "$W1IP" "$LAB_DIR/data" 5202 60 || die "TCP w2 -> w1 failed"
}

test_edm_ts() {
    reach w3 t1 "$TIP"
    reach t1 w3 "$W3IP"
    tcp_xfer t1 w3 "$W3IP" "$LAB_DIR/data" 5203 60 || die "TCP t1 -> w3 failed"
    tcp_xfer w3 t1 "$TIP" "$LAB_DIR/data" 5203 60 || die "TCP w3 -> t1 failed"
    paths
    [[ $(ts_cur "$W3KEY") == "" && $(wf_cur w3 t1) == "" ]] || die "a direct path is claimed through the endpoint-dependent NAT"
}

test_edm_weft() {
    reach w3 w1 "$W1IP"
    reach w1 w3 "$W3IP"
    tcp_xfer w1 w3 "$W3IP" "$LAB_DIR/data" 5204 60 || die "TCP w1 -> w3 failed"
    paths
    [[ $(wf_cur w1 w3) == "" && $(wf_cur w3 w1) == "" ]] || die "a direct path is claimed through the endpoint-dependent NAT"
}

test_public() {
    reach w4 t1 "$TIP"
    reach t1 w4 "$W4IP"
    reach w4 w1 "$W1IP"
    reach w1 w4 "$W4IP"
    wait_for "w4 direct with t1 and w1" 30 public_direct || { log "t1->w4 '$(ts_cur "$W4KEY")', w4->t1 '$(wf_cur w4 t1)', w4->w1 '$(wf_cur w4 w1)', w1->w4 '$(wf_cur w1 w4)'"; die "no direct path between the public node and the NATed ones"; }
    tcp_xfer t1 w4 "$W4IP" "$LAB_DIR/data" 5205 60 || die "TCP t1 -> w4 failed"
}

edm_public_direct() {
    local back; back=$(wf_cur w4 w3)
    [[ $(wf_cur w3 w4) == "$W4:41641" && $back == "$R4:"* && $back != "$(stun_v4 w3)" ]]
}

test_edm_public() {
    reach w3 w4 "$W4IP"
    reach w4 w3 "$W3IP"
    wait_for "w3 and w4 direct" 30 edm_public_direct || { log "w3->w4 '$(wf_cur w3 w4)', w4->w3 '$(wf_cur w4 w3)', w3's STUN endpoint $(stun_v4 w3)"; die "no direct path through the endpoint-dependent NAT to a public node"; }
    log "w3 -> w4 $(wf_cur w3 w4), w4 -> w3 $(wf_cur w4 w3) (w3's STUN endpoint $(stun_v4 w3))"
    tcp_xfer w4 w3 "$W3IP" "$LAB_DIR/data" 5206 60 || die "TCP w4 -> w3 failed"
}

edm_public_ts_direct() {
    local back; back=$(ts_cur "$W3KEY" t2)
    [[ $(wf_cur w3 t2) == "$T2:41641" && $back == "$R4:"* && $back != "$(stun_v4 w3)" ]]
}

test_edm_public_ts() {
    reach w3 t2 "$T2IP"
    reach t2 w3 "$W3IP"
    wait_for "w3 and t2 direct" 30 edm_public_ts_direct || { log "w3->t2 '$(wf_cur w3 t2)', t2->w3 '$(ts_cur "$W3KEY" t2)', w3's STUN endpoint $(stun_v4 w3)"; die "no direct path between w3 and t2"; }
    log "w3 -> t2 $(wf_cur w3 t2), t2 -> w3 $(ts_cur "$W3KEY" t2)"
    tcp_xfer t2 w3 "$W3IP" "$LAB_DIR/data" 5207 60 || die "TCP t2 -> w3 failed"
}

lab_test nat 1-stun test_stun
lab_test nat 2-eim-ts test_eim_ts
lab_test nat 3-eim-weft test_eim_weft
lab_test nat 4-edm-ts test_edm_ts
lab_test nat 5-edm-weft test_edm_weft
lab_test nat 6-public test_public
lab_test nat 7-edm-public test_edm_public
lab_test nat 8-edm-public-ts test_edm_public_ts
lab_results nat
