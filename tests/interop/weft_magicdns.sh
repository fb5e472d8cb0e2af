#!/usr/bin/env bash
# MagicDNS at 100.100.100.100 (headscale with magic_dns on): weftd w1 and w2
# on one bridge, and a plain DNS responder in namespace dns that the tailnet
# names as its global resolver.
#   names     from w1, an A query to 100.100.100.100 for w2's MagicDNS name
#             (in any case, and over IPv6 at fd7a:115c:a1e0::53) and for w1's
#             own name returns their tailnet IPv4 addresses; an unknown name under the tailnet's domain is
#             NXDOMAIN; a PTR query for w2's address names w2; the route to
#             100.100.100.100 is weft0 (table 52).
#   forward   a name outside the tailnet is forwarded to the lab's responder
#             and its answer comes back; the responder saw the question; two
#             forwarded queries leave from two source ports (a socket a query).
#   split     a split-DNS route names a resolver on w2's tailnet address: w1
#             asks it through the tunnel and relays its answer.
#
#   WEFT_BIN=target/release/weft tests/interop/weft_magicdns.sh
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
lab_need_bins headscale
command -v python3 >/dev/null || skip "python3 not found (the lab's DNS client and responder)"
LAB_TIMEOUT=${LAB_TIMEOUT:-120}
DNSQ=$_INTEROP_REPO/tests/lab/dnsq.py
DOMAIN=weft-interop.test
UPSTREAM=$LAB_SUBNET.53
FORWARDED=outside.lab.example
FORWARDED_IP=192.0.2.77
# headscale allocates sequentially: w1 registers first, w2 second.
SPLIT_RESOLVER=100.64.0.2
SPLIT_NAME=git.corp.test
SPLIT_IP=192.0.2.88
lab_init
weft_init
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns dns "$UPSTREAM"
lab_add_ns w1 "$LAB_SUBNET.21"
lab_add_ns w2 "$LAB_SUBNET.22"
lab_bg dns "$LAB_DIR/dns.log" python3 "$DNSQ" serve "$UPSTREAM" 53 "$FORWARDED" "$FORWARDED_IP"
HS_MAGIC_DNS=true HS_BASE_DOMAIN=$DOMAIN HS_NAMESERVERS=$UPSTREAM HS_OVERRIDE_LOCAL_DNS=true \
    HS_SPLIT_DNS="corp.test: [$SPLIT_RESOLVER]" start_headscale srv
# Plain-HTTP embedded DERP, in case the direct path is slow to come.
WF_ENVS=(WEFT_DEBUG_USE_DERP_HTTP=1)
for w in w1 w2; do
    start_weftd "$w"
    wf_up "$w" "$HS_URL" "$HS_KEY" >&2 || die "weft up on $w failed"
done
W1_IP=$(wf_ip4 w1)
W2_IP=$(wf_ip4 w2)
[[ $W2_IP == "$SPLIT_RESOLVER" ]] || die "w2 got $W2_IP, not $SPLIT_RESOLVER"

# ask NAME [TYPE] : w1's query to quad-100; the response code, then the answers.
ask() { lab_exec w1 timeout 10 python3 "$DNSQ" query 100.100.100.100 "$@"; }

# answers_are EXPECTED NAME [TYPE] : quad-100's answer, one line per record, is EXPECTED.
answers_are() {
    local want=$1 got; shift
    got=$(ask "$@" | paste -sd ' ') || { log "query $* failed"; return 1; }
    [[ $got == "$want" ]] && return 0
    log "query $*: got '$got', want '$want'"
    return 1
}

test_names() {
    wait_for "w1 answers for w2" 15 answers_are "NOERROR $W2_IP" "w2.$DOMAIN"
    answers_are "NOERROR $W2_IP" "W2.Weft-Interop.TEST."
    answers_are "NOERROR $W1_IP" "w1.$DOMAIN"
    answers_are "NXDOMAIN" "nobody.$DOMAIN"
    local over_v6
    over_v6=$(lab_exec w1 timeout 10 python3 "$DNSQ" query fd7a:115c:a1e0::53 "w2.$DOMAIN" | paste -sd ' ')
    [[ $over_v6 == "NOERROR $W2_IP" ]] || { log "over IPv6: got '$over_v6'"; return 1; }
    local reverse
    reverse=$(awk -F. '{print $4"."$3"."$2"."$1".in-addr.arpa"}' <<<"$W2_IP")
    answers_are "NOERROR w2.$DOMAIN." "$reverse" PTR
    lab_exec w1 ip route get 100.100.100.100 | grep -q "dev weft0" \
        || { log "route to 100.100.100.100: $(lab_exec w1 ip route get 100.100.100.100)"; return 1; }
}

test_forward() {
    answers_are "NOERROR $FORWARDED_IP" "$FORWARDED"
    answers_are "NXDOMAIN" "missing.lab.example"
    grep -q "question $FORWARDED. type 1 from $LAB_SUBNET.21 " "$LAB_DIR/dns.log" \
        || { log "the responder did not see w1's forwarded query: $(cat "$LAB_DIR/dns.log")"; return 1; }
    local ports
    ports=$(grep -E "question ($FORWARDED|missing\.lab\.example)\. type 1 from $LAB_SUBNET.21 port " \
        "$LAB_DIR/dns.log" | awk '{print $NF}' | sort -u | wc -l)
    ((ports >= 2)) || { log "forwarded queries shared a source port: $(cat "$LAB_DIR/dns.log")"; return 1; }
}

test_split() {
    lab_bg w2 "$LAB_DIR/split-dns.log" python3 "$DNSQ" serve "$SPLIT_RESOLVER" 53 "$SPLIT_NAME" "$SPLIT_IP"
    wait_for "w2's resolver through the tunnel" 20 answers_are "NOERROR $SPLIT_IP" "$SPLIT_NAME"
    grep -q "question $SPLIT_NAME. type 1 from $W1_IP" "$LAB_DIR/split-dns.log" \
        || { log "w2's resolver did not see w1's tailnet address: $(cat "$LAB_DIR/split-dns.log")"; return 1; }
    ! grep -q "question $SPLIT_NAME" "$LAB_DIR/dns.log" \
        || { log "the split name leaked to the global resolver"; return 1; }
}

lab_test headscale names test_names
lab_test headscale forward test_forward
lab_test headscale split test_split
lab_results "weft MagicDNS at 100.100.100.100"
