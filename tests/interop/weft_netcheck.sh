#!/usr/bin/env bash
# weft netcheck against the testcontrol runner's STUN server (issue "Talk to
# real Tailscale nodes", item 3). testcontrol serves a DERP map with one
# region, "test", whose node answers STUN at $LAB_SUBNET.1:3478.
#   1. `weft netcheck --json` in w1 reports UDP true, GlobalV4 = w1's own
#      address and weftd's UDP port (the lab has no NAT: that is what the STUN
#      server sees), a latency for region 1 and PreferredDERP 1.
#   2. The plain output has the tailscale netcheck layout and names "test".
#   3. testcontrol's view of the node lists that address among its Endpoints
#      (a STUN endpoint, from the lite update) and NetInfo.PreferredDERP = 1.
#
#   tests/interop/weft_netcheck.sh
# Exit 0 when all pass, 1 on failure, 77 when skipped.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"
# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
weft_need_bin
LAB_TIMEOUT=${LAB_TIMEOUT:-120}
lab_init
weft_init
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns w1 "$LAB_SUBNET.21"
KEY="tskey-weft-netcheck-$$"
start_testcontrol srv --authkey "$KEY"
start_weftd w1
out=$(wf_up w1 "$TC_URL" "$KEY" 30 2>&1) || die "weft up failed: $out"

WANT="$LAB_SUBNET.21:41641"
# The daemon runs netcheck when the DERP map arrives; `weft netcheck` runs
# another and waits for it.
report=$(wf w1 netcheck --json 2>&1) || die "weft netcheck --json failed: $report"
log "weft netcheck --json: $(jq -c . <<<"$report")"
jq -e '.UDP == true' <<<"$report" >/dev/null || die "UDP is not true"
[[ $(jq -r .GlobalV4 <<<"$report") == "$WANT" ]] || die "GlobalV4 is not $WANT"
jq -e '.RegionLatency["1"] > 0 and .PreferredDERP == 1' <<<"$report" >/dev/null \
    || die "no latency for region 1, or it is not the preferred region"
echo "RESULT netcheck-json PASS"

plain=$(wf w1 netcheck 2>&1) || die "weft netcheck failed: $plain"
log "weft netcheck:"$'\n'"$plain"
grep -q '^Report:$' <<<"$plain" || die "no Report: line"
grep -qx $'\t\\* UDP: true' <<<"$plain" || die "no '* UDP: true' line"
grep -qx $'\t\\* IPv4: yes, '"$WANT" <<<"$plain" || die "no '* IPv4: yes, $WANT' line"
grep -qx $'\t\\* Nearest DERP: weft interop test DERP' <<<"$plain" || die "no Nearest DERP line"
grep -Eq $'^\t\t- test: [0-9.]+(µs|ms) +\\(weft interop test DERP\\)$' <<<"$plain" || die "no latency line for region test"
echo "RESULT netcheck-plain PASS"

node_has_endpoint() {
    tc_admin srv GET 'nodes?full=1' | jq -e --arg ep "$WANT" \
        '[.[] | select(.Hostinfo.Hostname == "w1") | select((.Endpoints // []) | index($ep)) | select(.Hostinfo.NetInfo.PreferredDERP == 1)] | length == 1' >/dev/null
}
if ! wait_for "testcontrol lists $WANT and PreferredDERP 1 for w1" 10 node_has_endpoint; then
    log "testcontrol nodes: $(tc_admin srv GET 'nodes?full=1' | jq -c '[.[] | {Endpoints, NetInfo: .Hostinfo.NetInfo}]')"
    die "the endpoint or NetInfo did not reach testcontrol"
fi
log "testcontrol sees w1: $(tc_admin srv GET 'nodes?full=1' | jq -c '[.[] | select(.Hostinfo.Hostname == "w1") | {Endpoints, NetInfo: .Hostinfo.NetInfo}]')"
echo "RESULT netcheck-control PASS"
