#!/usr/bin/env bash
# Lazy WireGuard configuration between two weftd: with WEFT_DEBUG_LAZY_IDLE=2
# an idle peer is trimmed (status --json InEngine false), and a single ping
# afterwards brings it back: that very first echo request is held while the
# handshake completes, delivered, and answered.
#   WEFT_BIN  path to the weft binary (default target/release/weft)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 120
lab_need ping python3
lab_weft_setup

lab_ns_pair a b
lab_weft_keys a
lab_weft_keys b
{
    lab_weft_conf node-a a "10.203.0.1/32" 41641
    lab_weft_conf_peer node-b "$(lab_pub b)" "10.203.0.2/32" "$LAB_IP_b:41642"
} >"$LAB_TMP/a.conf"
{
    lab_weft_conf node-b b "10.203.0.2/32" 41642
    lab_weft_conf_peer node-a "$(lab_pub a)" "10.203.0.1/32" "$LAB_IP_a:41641"
} >"$LAB_TMP/b.conf"

export WEFT_DEBUG_LAZY_IDLE=2
lab_weftd_up a a weft0 41641
lab_weftd_up b b weft0 41642

# lab_in_engine NODE PEER WANT: the peer's InEngine is WANT (true/false).
lab_in_engine() { [ "$(lab_weft_peer_field "$1" "$(lab_pub "$2")" InEngine)" = "$3" ]; }

lab_in_engine a b false || lab_fail "a peer never used should start trimmed"
lab_ping_first a 10.203.0.2
lab_in_engine a b true || lab_fail "a's peer b is not in the engine after traffic"
lab_wait_for 15 lab_in_engine a b false || lab_fail "a never trimmed the idle peer b"
lab_wait_for 15 lab_in_engine b a false || lab_fail "b never trimmed the idle peer a"
lab_log "both peers trimmed after 2 s idle"

# Exactly one echo: it wakes b on a, its handshake wakes a on b, and it must
# be answered.
out=$(lab_x a ping -n -c 1 -W 5 10.203.0.2 2>&1) || {
    printf '%s\n' "$out" >&2
    lab_fail "the first echo after trimming was not answered"
}
lab_log "the first echo after trimming was answered: $(grep -o 'time=[^ ]* ms' <<<"$out")"
lab_in_engine a b true || lab_fail "a's peer b is not back in the engine"
lab_in_engine b a true || lab_fail "b's peer a is not back in the engine"
held=$(lab_weft_status a | python3 -c 'import json,sys; print(json.load(sys.stdin)["Drops"].get("HandshakeQueueFull", 0))')
[ "$held" = 0 ] || lab_fail "a dropped $held packets while waking b"

for n in a b; do
    pid_var=WEFTD_PID_$n
    lab_kill "${!pid_var}" TERM 10; rc=$LAB_RC
    [ "$rc" -eq 0 ] || lab_fail "weftd $n exited $rc on SIGTERM"
done
lab_log "PASS"
