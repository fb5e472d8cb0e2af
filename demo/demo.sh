#!/usr/bin/env bash
# make demo: a two-node tailnet in network namespaces on the embedded default (a static config,
# no control server). Pings across the tunnel both ways, pushes a TCP stream through it, shows
# `weft status` of each node, and tears everything down. Exits 0 only if traffic crossed.
#   WEFT_BIN  the weft binary (default target/release/weft)
set -euo pipefail
. "$(dirname "$0")/../tests/lab/lib.sh"
LAB_QUIET=1
lab_init 60
lab_need ping python3
lab_weft_setup

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Two hosts, alpha and beta, joined by a virtual Ethernet link"
lab_ns_pair a b
echo "alpha: $LAB_IP_a    beta: $LAB_IP_b"

say "Keys (weft genkey | weft pubkey) and one static config per node"
lab_weft_keys a
lab_weft_keys b
{
    lab_weft_conf alpha a "100.64.0.1, fd7a:115c:a1e0::1" 41641
    lab_weft_conf_peer beta "$(lab_pub b)" "100.64.0.2/32, fd7a:115c:a1e0::2/128" "$LAB_IP_b:41641"
} >"$LAB_TMP/a.conf"
{
    lab_weft_conf beta b "100.64.0.2, fd7a:115c:a1e0::2" 41641
    lab_weft_conf_peer alpha "$(lab_pub a)" "100.64.0.1/32, fd7a:115c:a1e0::1/128" "$LAB_IP_a:41641"
} >"$LAB_TMP/b.conf"
sed 's/^PrivateKey = .*/PrivateKey = (secret)/' "$LAB_TMP/a.conf"

say "Starting weftd on both hosts"
lab_weftd_up a a weft0 41641
lab_weftd_up b b weft0 41641
echo "alpha's routes in table 52:"
lab_x a ip route show table 52 | sed 's/^/    /'

say "alpha pings beta through the tunnel, then beta pings alpha (IPv4 and IPv6)"
lab_x a ping -c 3 -i 0.2 -W 2 100.64.0.2
lab_x b ping -c 3 -i 0.2 -W 2 100.64.0.1
lab_x a ping -6 -c 2 -i 0.2 -W 2 fd7a:115c:a1e0::2

say "weft ping (ICMP through the tunnel, answered to weftd itself)"
"$WEFT" --socket "$LAB_TMP/a.sock" ping -c 2 beta

say "A 20 MB TCP stream from alpha to beta, checked byte for byte"
lab_tcp_check a b 100.64.0.2 20 5201
echo "20 MB arrived intact: the sha256 of what beta received matches what alpha sent"

say "weft status on alpha"
"$WEFT" --socket "$LAB_TMP/a.sock" status
say "weft status on beta"
"$WEFT" --socket "$LAB_TMP/b.sock" status

say "Done: traffic crossed both ways. Tearing down."
