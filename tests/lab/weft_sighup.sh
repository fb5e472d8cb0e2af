#!/usr/bin/env bash
# weftd re-reads its config on SIGHUP. Three nodes on a bridge: a runs weftd,
# b and c run wireguard-go (a known-good peer, so failures point at weftd).
#   1. a knows only b: a<->b works, a->c does not.
#   2. add c to a's config, SIGHUP: a<->c works and has a table-52 route;
#      b's session survives (same LastHandshake on both ends) and a ping
#      stream to b running across the SIGHUP loses (almost) nothing.
#   3. remove c, SIGHUP: a->c fails, c's route is gone, b still unchanged.
#   WEFT_BIN  path to the weft binary (default target/release/weft)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 180
lab_need wireguard-go wg ping python3
lab_weft_setup

lab_ns_bridge a b c
lab_weft_keys a
lab_wg_keys b
lab_wg_keys c
ifb=$(lab_ifname b) ifc=$(lab_ifname c)

conf_a() {   # conf_a WITH_C(0|1)
    lab_weft_conf node-a a "10.205.0.1/32" 41641
    lab_weft_conf_peer node-b "$(lab_pub b)" "10.205.0.2/32" "$LAB_IP_b:51820"
    if [ "$1" = 1 ]; then
        lab_weft_conf_peer node-c "$(lab_pub c)" "10.205.0.3/32" "$LAB_IP_c:51820"
    fi
}
# Replace the config atomically, as an admin's editor or tool would.
write_conf_a() { conf_a "$1" >"$LAB_TMP/a.conf.new" && mv "$LAB_TMP/a.conf.new" "$LAB_TMP/a.conf"; }

write_conf_a 0
lab_weftd_up a a weft0 41641
pid=$WEFTD_PID_a
lab_wg_go_up b "$ifb" 10.205.0.2/32 51820 b
lab_wg_peer b "$ifb" "$(lab_pub a)" 10.205.0.1/32 "$LAB_IP_a:41641"
lab_wg_go_up c "$ifc" 10.205.0.3/32 51820 c
lab_wg_peer c "$ifc" "$(lab_pub a)" 10.205.0.1/32 "$LAB_IP_a:41641"

has_route() { lab_x a ip route show table 52 | grep -qE "^$1( |/32 )"; }

# 1. only b.
lab_ping_first a 10.205.0.2
lab_ping a 10.205.0.2 3
lab_ping b 10.205.0.1 3
lab_ping_fails a 10.205.0.3
! has_route 10.205.0.3 || lab_fail "route for c before c was configured"
lab_wait_for 5 lab_weft_hs_set a "$(lab_pub b)" || lab_fail "no LastHandshake for b in a's status"
hs_a=$(lab_weft_peer_field a "$(lab_pub b)" LastHandshake)
hs_b=$(lab_wg_handshake b "$ifb" "$(lab_pub a)")
lab_log "b's session: LastHandshake $hs_a (a's view), $hs_b (b's view)"

check_b_session() {
    local what=$1 now_a now_b
    now_a=$(lab_weft_peer_field a "$(lab_pub b)" LastHandshake) || lab_fail "$what: b vanished from a's status"
    now_b=$(lab_wg_handshake b "$ifb" "$(lab_pub a)")
    [ "$now_a" = "$hs_a" ] || lab_fail "$what: b's LastHandshake changed in a's status ($hs_a -> $now_a): session not kept"
    [ "$now_b" = "$hs_b" ] || lab_fail "$what: b saw a new handshake ($hs_b -> $now_b): session not kept"
    lab_ping a 10.205.0.2 3
    lab_log "$what: b's session kept (LastHandshake unchanged), traffic flows"
}

# A ping stream to b across the SIGHUP: 40 pings over ~4 s.
stream_start() {
    lab_x a timeout 20 ping -n -c 40 -i 0.1 -W 1 10.205.0.2 >"$LAB_TMP/stream.out" 2>&1 &
    STREAM_PID=$!
    lab_track "$STREAM_PID"
    sleep 1
}
stream_check() {
    wait "$STREAM_PID" || true
    local got
    got=$(sed -n 's/.* \([0-9][0-9]*\) received.*/\1/p' "$LAB_TMP/stream.out")
    [ "${got:-0}" -ge 38 ] || { cat "$LAB_TMP/stream.out" >&2; lab_fail "$1: ping stream to b lost too much: ${got:-0}/40"; }
    lab_log "$1: ping stream to b across SIGHUP: $got/40"
}

# 2. add c.
stream_start
write_conf_a 1
kill -HUP "$pid"
lab_wait_for 10 lab_weft_has_peer a "$(lab_pub c)" || lab_fail "c not in a's status 10s after SIGHUP"
kill -0 "$pid" 2>/dev/null || lab_fail "weftd died on SIGHUP"
lab_wait_for 5 has_route 10.205.0.3 || lab_fail "no table-52 route for c after SIGHUP"
lab_ping_first a 10.205.0.3
lab_ping a 10.205.0.3 3
lab_ping c 10.205.0.1 3
stream_check "add c"
check_b_session "after adding c"

# 3. remove c.
stream_start
write_conf_a 0
kill -HUP "$pid"
lab_wait_for 10 eval '! lab_weft_has_peer a "$(lab_pub c)"' || lab_fail "c still in a's status 10s after SIGHUP"
kill -0 "$pid" 2>/dev/null || lab_fail "weftd died on SIGHUP"
lab_wait_for 5 eval '! has_route 10.205.0.3' || lab_fail "table-52 route for c still there after removing c"
lab_ping_fails a 10.205.0.3
stream_check "remove c"
check_b_session "after removing c"

lab_kill "$pid" TERM 10; rc=$LAB_RC
[ "$rc" -eq 0 ] || lab_fail "weftd exited $rc on SIGTERM"
