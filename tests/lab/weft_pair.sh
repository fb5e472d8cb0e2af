#!/usr/bin/env bash
# weftd <-> weftd over a veth pair: ping both ways (IPv4 and IPv6), a
# byte-for-byte TCP transfer each way, and status --json sanity.
#   WEFT_BIN  path to the weft binary (default target/release/weft)
#   XFER_MB   size of the TCP transfer in MiB (default 100)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lab_init 300
lab_need ping python3 ss
lab_weft_setup
XFER_MB=${XFER_MB:-100}

lab_ns_pair a b
lab_weft_keys a
lab_weft_keys b
{
    lab_weft_conf node-a a "10.201.0.1/32, fd00:201::1/128" 41641
    lab_weft_conf_peer node-b "$(lab_pub b)" "10.201.0.2/32, fd00:201::2/128" "$LAB_IP_b:41642"
} >"$LAB_TMP/a.conf"
{
    lab_weft_conf node-b b "10.201.0.2/32, fd00:201::2/128" 41642
    lab_weft_conf_peer node-a "$(lab_pub a)" "10.201.0.1/32, fd00:201::1/128" "$LAB_IP_a:41641"
} >"$LAB_TMP/b.conf"

lab_weftd_up a a weft0 41641
lab_weftd_up b b weft0 41642

lab_weft_has_peer a "$(lab_pub b)" || lab_fail "a's status does not list b"
lab_weft_has_peer b "$(lab_pub a)" || lab_fail "b's status does not list a"

lab_ping_first a 10.201.0.2
lab_ping a 10.201.0.2 5
lab_ping b 10.201.0.1 5
lab_ping_first a fd00:201::2
lab_ping a fd00:201::2 5
lab_ping b fd00:201::1 5

lab_wait_for 5 lab_weft_hs_set a "$(lab_pub b)" ||
    lab_fail "a's status shows no LastHandshake for b: $(lab_weft_peer_field a "$(lab_pub b)" LastHandshake)"

lab_tcp_check a b 10.201.0.2 "$XFER_MB" 5201
lab_tcp_check b a fd00:201::1 "$XFER_MB" 5202

# The receiver's RxBytes for its peer must account for the transfer.
rx=$(lab_weft_peer_field b "$(lab_pub a)" RxBytes)
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$rx" $((XFER_MB * 1024 * 1024)) ||
    lab_fail "b's RxBytes for a is $rx, less than the $XFER_MB MiB received"
lab_log "b's RxBytes for a: $rx"

for n in a b; do
    pid_var=WEFTD_PID_$n
    lab_kill "${!pid_var}" TERM 10; rc=$LAB_RC
    [ "$rc" -eq 0 ] || lab_fail "weftd $n exited $rc on SIGTERM"
done
