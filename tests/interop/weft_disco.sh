#!/usr/bin/env bash
# Disco between weft and a real tailscaled on a flat network (issue "Talk to
# real Tailscale nodes", item 2 and the direct half of 5): the testcontrol
# runner, weftd w1 and tailscaled t1 on one bridge.
#   a) `tailscale ping` (a disco ping) from t1 to w1 is answered with a pong
#      "via <w1's ip:port>": weft recognised the disco packet on its WireGuard
#      socket, opened it with t1's disco key from the netmap, and answered.
#   b) t1's `tailscale status --json` then shows a CurAddr for w1.
#   c) weft's own status shows t1's direct CurAddr once traffic flowed (weft
#      pinged t1's endpoints and t1's pong proved the path).
#   d) `weft ping t1` (disco, as `tailscale ping`) gets a pong "via <t1's
#      ip:port>" and stops there (exit 0), and `weft status` says
#      "active; direct <t1's ip:port>".
#
#   tests/interop/weft_disco.sh
# Exit 0 on pass, 1 on failure, 77 when skipped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"
# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
weft_need_bin
lab_need_bins testcontrol-runner tailscaled tailscale
LAB_TIMEOUT=${LAB_TIMEOUT:-150}
lab_init
weft_init
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns t1 "$LAB_SUBNET.11"
lab_add_ns w1 "$LAB_SUBNET.21"
start_testcontrol srv --authkey "tskey-weft-disco-$$"
start_weftd w1
start_tailscaled t1
wf_up w1 "$TC_URL" "$TC_AUTHKEY" 30 >&2 || die "weft up on w1 failed"
ts_up t1 "$TC_URL" "$TC_AUTHKEY"
W1_IP=$(wf_ip4 w1)
wait_for "t1 sees w1" 20 ts_sees t1 "$W1_IP" || die "t1 never saw w1 in its netmap"

# a) a disco ping from tailscaled, answered over the direct path.
out=""
for _ in 1 2 3 4 5; do
    out=$(ts t1 ping --c 3 --timeout 3s "$W1_IP" 2>&1 || true)
    grep -Eq "^pong from .* via $LAB_SUBNET\.21:41641" <<<"$out" && break
    sleep 1
done
log "tailscale ping w1: $out"
grep -Eq "^pong from .* via $LAB_SUBNET\.21:41641" <<<"$out" \
    || { tail -30 "$LAB_DIR/w1/weftd.log" >&2; die "no direct disco pong from w1: $out"; }

# b) tailscaled uses the direct path to weft.
cur=$(ts_status_json t1 | jq -r --arg ip "$W1_IP" '.Peer[] | select(.TailscaleIPs | index($ip)) | .CurAddr')
[[ $cur == "$LAB_SUBNET.21:41641" ]] || die "t1's CurAddr for w1 is '$cur'"

# c) and weft to tailscaled: traffic makes weft ping t1 and trust the pong.
T1_IP=$(ts_ip t1)
wait_for "kernel ping w1 -> t1" 20 lab_exec w1 ping -c 1 -W 1 "$T1_IP" || die "w1 cannot ping t1 over the tunnel"
wcur=$(wf_status w1 | jq -r '.Peer[] | select(.HostName == "t1") | .CurAddr')
[[ $wcur == "$LAB_SUBNET.11:41641" ]] || die "w1's CurAddr for t1 is '$wcur' (drops: $(wf_status w1 | jq -c .Drops))"

# d) weft's own disco ping names the direct path, and its status table says so.
out=$(wf w1 ping -c 5 --timeout 3s t1 2>&1) || die "weft ping t1 failed: $out"
log "weft ping t1: $out"
grep -Eq "^pong from t1 \($T1_IP\) via $LAB_SUBNET\.11:41641 in [0-9.]+m?s\$" <<<"$out" \
    || die "weft ping t1: no direct pong line: $out"
row=$(wf w1 status | grep -w t1)
log "weft status: $row"
grep -q "active; direct $LAB_SUBNET\.11:41641" <<<"$row" || die "weft status shows t1 as: $row"
echo "RESULT disco PASS"
