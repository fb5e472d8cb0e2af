#!/usr/bin/env bash
# weftd <-> wireguard-go interop, from a fresh start twice: once weftd sends
# the first packet (and so the handshake initiation), once wireguard-go does.
# nftables counters prove who initiated. Each round also pings both ways and
# moves XFER_MB MiB each way byte-for-byte.
#   WEFT_BIN  path to the weft binary (default target/release/weft)
#   XFER_MB   size of each TCP transfer in MiB (default 20)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 300
lab_need wireguard-go wg ping python3 ss nft
lab_weft_setup
XFER_MB=${XFER_MB:-20}

# round TAG INITIATOR(weft|wggo): weftd in namespace w$TAG, wireguard-go in g$TAG.
round() {
    local tag=$1 init=$2 w="w$1" g="g$1"
    local ifg wip gip
    ifg=$(lab_ifname "$tag")
    lab_log "=== round $tag: $init sends first ==="
    lab_ns_pair "$w" "$g"
    wip=LAB_IP_$w gip=LAB_IP_$g
    lab_weft_keys "$w"
    lab_wg_keys "$g"
    lab_hs_counter_add "$w"
    lab_hs_counter_add "$g"
    {
        lab_weft_conf "node-$w" "$w" "10.202.0.1/32" 41641
        lab_weft_conf_peer "node-$g" "$(lab_pub "$g")" "10.202.0.2/32" "${!gip}:51820"
    } >"$LAB_TMP/$w.conf"
    lab_weftd_up "$w" "$w" weft0 41641
    lab_wg_go_up "$g" "$ifg" 10.202.0.2/32 51820 "$g"
    lab_wg_peer "$g" "$ifg" "$(lab_pub "$w")" 10.202.0.1/32 "${!wip}:41641"

    [ "$(lab_wg_handshake "$g" "$ifg" "$(lab_pub "$w")")" = 0 ] || lab_fail "handshake before any traffic"
    [ "$(lab_hs_sent "$w")" -eq 0 ] || lab_fail "weftd sent a handshake initiation before any traffic"
    if [ "$init" = weft ]; then
        lab_ping_first "$w" 10.202.0.2
        [ "$(lab_hs_sent "$w")" -ge 1 ] || lab_fail "weftd did not send the handshake initiation"
        [ "$(lab_hs_sent "$g")" -eq 0 ] || lab_fail "wireguard-go initiated though weftd sent first"
    else
        lab_ping_first "$g" 10.202.0.1
        [ "$(lab_hs_sent "$g")" -ge 1 ] || lab_fail "wireguard-go did not send the handshake initiation"
        [ "$(lab_hs_sent "$w")" -eq 0 ] || lab_fail "weftd initiated though wireguard-go sent first"
    fi
    lab_ping "$w" 10.202.0.2 5
    lab_ping "$g" 10.202.0.1 5
    [ "$(lab_wg_handshake "$g" "$ifg" "$(lab_pub "$w")")" != 0 ] || lab_fail "wireguard-go shows no handshake"
    lab_wait_for 5 lab_weft_hs_set "$w" "$(lab_pub "$g")" || lab_fail "weftd's status shows no LastHandshake"
    lab_tcp_check "$w" "$g" 10.202.0.2 "$XFER_MB" 5201
    lab_tcp_check "$g" "$w" 10.202.0.1 "$XFER_MB" 5202
    local pid_var=WEFTD_PID_$w rc
    lab_kill "${!pid_var}" TERM 10; rc=$LAB_RC
    [ "$rc" -eq 0 ] || lab_fail "weftd exited $rc on SIGTERM"
}

round 1 weft
round 2 wggo
