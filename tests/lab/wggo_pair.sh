#!/usr/bin/env bash
# wireguard-go <-> wireguard-go over a veth pair: ping both ways and a
# byte-for-byte TCP transfer (sha256). Proves the lab itself works.
#   XFER_MB   size of the TCP transfer in MiB (default 100)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 240
lab_need wireguard-go wg ping python3 ss nft
XFER_MB=${XFER_MB:-100}

lab_ns_pair a b
lab_wg_keys a
lab_wg_keys b
ifa=$(lab_ifname a) ifb=$(lab_ifname b)
lab_wg_go_up a "$ifa" 10.200.0.1/24 51820 a
lab_wg_go_up b "$ifb" 10.200.0.2/24 51820 b
lab_wg_peer a "$ifa" "$(lab_pub b)" 10.200.0.2/32 "$LAB_IP_b:51820"
lab_wg_peer b "$ifb" "$(lab_pub a)" 10.200.0.1/32 "$LAB_IP_a:51820"
lab_hs_counter_add a
lab_hs_counter_add b

# No traffic yet: no handshake.
[ "$(lab_wg_handshake a "$ifa" "$(lab_pub b)")" = 0 ] || lab_fail "handshake before any traffic"

lab_ping_first a 10.200.0.2
lab_ping a 10.200.0.2 5
lab_ping b 10.200.0.1 5
[ "$(lab_hs_sent a)" -ge 1 ] || lab_fail "a sent no handshake initiation"
[ "$(lab_hs_sent b)" -eq 0 ] || lab_fail "b initiated a handshake though a sent first"

lab_tcp_check a b 10.200.0.2 "$XFER_MB" 5201
lab_tcp_check b a 10.200.0.1 "$XFER_MB" 5202

# Traffic really crossed the tunnel: both peers count it.
rx=$(lab_x b wg show "$ifb" transfer | awk '{print $2}')
[ "$rx" -ge $((XFER_MB * 1024 * 1024)) ] || lab_fail "b's WireGuard rx counter too small ($rx)"
lab_log "b received $rx bytes through WireGuard"
