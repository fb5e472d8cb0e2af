# shellcheck shell=bash
# Interop lab helpers: network namespaces with real Tailscale components
# (testcontrol runner, headscale, tailscaled) as weft's test peers.
#
#   source tests/interop/lib.sh
#   lab_init                     # root check, binaries, hub namespace + bridge, cleanup trap
#   lab_add_ns srv 10.77.0.1     # namespace "<lab>-srv" on the bridge
#   start_testcontrol srv [--authkey K]   -> TC_URL TC_ADMIN TC_AUTHKEY TC_READY(json)
#   start_headscale srv          -> HS_URL HS_KEY HS_CFG
#   lab_add_ns n1 10.77.0.11; start_tailscaled n1; ts_up n1 "$URL" "$KEY"
#   ts n1 status --json
#
# Everything (processes, namespaces, temp dir) is torn down by the EXIT trap.
# Only loopback and addresses inside the lab's own namespaces are used: the
# lab subnet has no route out of the hub namespace, and every process is
# started under `timeout`.
#
# Tunables (env): LAB_SUBNET (default 10.77.0), LAB_TIMEOUT (seconds each
# process may live, default 900), LAB_KEEP=1 (keep temp dir), LAB_VERBOSE=1,
# WEFT_INTEROP_BIN (default <repo>/.cache/interop/bin).

_INTEROP_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_INTEROP_REPO=$(cd "$_INTEROP_HERE/../.." && pwd)
INTEROP_BIN=${WEFT_INTEROP_BIN:-$_INTEROP_REPO/.cache/interop/bin}
LAB_SUBNET=${LAB_SUBNET:-10.77.0}
LAB_TIMEOUT=${LAB_TIMEOUT:-900}

log()  { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit "${LAB_SKIP_RC:-0}"; }

# wait_for DESC SECONDS CMD... : poll CMD every 0.5s until it succeeds.
wait_for() {
    local desc=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${secs}s waiting for: $desc"
            return 1
        fi
        sleep 0.5
    done
}

lab_ns() { echo "${LAB_ID}-$1"; }

# lab_exec NAME CMD... : run CMD in the namespace of lab node NAME.
lab_exec() { local n; n=$(lab_ns "$1"); shift; ip netns exec "$n" "$@"; }

# lab_bg NAME LOGFILE CMD... : start CMD in the background inside NAME,
# bounded by `timeout`; its PID is recorded for teardown. Sets LAST_PID.
lab_bg() {
    local name=$1 logf=$2; shift 2
    ip netns exec "$(lab_ns "$name")" \
        timeout --kill-after=5 "$LAB_TIMEOUT" "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    echo "$LAST_PID $name $1" >>"$LAB_DIR/pids"
}

# lab_stop_pid PID DESC : SIGTERM a process started by lab_bg (`timeout`
# forwards it to the child) and wait up to 10 s for it to exit.
lab_stop_pid() {
    local pid=$1 desc=${2:-process}
    kill -TERM "$pid" 2>/dev/null || return 0
    wait_for "$desc (pid $pid) to exit" 10 lab_pid_gone "$pid" || return 1
}

# lab_pid_gone PID : PID has exited (absent, or a zombie nobody reaped yet:
# the lab may run steps in subshells, which cannot `wait` for each other's children).
lab_pid_gone() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -z $st || $st == Z ]]
}

lab_need_bins() {
    local b
    for b in "$@"; do
        [[ -x $INTEROP_BIN/$b ]] || skip "$b not built: run tests/interop/build.sh (looked in $INTEROP_BIN)"
    done
}

lab_init() {
    [[ $(id -u) == 0 ]] || skip "interop lab needs root (network namespaces, TUN)"
    local t
    for t in ip jq curl timeout; do
        command -v "$t" >/dev/null || skip "'$t' not found (the lab needs iproute2, jq, curl, coreutils)"
    done
    [[ -c /dev/net/tun ]] || modprobe tun 2>/dev/null || true
    [[ -c /dev/net/tun ]] || skip "/dev/net/tun missing"
    LAB_ID=wi$$
    LAB_DIR=$(mktemp -d "/tmp/weft-interop.$LAB_ID.XXXXXX")
    LAB_NODES=()
    : >"$LAB_DIR/pids"
    trap lab_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    local hub; hub=$(lab_ns hub)
    ip netns add "$hub"
    ip -n "$hub" link set lo up
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" link set br0 up
    log "lab $LAB_ID: dir $LAB_DIR, bridge br0 in netns $hub, subnet $LAB_SUBNET.0/24"
}

# lab_add_ns NAME IP : new namespace on the hub bridge with IP/24 on eth0.
# A default route points at the server address (${LAB_SUBNET}.1), which does
# not forward: anything not for the lab dies inside the lab.
lab_add_ns() {
    local name=$1 addr=$2 ns hub
    ns=$(lab_ns "$name"); hub=$(lab_ns hub)
    ip netns add "$ns"
    LAB_NODES+=("$name")
    ip -n "$ns" link set lo up
    ip -n "$hub" link add "v-$name" type veth peer name eth0 netns "$ns"
    ip -n "$hub" link set "v-$name" master br0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    if [[ $addr != "$LAB_SUBNET.1" ]]; then
        ip -n "$ns" route add default via "$LAB_SUBNET.1"
    fi
    log "netns $ns: eth0 $addr/24"
}

lab_cleanup() {
    local rc=$?
    set +e
    trap - EXIT
    [[ -n ${LAB_DIR:-} ]] || exit "$rc"
    log "teardown of lab $LAB_ID (exit $rc)"
    local pid rest
    # Our own PIDs first (timeout forwards TERM to its child).
    while read -r pid rest; do
        kill -TERM "$pid" 2>/dev/null
    done <"$LAB_DIR/pids"
    sleep 1
    while read -r pid rest; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done <"$LAB_DIR/pids"
    # Anything still living inside the lab's namespaces was started by us.
    local n ns
    for n in "${LAB_NODES[@]}" hub; do
        ns=$(lab_ns "$n")
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [[ $rc != 0 || ${LAB_KEEP:-0} == 1 ]]; then
        log "logs kept in $LAB_DIR"
    else
        rm -rf "$LAB_DIR"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- testcontrol

# start_testcontrol NAME [runner flags...] : run the runner in namespace NAME
# on its eth0 address, port 9911; sets TC_URL, TC_ADMIN, TC_AUTHKEY, TC_READY.
start_testcontrol() {
    local name=$1; shift
    lab_need_bins testcontrol-runner
    local ip; ip=$(lab_exec "$name" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    local ready=$LAB_DIR/testcontrol.ready
    lab_bg "$name" "$LAB_DIR/testcontrol.log" "$INTEROP_BIN/testcontrol-runner" \
        --listen "$ip:9911" --derp-port 3340 --stun-port 3478 --ready-file "$ready" "$@"
    TC_PID=$LAST_PID
    wait_for "testcontrol ready file" 30 test -s "$ready" || { tail -20 "$LAB_DIR/testcontrol.log" >&2; die "testcontrol did not start"; }
    TC_READY=$(cat "$ready")
    TC_URL=$(jq -r .control_url <<<"$TC_READY")
    TC_ADMIN=$(jq -r .admin_url <<<"$TC_READY")
    # shellcheck disable=SC2034 # for callers
    TC_AUTHKEY=$(jq -r '.authkey // ""' <<<"$TC_READY")
    wait_for "testcontrol healthz" 10 lab_exec "$name" curl -fsS "${TC_ADMIN}healthz" || die "testcontrol admin not answering"
    log "testcontrol up: $TC_URL (admin ${TC_ADMIN}, DERP $(jq -r .derp_url <<<"$TC_READY"), STUN $(jq -r .stun_addr <<<"$TC_READY"))"
}

# tc_admin NAME METHOD PATH : call the runner admin API (PATH relative to
# TC_ADMIN, e.g. "nodes" or "nodes/remove?name=n2") from namespace NAME.
tc_admin() { lab_exec "$1" curl -fsS -X "$2" "${TC_ADMIN%/}/${3#/}"; }

# stop_testcontrol : SIGTERM the runner and wait (10 s) until it is gone.
stop_testcontrol() { lab_stop_pid "$TC_PID" testcontrol; }

# restart_testcontrol NAME [runner flags...] : stop the runner and start a new
# one with the given flags (testcontrol keeps no state: the new one has a new
# Noise key and no nodes). The old log is kept as testcontrol.log.N.
restart_testcontrol() {
    stop_testcontrol
    local n=1
    while [[ -e $LAB_DIR/testcontrol.log.$n ]]; do n=$((n + 1)); done
    mv "$LAB_DIR/testcontrol.log" "$LAB_DIR/testcontrol.log.$n"
    rm -f "$LAB_DIR/testcontrol.ready"
    start_testcontrol "$@"
}

# testcontrol_alive : the runner has not crashed.
testcontrol_alive() {
    ! lab_pid_gone "$TC_PID" && ! grep -q 'CONTROL SERVER CRASHED' "$LAB_DIR/testcontrol.log"
}

# ------------------------------------------------------------------ headscale

# start_headscale NAME [--derp-tls] : headscale in namespace NAME on its eth0
# address, control over plain HTTP on :8080; creates user "weft" and a
# reusable pre-auth key. Sets HS_URL, HS_KEY, HS_CFG, HS_USER_ID.
# DERP, by default: headscale's embedded DERP on :8080 and STUN on :3478,
#   plain HTTP, so Go clients need TS_DEBUG_USE_DERP_HTTP=1.
# DERP with --derp-tls: embedded DERP off; a separate `derper` serves TLS
#   (self-signed IP cert) on :3340 and STUN on :3478, described to headscale
#   in a derp.paths file with InsecureForTests, like the testcontrol runner.
# DNS: HS_MAGIC_DNS=true turns MagicDNS on (names under HS_BASE_DOMAIN, default
#   weft-interop.test); HS_NAMESERVERS is the YAML list body of the global
#   resolvers, e.g. HS_NAMESERVERS=10.77.0.53, which control sends as the
#   tailnet's Resolvers only with HS_OVERRIDE_LOCAL_DNS=true; HS_SPLIT_DNS is
#   the YAML map body of split DNS, e.g. HS_SPLIT_DNS='corp.test: [100.64.0.2]'.
#   HS_DNS_SEARCH is the YAML list body of search domains after the base domain.
start_headscale() {
    local name=$1 derptls=0
    [[ ${2:-} == --derp-tls ]] && derptls=1
    lab_need_bins headscale
    local ip; ip=$(lab_exec "$name" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    local d=$LAB_DIR/headscale
    mkdir -p "$d"
    local embedded=true paths="[]"
    if [[ $derptls == 1 ]]; then
        lab_need_bins derper
        mkdir -p "$d/derper"
        start_derper "$name"
        cat >"$d/derpmap.yaml" <<YAML
regions:
  900:
    regionid: 900
    regioncode: derper
    regionname: weft interop derper
    nodes:
      - name: 900a
        regionid: 900
        hostname: "$ip"
        ipv4: "$ip"
        ipv6: "none"
        stunport: 3478
        derpport: 3340
        insecurefortests: true
YAML
        embedded=false paths="[$d/derpmap.yaml]"
        log "derper up: https://$ip:3340/derp (self-signed), STUN $ip:3478"
    fi
    HS_CFG=$d/config.yaml
    HS_URL=http://$ip:8080
    cat >"$HS_CFG" <<YAML
server_url: $HS_URL
listen_addr: $ip:8080
metrics_listen_addr: ""
grpc_listen_addr: 127.0.0.1:50443
grpc_allow_insecure: false
noise:
  private_key_path: $d/noise_private.key
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: $embedded
    region_id: 999
    region_code: "headscale"
    region_name: "Headscale Embedded DERP"
    verify_clients: true
    stun_listen_addr: "$ip:3478"
    private_key_path: $d/derp_server_private.key
    automatically_add_embedded_derp_region: true
    ipv4: $ip
    ipv6: "none"
  urls: []
  paths: $paths
  auto_update_enabled: false
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: $d/db.sqlite
    write_ahead_log: true
policy:
  mode: file
  path: ""
dns:
  magic_dns: ${HS_MAGIC_DNS:-false}
  base_domain: ${HS_BASE_DOMAIN:-weft-interop.test}
  override_local_dns: ${HS_OVERRIDE_LOCAL_DNS:-false}
  nameservers:
    global: [${HS_NAMESERVERS:-}]
    split: {${HS_SPLIT_DNS:-}}
  search_domains: [${HS_DNS_SEARCH:-}]
unix_socket: $d/headscale.sock
unix_socket_permission: "0770"
log:
  level: ${HS_LOG_LEVEL:-info}
  format: text
logtail:
  enabled: false
YAML
    lab_bg "$name" "$d/headscale.log" "$INTEROP_BIN/headscale" -c "$HS_CFG" serve
    HS_PID=$LAST_PID
    wait_for "headscale /health" 60 lab_exec "$name" curl -fsS "$HS_URL/health" \
        || { tail -30 "$d/headscale.log" >&2; die "headscale did not start"; }
    wait_for "headscale unix socket" 20 test -S "$d/headscale.sock" || die "no headscale socket"
    hs "$name" users create weft >/dev/null || die "headscale users create failed"
    HS_USER_ID=$(hs "$name" users list -o json | jq -r '.[] | select(.name=="weft") | .id')
    [[ -n $HS_USER_ID ]] || die "could not find headscale user id"
    HS_KEY=$(hs "$name" preauthkeys create -u "$HS_USER_ID" --reusable -e 1h -o json | jq -r .key)
    [[ -n $HS_KEY && $HS_KEY != null ]] || die "could not create pre-auth key"
    log "headscale up: $HS_URL, user weft (id $HS_USER_ID), pre-auth key ${HS_KEY:0:12}..."
}

# start_derper NAME : the pinned derper in namespace NAME on its eth0 address:
# TLS on :3340 (self-signed IP cert), STUN on :3478, its key and cert kept in
# $LAB_DIR/headscale/derper, so a restarted derper is the same server. Sets
# DERPER_PID; earlier logs are kept as derper.log.N.
start_derper() {
    local name=$1 d=$LAB_DIR/headscale n=1 ip
    ip=$(lab_exec "$name" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    if [[ -e $d/derper.log ]]; then
        while [[ -e $d/derper.log.$n ]]; do n=$((n + 1)); done
        mv "$d/derper.log" "$d/derper.log.$n"
    fi
    lab_bg "$name" "$d/derper.log" "$INTEROP_BIN/derper" -a "$ip:3340" -http-port -1 \
        -stun-port 3478 -certmode manual -hostname "$ip" -certdir "$d/derper" -c "$d/derper/derper.json"
    # shellcheck disable=SC2034 # for callers
    DERPER_PID=$LAST_PID
    wait_for "derper TLS on $ip:3340" 20 lab_exec "$name" curl -ksf "https://$ip:3340/derp/probe" \
        || { tail -20 "$d/derper.log" >&2; die "derper did not start"; }
}

# lab_crash_pid PID DESC : SIGKILL the daemon a lab_bg PID runs (the child of
# its `timeout`), as a crash would: the kernel resets its connections. Waits
# (10 s) for both to be gone.
lab_crash_pid() {
    local pid=$1 desc=${2:-process} child
    child=$(pgrep -P "$pid") || return 1
    kill -KILL "$child"
    wait_for "$desc (pid $child) to die" 10 lab_pid_gone "$pid"
}

# hs NAME ARGS... : headscale CLI (talks to the unix socket).
hs() { local name=$1; shift; lab_exec "$name" timeout 30 "$INTEROP_BIN/headscale" -c "$HS_CFG" "$@"; }

headscale_alive() { ! lab_pid_gone "$HS_PID"; }

# stop_headscale : SIGTERM headscale and wait (10 s) until it is gone.
stop_headscale() { lab_stop_pid "$HS_PID" headscale; }

# restart_headscale NAME : start headscale again with the same config, i.e. the
# same sqlite DB and Noise key, after stop_headscale (or stops it first).
# Sets HS_PID; HS_URL, HS_KEY, HS_USER_ID stay valid.
restart_headscale() {
    local name=$1 d=$LAB_DIR/headscale n=1
    headscale_alive && stop_headscale
    while [[ -e $d/headscale.log.$n ]]; do n=$((n + 1)); done
    mv "$d/headscale.log" "$d/headscale.log.$n"
    lab_bg "$name" "$d/headscale.log" "$INTEROP_BIN/headscale" -c "$HS_CFG" serve
    HS_PID=$LAST_PID
    wait_for "headscale /health" 60 lab_exec "$name" curl -fsS "$HS_URL/health" \
        || { tail -30 "$d/headscale.log" >&2; die "headscale did not restart"; }
    log "headscale restarted (same config and DB): $HS_URL"
}

# ------------------------------------------------------------------ tailscaled

# start_tailscaled NAME [VAR=value ...] : real tailscaled with a kernel TUN
# (tailscale0) in namespace NAME. Extra VAR=value pairs go into its env
# (e.g. TS_DEBUG_USE_DERP_HTTP=1 for headscale's plain-HTTP DERP).
start_tailscaled() {
    local name=$1; shift
    lab_need_bins tailscaled tailscale
    local d=$LAB_DIR/$name
    mkdir -p "$d"
    lab_bg "$name" "$d/tailscaled.log" env \
        TS_NO_LOGS_NO_SUPPORT=true \
        TS_PANIC_IF_HIT_MAIN_CONTROL=1 \
        TS_DISABLE_PORTMAPPER=1 \
        TS_ASSUME_NETWORK_UP_FOR_TEST=1 \
        TS_DEBUG_LOG_RATE=all \
        TS_LOGS_DIR="$d" \
        "$@" \
        "$INTEROP_BIN/tailscaled" \
        --tun=tailscale0 --port=41641 --no-logs-no-support \
        --state="$d/tailscaled.state" --statedir="$d" --socket="$d/tailscaled.sock" \
        --verbose="${TS_VERBOSE:-1}"
    eval "TSD_PID_$name=$LAST_PID"
    wait_for "tailscaled socket in $name" 30 test -S "$d/tailscaled.sock" \
        || { tail -30 "$d/tailscaled.log" >&2; die "tailscaled in $name did not start"; }
    log "tailscaled up in $(lab_ns "$name") (socket $d/tailscaled.sock)"
}

# ts NAME ARGS... : tailscale CLI against NAME's daemon.
ts() { local name=$1; shift; lab_exec "$name" timeout 60 "$INTEROP_BIN/tailscale" --socket="$LAB_DIR/$name/tailscaled.sock" "$@"; }

# ts_up NAME LOGIN_URL [AUTHKEY] : register NAME with hostname NAME.
ts_up() {
    local name=$1 url=$2 key=${3:-}
    local args=(up --login-server="$url" --hostname="$name" --accept-dns=false
        --netfilter-mode=off --reset --timeout=60s)
    [[ -n $key ]] && args+=(--auth-key="$key")
    ts "$name" "${args[@]}" || { tail -30 "$LAB_DIR/$name/tailscaled.log" >&2; die "tailscale up on $name failed"; }
    log "$name: up, tailscale IPs $(ts "$name" ip -4) $(ts "$name" ip -6)"
}

ts_status_json() { ts "$1" status --json; }

# ts_ip NAME : NAME's tailscale IPv4.
ts_ip() { ts "$1" ip -4; }

# ts_sees NAME PEER_IP : NAME's status lists a peer with PEER_IP.
ts_sees() { ts_status_json "$1" | jq -e --arg ip "$2" '[.Peer[]? | select(.TailscaleIPs | index($ip))] | length > 0' >/dev/null; }

ts_not_sees() { ! ts_sees "$@"; }

# ts_peers NAME : "hostname ip online" lines for NAME's peers.
ts_peers() { ts_status_json "$1" | jq -r '.Peer[]? | "\(.HostName) \(.TailscaleIPs | join(",")) online=\(.Online) cur=\(.CurAddr) relay=\(.Relay)"'; }

# ------------------------------------------------------------------ paths

# lab_block_udp NAME PEER_ADDR... : drop all UDP between namespace NAME and
# the lab addresses PEER_ADDR... (nft, inside NAME only), forcing DERP.
# Control, DERP (TCP) and STUN (to the server address) are untouched.
lab_block_udp() {
    local name=$1 set; shift
    set=$(IFS=,; echo "$*")
    lab_exec "$name" nft -f - <<NFT
table inet weftlab {
  chain out { type filter hook output priority 0; ip daddr { $set } meta l4proto udp drop; }
  chain in  { type filter hook input priority 0; ip saddr { $set } meta l4proto udp drop; }
}
NFT
}

# lab_unblock_udp NAME : undo lab_block_udp.
lab_unblock_udp() { lab_exec "$1" nft delete table inet weftlab; }

# ------------------------------------------------------------------ NAT

# lab_add_router NAME PUBLIC_IP LAN [MASQUERADE_FLAGS] : a NAT router namespace
# with eth0 PUBLIC_IP/24 on the hub bridge (the "public" network) and lan0
# LAN.1/24 (LAN is a /24 prefix such as 192.168.2) for the nodes behind it.
# It forwards only between lan0 and eth0 and masquerades what leaves eth0.
# Without flags Linux keeps the source port when it is free: one mapping for
# every destination (endpoint-independent). "fully-random" picks a new port for
# every new conntrack entry, i.e. every destination (endpoint-dependent).
# Inbound packets pass only when they match a mapping (conntrack); anything
# else is dropped before conntrack records it (address-and-port-dependent
# filtering, as a home NAT does). Were it recorded, an early hole-punching
# packet from the peer would hold the tuple <public>:41641 <-> peer, and the
# node's own first packet to the peer would then be masqueraded to another
# port, which the peer's NAT has no mapping for: a lab-made deadlock.
lab_add_router() {
    local name=$1 public=$2 lan=$3 flags=${4:-}
    lab_add_ns "$name" "$public"
    local ns; ns=$(lab_ns "$name")
    ip -n "$ns" route del default 2>/dev/null
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    eval "LAB_LAN_$name=$lan"
    ip netns exec "$ns" nft -f - <<NFT || die "nft failed in router $name"
table ip weftnat {
  chain post { type nat hook postrouting priority srcnat; oifname "eth0" masquerade $flags; }
  chain inbound {
    type filter hook prerouting priority mangle; policy accept;
    iifname "eth0" ct state new drop
  }
  chain forward_lan {
    type filter hook forward priority 0; policy drop;
    iifname "lan0" oifname "eth0" accept
    iifname "eth0" oifname "lan0" ct state established,related accept
  }
}
NFT
    log "netns $ns: NAT router, public $public, LAN $lan.0/24, masquerade ${flags:-(port-preserving)}"
}

# lab_add_behind NAME ROUTER IP : a node namespace on ROUTER's LAN (a veth to
# its lan0; the first node behind a router creates lan0), default route via
# the router, so everything it sends to the lab goes through the NAT.
lab_add_behind() {
    local name=$1 router=$2 addr=$3 ns rns lan
    ns=$(lab_ns "$name"); rns=$(lab_ns "$router")
    eval "lan=\$LAB_LAN_$router"
    ip netns add "$ns"
    LAB_NODES+=("$name")
    ip -n "$ns" link set lo up
    if ! ip -n "$rns" link show lan0 >/dev/null 2>&1; then
        ip -n "$rns" link add lan0 type bridge
        ip -n "$rns" addr add "$lan.1/24" dev lan0
        ip -n "$rns" link set lan0 up
    fi
    ip -n "$rns" link add "v-$name" type veth peer name eth0 netns "$ns"
    ip -n "$rns" link set "v-$name" master lan0 up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$lan.1"
    log "netns $ns: eth0 $addr/24 behind $router"
}
