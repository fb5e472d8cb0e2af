#!/usr/bin/env bash
# weftd's routing state: while it runs, table 52 has a route for every
# peer AllowedIPs prefix and `ip rule` has prefs 5210/5230/5250/5270; after
# SIGTERM (exit 0) all of it is gone. After SIGKILL (no chance to clean up),
# a restart must adopt/replace the stale rules (no duplicates) and a SIGTERM
# must again leave nothing behind. The same holds for weft's nftables table
# `inet weft` (tailnet sources only through the TUN); an nft that refuses it
# is a line in `weft status` while the routes still work.
#   WEFT_BIN  path to the weft binary (default target/release/weft)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 180
lab_need python3 wg nft
lab_weft_setup

lab_ns_pair a b          # b only hosts the (silent) peer endpoints
lab_weft_keys a
lab_wg_keys p1
lab_wg_keys p2
{
    lab_weft_conf node-a a "10.203.0.1/32, fd00:203::1/128" 41641
    lab_weft_conf_peer p1 "$(lab_pub p1)" "10.203.0.2/32, fd00:203::2/128" "$LAB_IP_b:51820"
    lab_weft_conf_peer p2 "$(lab_pub p2)" "10.203.0.3/32, 10.204.0.0/24" "$LAB_IP_b:51821"
} >"$LAB_TMP/a.conf"
prefixes="10.203.0.2 fd00:203::2 10.203.0.3 10.204.0.0/24"
prefs="5210 5230 5250 5270"

expect_present() {
    local what=$1 routes rules p n
    routes=$(lab_table52 a)
    rules=$(lab_weft_rules a)
    for p in $prefixes; do
        grep -qE "^(unicast )?$p( |/(32|128) )" <<<"$routes" ||
            lab_fail "$what: no table-52 route for $p; table 52 is:
$routes"
    done
    for p in $prefs; do
        n=$(lab_x a ip -4 rule show | grep -c "^$p:" || true)
        [ "$n" -ge 1 ] || lab_fail "$what: no IPv4 rule with pref $p; rules:
$rules"
        [ "$n" -eq 1 ] || lab_fail "$what: $n IPv4 rules with pref $p (duplicates); rules:
$rules"
        n=$(lab_x a ip -6 rule show | grep -c "^$p:" || true)
        [ "$n" -le 1 ] || lab_fail "$what: $n IPv6 rules with pref $p (duplicates)"
    done
    lab_log "$what: table 52 has $(wc -l <<<"$routes") routes, $(wc -l <<<"$rules") weft rules"
}

expect_firewall() {
    local what=$1 table
    table=$(lab_x a nft list table inet weft 2>&1) || lab_fail "$what: no nft table inet weft: $table"
    if ! grep -q 'iifname { "lo", "weft0" } accept' <<<"$table" ||
        ! grep -q 'ip saddr 100.64.0.0/10 counter packets [0-9]* bytes [0-9]* drop' <<<"$table"; then
        lab_fail "$what: table inet weft is not the spoofing filter for weft0:
$table"
    fi
}

expect_gone() {
    local what=$1 routes rules
    routes=$(lab_table52 a)
    rules=$(lab_weft_rules a)
    [ -z "$routes" ] || lab_fail "$what: table 52 not empty:
$routes"
    [ -z "$rules" ] || lab_fail "$what: weft's ip rules still there:
$rules"
    ! lab_x a ip link show dev weft0 >/dev/null 2>&1 || lab_fail "$what: TUN weft0 still exists"
    ! lab_x a nft list table inet weft >/dev/null 2>&1 || lab_fail "$what: nft table inet weft still there"
    lab_log "$what: table 52, rules, firewall table and TUN all gone"
}

expect_gone "before start"

# 1. start, check, SIGTERM, check.
lab_weftd_up a a weft0 41641
lab_wait_for 5 expect_present "running" >/dev/null 2>&1 || true
expect_present "running"
expect_firewall "running"
lab_kill "$WEFTD_PID_a" TERM 10; rc=$LAB_RC
[ "$rc" -eq 0 ] || lab_fail "weftd exited $rc on SIGTERM (want 0)"
expect_gone "after SIGTERM"

# 2. start, SIGKILL, restart, check, SIGTERM, check.
lab_weftd_up a a weft0 41641
lab_wait_for 5 expect_present "running" >/dev/null 2>&1 || true
expect_present "second run"
expect_firewall "second run"
lab_kill "$WEFTD_PID_a" KILL 5
lab_log "after SIGKILL, left behind: $(lab_weft_rules a | wc -l) rules, $(lab_table52 a | wc -l) routes"
lab_weftd_up a a weft0 41641
lab_wait_for 5 expect_present "restarted" >/dev/null 2>&1 || true
expect_present "restart after SIGKILL"
expect_firewall "restart after SIGKILL"
lab_kill "$WEFTD_PID_a" TERM 10; rc=$LAB_RC
[ "$rc" -eq 0 ] || lab_fail "restarted weftd exited $rc on SIGTERM (want 0)"
expect_gone "after SIGKILL, restart and SIGTERM"

# 3. an nft that refuses the table (as on a kernel without nftables): the
# routes still work, `weft status` says what is missing, SIGTERM cleans up.
mkdir -p "$LAB_TMP/refusing-nft"
cat >"$LAB_TMP/refusing-nft/nft" <<'NFT'
#!/bin/sh
echo "Error: Could not process rule: Operation not supported" >&2
exit 1
NFT
chmod 755 "$LAB_TMP/refusing-nft/nft"
PATH="$LAB_TMP/refusing-nft:$PATH" lab_weftd_up a a weft0 41641
lab_wait_for 5 expect_present "running without nft" >/dev/null 2>&1 || true
expect_present "running without nft"
status=$(timeout 5 "$WEFT" --socket "$LAB_TMP/a.sock" status || true)
grep -q "refused weft's firewall table.*Operation not supported" <<<"$status" ||
    lab_fail "weft status does not report the refused firewall table:
$status"
lab_log "weft status says: $(grep -o "routing: .*" <<<"$status")"
lab_kill "$WEFTD_PID_a" TERM 10; rc=$LAB_RC
[ "$rc" -eq 0 ] || lab_fail "weftd without nft exited $rc on SIGTERM (want 0)"
expect_gone "without nft, after SIGTERM"
