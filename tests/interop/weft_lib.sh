# shellcheck shell=bash
# weft helpers for the interop labs; source after lib.sh.
#
#   source tests/interop/lib.sh; source tests/interop/weft_lib.sh
#   weft_need_bin                      # WEFT_BIN (default <repo>/target/release/weft)
#   lab_init; weft_init                # after lab_init: $LAB_DIR/bin/weftd -> WEFT_BIN
#   lab_add_ns w1 10.77.0.21
#   start_weftd w1 [weftd flags...]    # control mode: --statedir $LAB_DIR/w1/state, TUN weft0
#   wf_up w1 "$URL" "$KEY"             # weft up --login-server … --auth-key … --hostname w1
#   wf w1 status --json; wf_state w1; wf_key w1; wf_ips w1
#   stop_weftd w1                      # SIGTERM, wait for exit
#
# Each daemon's files live in $LAB_DIR/NAME/: state/ (the --statedir),
# weftd.sock, weftd.log (weftd.log.N for earlier runs), weftd.pid.

WEFT_BIN=${WEFT_BIN:-$_INTEROP_REPO/target/release/weft}

weft_need_bin() {
    [[ -x $WEFT_BIN ]] || skip "weft binary not found at $WEFT_BIN (cargo build --release, or set WEFT_BIN)"
}

# weft_init : the `weftd` name for the binary (weft dispatches on argv[0]).
weft_init() {
    mkdir -p "$LAB_DIR/bin"
    ln -sf "$(readlink -f "$WEFT_BIN")" "$LAB_DIR/bin/weftd"
    WEFTD_BIN=$LAB_DIR/bin/weftd
    log "weft: $WEFT_BIN ($("$WEFT_BIN" version 2>/dev/null))"
}

# WF_ENVS: extra environment for every weftd, e.g. (WEFT_DEBUG_USE_DERP_HTTP=1)
# next to headscale's plain-HTTP embedded DERP, as TS_ENVS for tailscaled.
WF_ENVS=()

# WF_NETNS[NAME]=NODE runs daemon NAME in lab node NODE's namespace (default:
# its own name), e.g. two weftd one after the other next to one server.
declare -gA WF_NETNS=()
wf_netns() { echo "${WF_NETNS[$1]:-$1}"; }

wf_dir() { echo "$LAB_DIR/$1"; }
wf_sock() { echo "$LAB_DIR/$1/weftd.sock"; }
wf_statefile() { echo "$LAB_DIR/$1/state/weftd.state"; }

# start_weftd NAME [weftd flags...] : weftd in NAME's namespace, control mode,
# with the same state directory across restarts. Waits for its socket.
start_weftd() {
    local name=$1; shift
    local d; d=$(wf_dir "$name")
    mkdir -p "$d/state"
    local n=1
    if [[ -e $d/weftd.log ]]; then
        while [[ -e $d/weftd.log.$n ]]; do n=$((n + 1)); done
        mv "$d/weftd.log" "$d/weftd.log.$n"
    fi
    rm -f "$d/weftd.sock"
    lab_bg "$(wf_netns "$name")" "$d/weftd.log" env WEFT_LOG_STYLE=never "${WF_ENVS[@]}" "$WEFTD_BIN" \
        --statedir "$d/state" --socket "$d/weftd.sock" --tun weft0 --port 41641 \
        --verbose "${WEFT_VERBOSE:-1}" "$@"
    echo "$LAST_PID" >"$d/weftd.pid"
    wait_for "weftd socket in $name" 15 test -S "$d/weftd.sock" \
        || { tail -30 "$d/weftd.log" >&2; die "weftd in $name did not start"; }
    log "weftd $name up in $(lab_ns "$(wf_netns "$name")") (socket $d/weftd.sock)"
}

# stop_weftd NAME : SIGTERM weftd and wait for it to exit.
stop_weftd() {
    local pid; pid=$(cat "$(wf_dir "$1")/weftd.pid")
    lab_stop_pid "$pid" "weftd in $1"
}

weftd_alive() { ! lab_pid_gone "$(cat "$(wf_dir "$1")/weftd.pid")"; }

# wf NAME ARGS... : the weft CLI against NAME's daemon (bounded by 90 s).
wf() { local name=$1; shift; lab_exec "$(wf_netns "$name")" timeout 90 "$WEFT_BIN" --socket "$(wf_sock "$name")" "$@"; }

# wf_up NAME URL [KEY] [TIMEOUT] : weft up, hostname NAME.
wf_up() {
    local name=$1 url=$2 key=${3:-} secs=${4:-30}
    local args=(up --login-server "$url" --hostname "$name" --timeout "$secs")
    [[ -n $key ]] && args+=(--auth-key "$key")
    wf "$name" "${args[@]}"
}

wf_status() { wf "$1" status --json; }
wf_state() { wf_status "$1" | jq -r .BackendState; }
wf_state_is() { [[ $(wf_state "$1") == "$2" ]]; }
wf_key() { wf_status "$1" | jq -r .Self.PublicKey; }
wf_ips() { wf_status "$1" | jq -r '.Self.TailscaleIPs | sort | join(",")'; }
wf_ip4() { wf_status "$1" | jq -r '[.Self.TailscaleIPs[] | select(contains("."))][0]'; }

# wf_lists NAME NODEKEY : NAME's weft status has a peer with that node key.
wf_lists() { wf_status "$1" | jq -e --arg k "$2" '.Peer // {} | has($k)' >/dev/null; }
wf_not_lists() { wf_status "$1" | jq -e --arg k "$2" '.Peer // {} | has($k) | not' >/dev/null; }
# ts_lists NAME NODEKEY : same for a tailscaled node.
ts_lists() { ts_status_json "$1" | jq -e --arg k "$2" '[.Peer[]? | select(.PublicKey == $k)] | length > 0' >/dev/null; }
ts_not_lists() { ts_status_json "$1" | jq -e --arg k "$2" '[.Peer[]? | select(.PublicKey == $k)] | length == 0' >/dev/null; }
ts_key() { ts_status_json "$1" | jq -r .Self.PublicKey; }

# Normalised views, as sorted JSON: {key, host, ips} per node.
JQ_SELF='{key: .Self.PublicKey, host: .Self.HostName, ips: (.Self.TailscaleIPs | sort)}'
JQ_PEERS='[.Peer // {} | .[] | {key: .PublicKey, host: .HostName, ips: (.TailscaleIPs // [] | sort)}] | sort_by(.key)'

# wf_peer_view NAME / ts_peer_view NAME : NAME's peers, normalised.
wf_peer_view() { wf_status "$1" | jq -c "$JQ_PEERS"; }
ts_peer_view() { ts_status_json "$1" | jq -c "$JQ_PEERS"; }
wf_self_view() { wf_status "$1" | jq -c "$JQ_SELF"; }
ts_self_view() { ts_status_json "$1" | jq -c "$JQ_SELF"; }

# expected_view SELF_JSON... : the sorted list of the given self views.
expected_view() { printf '%s\n' "$@" | jq -sc 'sort_by(.key)'; }

# wf_table52 NAME : NAME's routes in table 52 (IPv4 and IPv6), one per line.
wf_table52() {
    lab_exec "$1" ip -4 route show table 52 2>/dev/null
    lab_exec "$1" ip -6 route show table 52 2>/dev/null
}

# ------------------------------------------------------------------ traffic

TCPXFER=$_INTEROP_REPO/tests/lab/tcpxfer.py

# tcp_xfer SRC DST DST_ADDR FILE [PORT] [SECONDS] : send FILE over TCP from
# namespace SRC to DST_ADDR (an address of namespace DST) and fail unless the
# receiver's copy has the same sha256. Logs the throughput.
tcp_xfer() {
    local src=$1 dst=$2 addr=$3 file=$4 port=${5:-5201} secs=${6:-120}
    local out=$LAB_DIR/xfer-$src-$dst.out rpid t0 ms
    rm -f "$out"
    lab_bg "$dst" "$LAB_DIR/xfer-$src-$dst.log" python3 "$TCPXFER" recv "$port" "$out"
    rpid=$LAST_PID
    wait_for "TCP receiver in $dst on :$port" 10 tcp_listening "$dst" "$port" || return 1
    t0=$(date +%s%N)
    lab_exec "$src" timeout "$secs" python3 "$TCPXFER" send "$addr" "$port" "$file" \
        || { log "TCP send $src -> $dst ($addr) failed"; return 1; }
    wait "$rpid" || { log "TCP receiver in $dst failed: $(cat "$LAB_DIR/xfer-$src-$dst.log")"; return 1; }
    ms=$(( ($(date +%s%N) - t0) / 1000000 + 1 ))
    same_bytes "$file" "$out" || return 1
    log "TCP $src -> $dst ($addr): $(stat -c %s "$file") bytes byte for byte, $(( $(stat -c %s "$file") * 8 / 1000 / ms )) Mbit/s"
    rm -f "$out"
}

tcp_listening() { lab_exec "$1" ss -Htln "sport = :$2" | grep -q .; }

# same_bytes A B : files A and B have the same sha256.
same_bytes() {
    [[ $(sha256sum <"$1") == "$(sha256sum <"$2")" ]] && return 0
    log "$2 differs from $1 ($(stat -c %s "$2") of $(stat -c %s "$1") bytes)"
    return 1
}

# stream_start SRC DST DST_ADDR RATE [PORT] : a long-lived TCP flow of random
# bytes at RATE bytes/s from SRC to DST_ADDR, for as long as path changes take;
# stream_finish ends it and checks that every byte arrived, in order.
stream_start() {
    local src=$1 dst=$2 addr=$3 rate=$4 port=${5:-5202}
    STREAM_DIR=$LAB_DIR/stream-$src-$dst
    mkdir -p "$STREAM_DIR"
    lab_bg "$dst" "$STREAM_DIR/recv.log" python3 "$TCPXFER" recv "$port" "$STREAM_DIR/received"
    STREAM_RECV_PID=$LAST_PID
    wait_for "stream receiver in $dst on :$port" 10 tcp_listening "$dst" "$port" || return 1
    lab_bg "$src" "$STREAM_DIR/send.log" python3 "$TCPXFER" stream "$addr" "$port" "$rate" \
        "$STREAM_DIR/stop" "$STREAM_DIR/sent"
    STREAM_SEND_PID=$LAST_PID
}

# stream_alive : the stream's sender is still sending (no TCP timeout yet).
stream_alive() { ! lab_pid_gone "$STREAM_SEND_PID"; }

stream_finish() {
    touch "$STREAM_DIR/stop"
    wait "$STREAM_SEND_PID" || { log "stream sender failed: $(cat "$STREAM_DIR/send.log")"; return 1; }
    wait "$STREAM_RECV_PID" || { log "stream receiver failed: $(cat "$STREAM_DIR/recv.log")"; return 1; }
    same_bytes "$STREAM_DIR/sent" "$STREAM_DIR/received" || return 1
    log "stream: $(stat -c %s "$STREAM_DIR/sent") bytes arrived byte for byte"
}

# ------------------------------------------------------------------ results

# lab_test SETUP NAME FN : run FN in a subshell (set -e), record
# "RESULT SETUP NAME PASS|FAIL Ns"; a failure does not stop later tests.
# lab_results prints the lines and dies if any test failed.
LAB_RESULTS=()
LAB_FAILED=0
lab_test() {
    local setup=$1 name=$2 fn=$3 t0=$SECONDS rc=0
    log "=== $setup: test $name"
    (set -euo pipefail; "$fn") || rc=$?
    if [[ $rc == 0 ]]; then
        LAB_RESULTS+=("RESULT $setup $name PASS $((SECONDS - t0))s")
    else
        LAB_RESULTS+=("RESULT $setup $name FAIL $((SECONDS - t0))s")
        LAB_FAILED=1
    fi
}
lab_results() {
    printf '%s\n' "${LAB_RESULTS[@]}"
    [[ $LAB_FAILED == 0 ]] || die "some tests failed (logs in $LAB_DIR)"
    log "PASS: $1"
}
