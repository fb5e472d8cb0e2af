#!/usr/bin/env bash
# Which of a peer's routes weft takes, with headscale and a real tailscaled t1
# that is both a subnet router (10.99.0.0/24, whose 10.99.0.1 is t1's own) and an
# exit node, all three routes approved in headscale:
#   1 by default  weft (w1) lists t1's subnet among its PrimaryRoutes but routes
#                 only t1's own addresses: table 52 holds neither the subnet
#                 nor a default route, and w1's route to an outside address
#                 still leaves by its own link
#   2 accepted    after `weft up --accept-routes` the subnet is in table 52
#                 and w1 pings 10.99.0.1 through t1; still no default route
#                 (an exit node is only ever used when chosen, which weft
#                 cannot do yet)
#
#   tests/interop/weft_routes.sh
# Exit 0 only if every test passed; 77 if the lab cannot run here.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=weft_lib.sh
source "$HERE/weft_lib.sh"

# shellcheck disable=SC2034 # read by skip() in lib.sh
LAB_SKIP_RC=77
LAB_TIMEOUT=${LAB_TIMEOUT:-180}
weft_need_bin
lab_need_bins headscale tailscaled tailscale
lab_init
weft_init

SUBNET=10.99.0.0/24 LAN_IP=10.99.0.1
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns t1 "$LAB_SUBNET.11"
lab_add_ns w1 "$LAB_SUBNET.21"
lab_exec t1 ip address add "$LAN_IP/32" dev lo || die "cannot give t1 its LAN address"

start_headscale srv
start_weftd w1
start_tailscaled t1
ts t1 up --login-server="$HS_URL" --auth-key="$HS_KEY" --hostname=t1 --accept-dns=false \
    --netfilter-mode=off --reset --timeout=60s \
    --advertise-routes="$SUBNET" --advertise-exit-node >&2 || die "tailscale up on t1 failed"
wf_up w1 "$HS_URL" "$HS_KEY" 30 >/dev/null || die "weft up on w1 failed"
TIP=$(ts_ip t1)
T1_ID=$(hs srv nodes list -o json | jq -r '.[] | select(.given_name == "t1" or .name == "t1") | .id')
[[ $T1_ID =~ ^[0-9]+$ ]] || die "t1's node ID not found in headscale"
hs srv nodes approve-routes -i "$T1_ID" -r "$SUBNET,0.0.0.0/0,::/0" >/dev/null \
    || die "approving t1's routes failed"
approved() { hs srv nodes list-routes -o json | jq -e --arg s "$SUBNET" \
    '[.[] | (.approved_routes // []) | .[]] | (index($s) != null) and (index("0.0.0.0/0") != null)' >/dev/null; }
wait_for "headscale approved t1's subnet and exit routes" 10 approved \
    || die "headscale did not record the approved routes: $(hs srv nodes list-routes -o json)"

t1_in_w1() { wf_status w1 | jq -c --arg ip "$TIP" '.Peer[] | select(.TailscaleIPs | index($ip))'; }
w1_knows_subnet() { t1_in_w1 | jq -e --arg s "$SUBNET" '(.PrimaryRoutes // []) | index($s)' >/dev/null; }
table52() { lab_exec w1 ip -4 route show table 52; }
has_subnet_route() { table52 | grep -q "^$SUBNET "; }
no_default_route() { ! table52 | grep -Eq '^(default|0\.0\.0\.0/[01]|128\.0\.0\.0/1) '; }

log "1: by default only t1's own addresses are routed"
wait_for "w1 sees t1's subnet as a primary route" 30 w1_knows_subnet \
    || die "w1 never learned t1's subnet: $(t1_in_w1)"
wait_for "t1's address in table 52" 10 eval 'table52 | grep -q "^$TIP "' \
    || die "t1's address is not routed: $(table52)"
t1_in_w1 | jq -e --arg s "$SUBNET" '.AllowedIPs | index($s) | not' >/dev/null \
    || die "w1 took t1's subnet without --accept-routes: $(t1_in_w1)"
has_subnet_route && die "table 52 has the subnet without --accept-routes: $(table52)"
no_default_route || die "table 52 routes t1's exit-node default: $(table52)"
lab_exec w1 ip -4 route get 192.0.2.55 | grep -q "table 52" \
    && die "w1's outside traffic goes into the tunnel: $(lab_exec w1 ip -4 route get 192.0.2.55)"
log "1: ok (subnet offered, not taken; no default route)"

log "2: --accept-routes takes the subnet, never the default"
wf w1 up --login-server "$HS_URL" --hostname w1 --timeout 30 --accept-routes >/dev/null \
    || die "weft up --accept-routes on w1 failed"
wait_for "the subnet in table 52" 20 has_subnet_route || die "no subnet route: $(table52)"
no_default_route || die "table 52 routes t1's exit-node default: $(table52)"
wait_for "w1 pings $LAN_IP through t1" 20 lab_exec w1 ping -c 1 -W 2 "$LAN_IP" \
    || die "w1 cannot reach t1's subnet"
log "2: ok (subnet routed and reached; no default route)"
log "PASS"
