# shellcheck shell=bash
# tests/lab/lib.sh — helpers for weft's network-namespace lab.
#
# Source it from a bash script that runs as root:
#
#     set -euo pipefail
#     . "$(dirname "$0")/lib.sh"
#     lab_init 120            # overall time limit in seconds
#     lab_ns_pair a b         # two namespaces joined by a veth pair
#     ...
#
# Everything this file creates is named after LAB_ID (default: the
# script's PID), so parallel runs don't collide, and everything is torn
# down by lab_cleanup, which lab_init installs as the EXIT trap:
#   * namespaces:  wl<id>-<name>
#   * processes:   only the PIDs recorded with lab_track (or started by
#                  lab_spawn / lab_wg_go_up) are killed
#   * files:       one temp dir, $LAB_TMP
#
# Traffic only ever goes to addresses inside namespaces made here.
# Underlay (veth/bridge) addresses: 10.$LAB_NET.0.<n>/24.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_ID=${LAB_ID:-$$}
LAB_NET=${LAB_NET:-$(( (LAB_ID % 200) + 20 ))}   # second octet of the underlay
LAB_NS_PREFIX="wl${LAB_ID}-"
LAB_NAMESPACES=()
LAB_PIDS=()
LAB_TMP=""
LAB_WATCHDOG=""
LAB_KEEP=${LAB_KEEP:-0}      # 1: keep $LAB_TMP (logs) after the run
LAB_QUIET=${LAB_QUIET:-0}
# wireguard-go refused to run on Linux without this in very old releases
# (before 0.0.2020xxxx); Debian 12's 0.0.20220316 only prints a banner.
# Setting it is harmless and keeps old builds working.
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

lab_log()  { [ "$LAB_QUIET" = 1 ] || printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lab_fail() { printf '[lab %s] FAIL: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
lab_skip() { printf '[lab] SKIP: %s\n' "$*" >&2; exit 77; }

# lab_need CMD... : skip (exit 77) when a command is missing.
lab_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || lab_skip "'$c' not installed (run scripts/install-test-deps.sh)"
    done
}

# lab_init [SECONDS]: check prerequisites, make $LAB_TMP, arm the cleanup
# trap and a watchdog that ends the script after SECONDS (default 300).
lab_init() {
    local limit=${1:-300}
    [ "$(id -u)" -eq 0 ] || lab_skip "must run as root (network namespaces)"
    lab_need ip timeout
    ip netns list >/dev/null 2>&1 || lab_skip "'ip netns' unavailable"
    LAB_TMP=$(mktemp -d "/tmp/weftlab.${LAB_ID}.XXXXXX")
    trap lab_cleanup EXIT
    trap 'lab_log "interrupted"; exit 130' INT
    trap "lab_log 'terminated (time limit ${limit}s?)'; exit 124" TERM
    # The watchdog TERMs the script, then its direct children (bash only
    # runs the trap once the foreground command returns); the EXIT trap
    # then cleans up (the TERM trap says so). Its output goes nowhere, so its
    # sleep never keeps a caller's pipe open after the lab has finished.
    ( sleep "$limit"; kill -TERM $$; sleep 0.2; pkill -TERM -P $$ ) >/dev/null 2>&1 &
    LAB_WATCHDOG=$!
    lab_log "lab $LAB_ID: tmp $LAB_TMP, limit ${limit}s"
}

# lab_track PID...: remember PIDs to kill at cleanup.
lab_track() { LAB_PIDS+=("$@"); }

# lab_kill PID [SIGNAL] [WAIT_SECONDS]: signal one tracked PID and wait for it
# to exit (KILL after WAIT_SECONDS). Sets LAB_RC to its exit status (128+N
# if killed by signal N). Don't call it in $(...): a subshell can't reap
# the script's children.
lab_kill() {
    local pid=$1 sig=${2:-TERM} t=${3:-5} i rc=0
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        lab_log "pid $pid survived SIG$sig for ${t}s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    LAB_RC=$rc
}

lab_cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    set +e
    if [ -n "$LAB_WATCHDOG" ]; then kill "$LAB_WATCHDOG" 2>/dev/null; fi
    for pid in "${LAB_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${LAB_PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${LAB_NAMESPACES[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    # wireguard-go leaves its UAPI socket behind when killed hard.
    rm -f /var/run/wireguard/wg"${LAB_ID}"?.sock 2>/dev/null || true
    if [ -n "$LAB_TMP" ] && [ -d "$LAB_TMP" ]; then
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
            # Show the daemons' logs: that is what you need to debug a failure.
            local f
            for f in "$LAB_TMP"/*.log; do
                [ -s "$f" ] || continue
                echo "----- $(basename "$f") (last 40 lines) -----" >&2
                tail -n 40 "$f" >&2
            done
        fi
        if [ "$LAB_KEEP" = 1 ]; then
            lab_log "kept $LAB_TMP"
        else
            rm -rf "$LAB_TMP"
        fi
    fi
    if [ "$rc" -eq 0 ]; then lab_log "PASS"; elif [ "$rc" -eq 77 ]; then :; else lab_log "exit $rc"; fi
    exit "$rc"
}

# lab_ns NAME: full namespace name for short NAME.
lab_ns() { echo "${LAB_NS_PREFIX}$1"; }

# lab_x NAME CMD...: run CMD inside namespace NAME.
lab_x() { local n; n=$(lab_ns "$1"); shift; ip netns exec "$n" "$@"; }

# lab_ns_add NAME...: create namespaces with loopback up.
lab_ns_add() {
    local name n
    for name in "$@"; do
        n=$(lab_ns "$name")
        ip netns add "$n"
        LAB_NAMESPACES+=("$n")
        ip -n "$n" link set lo up
    done
}

# lab_ns_pair A B: namespaces A and B joined by a veth pair named "veth0"
# on both sides; A gets 10.$LAB_NET.0.1/24, B gets .2. Exports
# LAB_IP_<A>/LAB_IP_<B> (underlay addresses).
lab_ns_pair() {
    local a=$1 b=$2
    lab_ns_add "$a" "$b"
    ip link add veth0 netns "$(lab_ns "$a")" type veth peer name veth0 netns "$(lab_ns "$b")"
    lab_x "$a" ip addr add "10.$LAB_NET.0.1/24" dev veth0
    lab_x "$b" ip addr add "10.$LAB_NET.0.2/24" dev veth0
    lab_x "$a" ip link set veth0 up
    lab_x "$b" ip link set veth0 up
    printf -v "LAB_IP_$a" '%s' "10.$LAB_NET.0.1"
    printf -v "LAB_IP_$b" '%s' "10.$LAB_NET.0.2"
    lab_no_offload_surprises "$a" "$b"
}

# lab_ns_bridge NAME...: a hub namespace "br" holding bridge br0, and one
# namespace per NAME with a veth0 port on it; the i-th NAME (from 1) gets
# 10.$LAB_NET.0.i/24, exported as LAB_IP_<NAME>.
lab_ns_bridge() {
    local i=0 name
    lab_ns_add br
    lab_x br ip link add br0 type bridge
    lab_x br ip link set br0 up
    for name in "$@"; do
        i=$((i + 1))
        lab_ns_add "$name"
        ip link add veth0 netns "$(lab_ns "$name")" type veth peer name "p$i" netns "$(lab_ns br)"
        lab_x br ip link set "p$i" master br0
        lab_x br ip link set "p$i" up
        lab_x "$name" ip addr add "10.$LAB_NET.0.$i/24" dev veth0
        lab_x "$name" ip link set veth0 up
        printf -v "LAB_IP_$name" '%s' "10.$LAB_NET.0.$i"
    done
    lab_no_offload_surprises "$@"
}

# Keep the underlay honest: nothing to tune for now, but one place to do it.
lab_no_offload_surprises() { :; }

# lab_wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds;
# returns 1 on timeout (the caller decides whether that is fatal).
lab_wait_for() {
    local t=$1 end
    shift
    end=$(( $(date +%s%N) + t * 1000000000 ))
    while :; do
        # A subshell, so a check that calls lab_fail only fails this poll.
        if ("$@") >/dev/null 2>&1; then return 0; fi
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# lab_ping NS DEST [COUNT] [MIN_OK]: ping DEST from namespace NS; fail the
# script unless at least MIN_OK (default COUNT) replies arrive.
lab_ping() {
    local ns=$1 dst=$2 count=${3:-3} min=${4:-${3:-3}} out got
    out=$(lab_x "$ns" timeout $((count + 10)) ping -n -c "$count" -i 0.2 -W 2 "$dst" 2>&1) || true
    got=$(sed -n 's/.* \([0-9][0-9]*\) received.*/\1/p' <<<"$out")
    got=${got:-0}
    if [ "$got" -lt "$min" ]; then
        printf '%s\n' "$out" >&2
        lab_fail "ping $ns -> $dst: $got/$count replies (need $min)"
    fi
    lab_log "ping $ns -> $dst: $got/$count ok"
}

# lab_ping_first NS DEST [SECONDS]: wait until one ping gets through (the
# first packets may wait for a handshake), failing after SECONDS.
lab_ping_first() {
    local ns=$1 dst=$2 t=${3:-10}
    lab_wait_for "$t" lab_x "$ns" ping -n -c 1 -W 1 "$dst" ||
        lab_fail "no ping reply $ns -> $dst within ${t}s"
}

# lab_ping_fails NS DEST [COUNT]: fail the script if any reply arrives.
lab_ping_fails() {
    local ns=$1 dst=$2 count=${3:-3}
    if lab_x "$ns" timeout $((count + 5)) ping -n -c "$count" -i 0.2 -W 1 "$dst" >/dev/null 2>&1; then
        lab_fail "ping $ns -> $dst got replies but should not"
    fi
    lab_log "ping $ns -> $dst fails, as it should"
}

# lab_spawn NS LOGNAME CMD...: start CMD in the background inside NS with
# output to $LAB_TMP/LOGNAME.log; sets LAB_LAST_PID and tracks it.
lab_spawn() {
    local ns=$1 logname=$2
    shift 2
    ip netns exec "$(lab_ns "$ns")" "$@" >"$LAB_TMP/$logname.log" 2>&1 &
    LAB_LAST_PID=$!
    lab_track "$LAB_LAST_PID"
}

# lab_randfile PATH MB: PATH gets MB MiB of random bytes.
lab_randfile() {
    head -c "$(( $2 * 1024 * 1024 ))" /dev/urandom >"$1"
}

# lab_tcp_check SRC_NS DST_NS DST_ADDR MB [PORT] [SECONDS]: send MB MiB of
# random data over TCP from SRC_NS to DST_ADDR (which must be reachable
# from SRC_NS and be an address of DST_NS) and fail unless the receiver's
# copy has the same sha256. Prints the throughput.
lab_tcp_check() {
    local src=$1 dst=$2 addr=$3 mb=$4 port=${5:-5201} t=${6:-120}
    local in="$LAB_TMP/xfer-$src-$dst.in" out="$LAB_TMP/xfer-$src-$dst.out" rpid rc=0 start end
    [ -f "$in" ] && [ "$(stat -c %s "$in")" -eq $((mb * 1024 * 1024)) ] || lab_randfile "$in" "$mb"
    rm -f "$out"
    ip netns exec "$(lab_ns "$dst")" timeout "$t" python3 "$LAB_DIR/tcpxfer.py" recv "$port" "$out" \
        >"$LAB_TMP/xfer-recv.log" 2>&1 &
    rpid=$!
    lab_track "$rpid"
    lab_wait_for 10 lab_listening "$dst" "$port" || lab_fail "TCP receiver in $dst did not listen on $port"
    start=$(date +%s%N)
    local rrc=0
    lab_x "$src" timeout "$t" python3 "$LAB_DIR/tcpxfer.py" send "$addr" "$port" "$in" || rc=$?
    wait "$rpid" || rrc=$?
    [ "$rc" -eq 0 ] && [ "$rrc" -eq 0 ] || {
        cat "$LAB_TMP/xfer-recv.log" >&2
        lab_fail "TCP transfer $src -> $dst ($addr) failed (sender rc $rc, receiver rc $rrc)"
    }
    end=$(date +%s%N)
    local h1 h2
    h1=$(sha256sum <"$in" | cut -d' ' -f1)
    h2=$(sha256sum <"$out" | cut -d' ' -f1)
    [ "$h1" = "$h2" ] || lab_fail "TCP transfer $src -> $dst: sha256 differs ($(stat -c %s "$out") bytes received)"
    local ms=$(( (end - start) / 1000000 ))
    [ "$ms" -gt 0 ] || ms=1
    lab_log "TCP $src -> $dst ($addr): ${mb} MiB byte-for-byte ok, sha256 ${h1:0:16}…, $(( mb * 8 * 1024 * 1024 / 1000 / ms )) Mbit/s"
    rm -f "$out"
}

# lab_listening NS PORT: true when a TCP socket listens on PORT in NS.
lab_listening() {
    lab_x "$1" ss -Htln "sport = :$2" | grep -q .
}

# ---------------------------------------------------------------- WireGuard
# Keys: lab_wg_keys NAME writes $LAB_TMP/NAME.key / NAME.pub (wg genkey).
lab_wg_keys() {
    (umask 077; wg genkey >"$LAB_TMP/$1.key")
    wg pubkey <"$LAB_TMP/$1.key" >"$LAB_TMP/$1.pub"
    chmod 600 "$LAB_TMP/$1.key"
}
lab_pub() { cat "$LAB_TMP/$1.pub"; }

# lab_ifname SUFFIX: a WireGuard interface name unique to this lab run.
# Userspace WireGuard's UAPI socket is /var/run/wireguard/<if>.sock, shared
# by every namespace, so names must be unique machine-wide, not per netns.
lab_ifname() { echo "wg${LAB_ID}$1"; }

# lab_wg_go_up NS IFNAME ADDR/PLEN PORT KEYNAME [MTU]: start wireguard-go
# (in the foreground, so we own its PID) in namespace NS, give it the
# private key $LAB_TMP/KEYNAME.key and listen PORT, the address, and set
# the link up. Add peers with lab_wg_peer.
lab_wg_go_up() {
    local ns=$1 ifn=$2 addr=$3 port=$4 key=$5 mtu=${6:-1420}
    lab_need wireguard-go wg
    lab_spawn "$ns" "wggo-$ns" wireguard-go -f "$ifn"
    lab_wg_finish_up "$ns" "$ifn" "$addr" "$port" "$key" "$mtu" "$LAB_LAST_PID"
}

# lab_wg_finish_up NS IFNAME ADDR PORT KEYNAME MTU PID: the part of bringing
# up a userspace WireGuard interface shared by wireguard-go and boringtun.
lab_wg_finish_up() {
    local ns=$1 ifn=$2 addr=$3 port=$4 key=$5 mtu=$6 pid=$7
    lab_wait_for 10 test -S "/var/run/wireguard/$ifn.sock" ||
        lab_fail "$ifn: UAPI socket did not appear (see $LAB_TMP)"
    kill -0 "$pid" 2>/dev/null || lab_fail "$ifn: daemon exited early"
    lab_x "$ns" wg set "$ifn" private-key "$LAB_TMP/$key.key" listen-port "$port"
    local a
    for a in ${addr//,/ }; do lab_x "$ns" ip addr add "$a" dev "$ifn"; done
    lab_x "$ns" ip link set "$ifn" mtu "$mtu" up
}

# lab_wg_peer NS IFNAME PUBKEY ALLOWEDIPS [ENDPOINT] [KEEPALIVE]: add a peer
# and a route for each of its AllowedIPs via IFNAME.
lab_wg_peer() {
    local ns=$1 ifn=$2 pub=$3 allowed=$4 ep=${5:-} ka=${6:-}
    local args=(peer "$pub" allowed-ips "$allowed")
    [ -n "$ep" ] && args+=(endpoint "$ep")
    [ -n "$ka" ] && args+=(persistent-keepalive "$ka")
    lab_x "$ns" wg set "$ifn" "${args[@]}"
    local p
    for p in ${allowed//,/ }; do lab_x "$ns" ip route replace "$p" dev "$ifn"; done
}

# lab_wg_handshake NS IFNAME PUBKEY: print the peer's latest-handshake
# epoch seconds (0 = never).
lab_wg_handshake() {
    lab_x "$1" wg show "$2" latest-handshakes | awk -v k="$3" '$1 == k { print $2 }'
}

# ------------------------------------------------------- handshake counters
# Count WireGuard handshake initiations a namespace sends: message type 1 is
# 148 bytes of UDP payload, i.e. UDP length 156. Used to prove which side
# initiated.
lab_hs_counter_add() {
    lab_x "$1" nft -f - <<'EOF'
table inet weftlab {
    counter hs_init_out { }
    chain out {
        type filter hook output priority 0; policy accept;
        udp length 156 @th,64,8 1 counter name hs_init_out
    }
}
EOF
}
# lab_hs_sent NS: number of handshake initiations NS has sent so far.
lab_hs_sent() {
    lab_x "$1" nft list counter inet weftlab hs_init_out | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# lab_loss_add NS PERCENT: drop PERCENT% of UDP packets NS receives on veth0
# (nftables numgen, no netem).
lab_loss_add() {
    lab_x "$1" nft -f - <<EOF
table inet weftloss {
    chain in {
        type filter hook input priority -10; policy accept;
        iifname "veth0" meta l4proto udp numgen random mod 100 < $2 drop
    }
}
EOF
}

# ---------------------------------------------------------------- weft
# lab_weft_setup: make $LAB_TMP/bin/{weft,weftd} symlinks to $WEFT_BIN
# (dispatch is on argv[0]) and export WEFT / WEFTD. Skips if missing.
lab_weft_setup() {
    local bin=${WEFT_BIN:-target/release/weft}
    case "$bin" in /*) ;; *) bin="$(pwd)/$bin" ;; esac
    [ -x "$bin" ] || lab_skip "weft binary not found at $bin (build it or set WEFT_BIN)"
    mkdir -p "$LAB_TMP/bin"
    ln -sf "$bin" "$LAB_TMP/bin/weft"
    ln -sf "$bin" "$LAB_TMP/bin/weftd"
    WEFT="$LAB_TMP/bin/weft"
    WEFTD="$LAB_TMP/bin/weftd"
    WEFT_VERBOSE=${WEFT_VERBOSE:-1}
    lab_log "weft binary: $bin"
}

# lab_weft_keys NAME: $LAB_TMP/NAME.key / NAME.pub made with weft's own
# genkey/pubkey (they must interoperate with wg's format).
lab_weft_keys() {
    (umask 077; "$WEFT" genkey >"$LAB_TMP/$1.key") || lab_fail "weft genkey failed"
    "$WEFT" pubkey <"$LAB_TMP/$1.key" >"$LAB_TMP/$1.pub" || lab_fail "weft pubkey failed"
    chmod 600 "$LAB_TMP/$1.key"
    lab_is_key "$(cat "$LAB_TMP/$1.key")" || lab_fail "weft genkey printed no valid key: '$(head -c 100 "$LAB_TMP/$1.key")'"
    lab_is_key "$(cat "$LAB_TMP/$1.pub")" || lab_fail "weft pubkey printed no valid key: '$(head -c 100 "$LAB_TMP/$1.pub")'"
    # Cross-check against wg when present.
    if command -v wg >/dev/null 2>&1; then
        [ "$(wg pubkey <"$LAB_TMP/$1.key")" = "$(cat "$LAB_TMP/$1.pub")" ] ||
            lab_fail "weft pubkey disagrees with wg pubkey"
    fi
}

# lab_is_key STRING: true if STRING is a base64 32-byte key (wg's format).
lab_is_key() {
    [[ "$1" =~ ^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$ ]]
}

# lab_weft_conf NAME KEYNAME ADDRS PORT > file ; then lab_weft_conf_peer
# appends a [Peer]. Writes wg-quick style INI.
lab_weft_conf() {
    local name=$1 key=$2 addrs=$3 port=$4 mtu=${5:-1420}
    cat <<EOF
[Interface]
Name = $name
PrivateKey = $(cat "$LAB_TMP/$key.key")
Address = $addrs
ListenPort = $port
MTU = $mtu
EOF
}
# lab_weft_conf_peer NAME PUBKEY ALLOWEDIPS [ENDPOINT] [KEEPALIVE]
lab_weft_conf_peer() {
    printf '\n[Peer]\nName = %s\nPublicKey = %s\nAllowedIPs = %s\n' "$1" "$2" "$3"
    [ -n "${4:-}" ] && printf 'Endpoint = %s\n' "$4"
    [ -n "${5:-}" ] && printf 'PersistentKeepalive = %s\n' "$5"
    return 0
}

# lab_weftd_up NS NODE TUN PORT: start weftd in NS with config
# $LAB_TMP/NODE.conf, state dir $LAB_TMP/NODE.state, control socket
# $LAB_TMP/NODE.sock, log $LAB_TMP/weftd-NODE.log. Waits until the control
# socket answers `status --json` and the TUN is up. Sets LAB_LAST_PID and
# WEFTD_PID_<NODE>.
lab_weftd_up() {
    local ns=$1 node=$2 tun=$3 port=$4
    mkdir -p "$LAB_TMP/$node.state"
    rm -f "$LAB_TMP/$node.sock"
    ip netns exec "$(lab_ns "$ns")" "$WEFTD" --config "$LAB_TMP/$node.conf" \
        --statedir "$LAB_TMP/$node.state" --socket "$LAB_TMP/$node.sock" \
        --tun "$tun" --port "$port" --verbose "$WEFT_VERBOSE" \
        >>"$LAB_TMP/weftd-$node.log" 2>&1 &
    LAB_LAST_PID=$!
    lab_track "$LAB_LAST_PID"
    printf -v "WEFTD_PID_$node" '%s' "$LAB_LAST_PID"
    local pid=$LAB_LAST_PID
    lab_wait_for 15 lab_weft_alive_and_ok "$pid" "$node" || true
    kill -0 "$pid" 2>/dev/null || lab_fail "weftd $node exited early"
    lab_weft_status_ok "$node" || {
        kill -0 "$pid" 2>/dev/null || lab_fail "weftd $node exited early"
        lab_fail "weftd $node: control socket $LAB_TMP/$node.sock did not answer status --json in 15s"
    }
    lab_wait_for 10 lab_link_up "$ns" "$tun" || lab_fail "weftd $node: TUN $tun not up in $ns"
    lab_log "weftd $node up in $ns (pid $pid, tun $tun, port $port)"
}

# Poll helper: succeed when the status answers, or when the daemon died
# (so lab_wait_for stops waiting for a dead process).
lab_weft_alive_and_ok() { ! kill -0 "$1" 2>/dev/null || lab_weft_status_ok "$2"; }

lab_link_up() { lab_x "$1" ip link show dev "$2" 2>/dev/null | grep -q 'UP'; }

# lab_weft_status NODE: print `weft status --json` of NODE.
lab_weft_status() { timeout 5 "$WEFT" --socket "$LAB_TMP/$1.sock" status --json; }
lab_weft_status_ok() { lab_weft_status "$1" | python3 -c 'import json,sys; json.load(sys.stdin)'; }

# lab_weft_peer_field NODE PUBKEY FIELD: print FIELD of the peer with
# PUBKEY (base64) in NODE's status (JSON-encoded; "null" if no such peer,
# exit 1). Peers are keyed "nodekey:<hex>"; PublicKey may be in either form.
lab_weft_peer_field() {
    lab_weft_status "$1" | python3 -c '
import base64, json, sys
b64, field = sys.argv[1], sys.argv[2]
hexkey = base64.b64decode(b64).hex()
st = json.load(sys.stdin)
for k, p in (st.get("Peer") or {}).items():
    pk = str(p.get("PublicKey", ""))
    if k.lower() == "nodekey:" + hexkey or pk in (b64, hexkey, "nodekey:" + hexkey):
        print(json.dumps(p.get(field)))
        sys.exit(0)
print("null")
sys.exit(1)
' "$2" "$3"
}

# lab_weft_has_peer NODE PUBKEY: true if NODE's status lists the peer.
lab_weft_has_peer() { lab_weft_peer_field "$1" "$2" PublicKey >/dev/null; }

# lab_weft_hs_set NODE PUBKEY: true once LastHandshake looks set (not
# null/0/empty/zero time).
lab_weft_hs_set() {
    local v
    v=$(lab_weft_peer_field "$1" "$2" LastHandshake) || return 1
    case "$v" in null | 0 | '""' | '"0001-01-01T00:00:00Z"' | '"0"') return 1 ;; esac
    return 0
}

# lab_table52 NS: routes in table 52 (both families), one per line.
lab_table52() {
    { lab_x "$1" ip -4 route show table 52 2>/dev/null; lab_x "$1" ip -6 route show table 52 2>/dev/null; } || true
}
# lab_weft_rules NS: ip rules with weft's preferences (both families).
lab_weft_rules() {
    { lab_x "$1" ip -4 rule show; lab_x "$1" ip -6 rule show; } 2>/dev/null |
        grep -E '^(5210|5230|5250|5270):' || true
}
