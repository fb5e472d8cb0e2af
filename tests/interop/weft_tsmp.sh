#!/usr/bin/env bash
# TSMP connection rejects between weft and a real tailscaled (issue 10, item 3):
# the testcontrol runner, weftd w1 and tailscaled t1 on one bridge.
#   a) weft's shields are up: a TCP connect from t1 to w1's Tailscale address
#      is dropped by weft's filter, and weft answers the SYN with a TSMP
#      rejection. tailscaled matches it to the connect it is tracking and logs
#      "open-conn-track: flow TCP <t1>:<port> > <w1>:<port> rejected due to
#      shields" well under a second after the SYN; over IPv6 too (tailscaled
#      itself sends rejections over IPv4 only, weft over both). tailscaled with
#      a kernel TUN only records the rejection: its own socket still waits for
#      its timeout, so the lab checks that the connect does not succeed, not
#      that it is refused.
#   b) the other way round: with t1's shields up, tailscaled drops weft's SYN
#      and sends the rejection; weft turns it into a RST for its local socket,
#      so a connect from w1 to a port t1 listens on fails with "connection
#      refused" well under a second (the same connect succeeds before the
#      shields go up).
#
#   tests/interop/weft_tsmp.sh
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
command -v python3 >/dev/null || skip "python3 not found (the lab's TCP client and listener)"
LAB_TIMEOUT=${LAB_TIMEOUT:-120}
# How fast a refusal must be: a round trip inside one bridge takes well under
# a millisecond; a SYN that is silently dropped takes seconds to time out.
FAST_MS=1000
PORT=7777
lab_init
weft_init
lab_add_ns srv "$LAB_SUBNET.1"
lab_add_ns t1 "$LAB_SUBNET.11"
lab_add_ns w1 "$LAB_SUBNET.21"
start_testcontrol srv --authkey "tskey-weft-tsmp-$$"
start_weftd w1
start_tailscaled t1
wf w1 up --login-server "$TC_URL" --auth-key "$TC_AUTHKEY" --hostname w1 --timeout 30 \
    --shields-up >&2 || die "weft up --shields-up on w1 failed"
ts_up t1 "$TC_URL" "$TC_AUTHKEY"
W1_IP=$(wf_ip4 w1)
T1_IP=$(ts_ip t1)
wait_for "t1 sees w1" 20 ts_sees t1 "$W1_IP" || die "t1 never saw w1 in its netmap"
[[ $(wf_status w1 | jq -r .ShieldsUp) == true ]] || die "w1's status does not show its shields up"

# tcp_connect NODE IP PORT SECONDS [SOURCE_PORT] : one TCP connect from NODE;
# prints its outcome (connected, refused, timeout or error:…), how many
# milliseconds it took and when it started (milliseconds since the epoch).
tcp_connect() {
    lab_exec "$1" timeout 30 python3 - "$2" "$3" "$4" "${5:-0}" <<'EOF'
import socket, sys, time
ip, port, limit, sport = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
s.settimeout(limit)
s.bind(("", sport))
started_at = int(time.time() * 1000)
start = time.monotonic()
try:
    s.connect((ip, port))
    outcome = "connected"
except ConnectionRefusedError:
    outcome = "refused"
except socket.timeout:
    outcome = "timeout"
except OSError as e:
    outcome = "error:" + (e.strerror or str(e)).replace(" ", "_")
print(outcome, int((time.monotonic() - start) * 1000), started_at)
EOF
}

# tcp_listen NODE : a listener on NODE's PORT (IPv4 and IPv6) that accepts and closes.
tcp_listen() {
    lab_bg "$1" "$LAB_DIR/$1/listener.log" python3 -c "
import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', $PORT))
s.listen()
while True:
    s.accept()[0].close()
"
}

w1_connects_to_t1() { [[ $(tcp_connect w1 "$T1_IP" "$PORT" 2) == connected* ]]; }

# WireGuard and disco warm up first, from weft's side (its own flows pass its
# shields), so the times below are the rejections' alone.
wait_for "kernel ping w1 -> t1" 20 lab_exec w1 ping -c 1 -W 1 "$T1_IP" \
    || die "w1 cannot ping t1 over the tunnel"

# weft_rejects FROM TO SPORT : a connect from t1 (address FROM, source port
# SPORT) to w1's address TO, which w1's shields drop; tailscaled must log the
# rejection of that very flow within FAST_MS.
weft_rejects() {
    local from=$1 to=$2 sport=$3 flow
    flow="$from:$sport > $to:$PORT"
    [[ $to == *:* ]] && flow="[$from]:$sport > [$to]:$PORT"
    tcp_connect t1 "$to" "$PORT" 3 "$sport" >"$LAB_DIR/a.out" &
    local connect=$! seen_at="" deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        if grep -qF "open-conn-track: flow TCP $flow rejected due to shields" "$LAB_DIR/t1/tailscaled.log"; then
            seen_at=$(($(date +%s%N) / 1000000))
            break
        fi
        sleep 0.02
    done
    wait "$connect" || true
    local outcome ms started_at seen_ms
    read -r outcome ms started_at <"$LAB_DIR/a.out"
    seen_ms=${seen_at:+$((seen_at - started_at))}
    log "a) t1 -> w1 ($flow) with w1's shields up: $outcome after $ms ms; rejection logged by tailscaled after ${seen_ms:-never} ms"
    [[ -n $seen_ms ]] || { grep -F open-conn-track "$LAB_DIR/t1/tailscaled.log" >&2 || true
        die "tailscaled never logged a TSMP rejection of $flow"; }
    (( seen_ms < FAST_MS )) || die "the rejection took $seen_ms ms"
    [[ $outcome != connected ]] || die "t1 connected through w1's shields"
}

failed=0
# a) weft rejects t1's SYN; tailscaled records the rejection of that very flow.
# tailscaled sends rejections over IPv4 only, weft over IPv6 too.
tcp_listen w1
(
    weft_rejects "$T1_IP" "$W1_IP" 40123
    drops=$(wf_status w1 | jq -r '.Drops.ShieldsUp // 0')
    (( drops > 0 )) || die "w1 counted no shields-up drop"
    echo "RESULT tsmp weft-rejects PASS"
) || { echo "RESULT tsmp weft-rejects FAIL"; failed=1; }
(
    weft_rejects "$(ts t1 ip -6)" "$(wf_status w1 | jq -r '[.Self.TailscaleIPs[] | select(contains(":"))][0]')" 40124
    echo "RESULT tsmp weft-rejects-ipv6 PASS"
) || { echo "RESULT tsmp weft-rejects-ipv6 FAIL"; failed=1; }

# b) tailscaled rejects weft's SYN; weft's socket sees a RST at once.
(
    tcp_listen t1
    wait_for "w1 connects to t1:$PORT" 10 w1_connects_to_t1 \
        || die "w1 cannot reach t1's listener before the shields go up"
    ts t1 set --shields-up || die "tailscale set --shields-up failed"
    read -r outcome ms _ < <(tcp_connect w1 "$T1_IP" "$PORT" 5)
    log "b) w1 -> t1:$PORT with t1's shields up: $outcome after $ms ms"
    [[ $outcome == refused ]] || die "w1's connect ended '$outcome' after $ms ms, not refused"
    (( ms < FAST_MS )) || die "the refusal took $ms ms"
    echo "RESULT tsmp tailscaled-rejects PASS"
) || { echo "RESULT tsmp tailscaled-rejects FAIL"; failed=1; }

weftd_alive w1 || die "weftd died"
exit "$failed"
