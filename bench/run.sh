#!/usr/bin/env bash
# bench/run.sh — weft's benchmark: one run, in network namespaces, side by
# side: raw veth, weftd<->weftd, wireguard-go<->wireguard-go,
# boringtun-cli<->boringtun-cli. Prints a Markdown table and writes it to
# docs/benchmarks.md (with date, kernel, CPU and the method).
#
#   BENCH_SECONDS      seconds per iperf3 test (default 10)
#   BENCH_UDP_RATES    UDP offered rates (default "200M 800M")
#   BENCH_UDP_LEN      UDP payload bytes (default 1200, fits every tunnel)
#   BENCH_UDP_BUF      iperf3 -w socket buffer for UDP (default 4M)
#   BENCH_IDLE_SECONDS idle window for wake-up counting (default 5)
#   BENCH_SETTLE_SECONDS quiet time after the handshake before that window (default 35)
#   BENCH_IMPLS        rows to run (default "veth weft wireguard-go boringtun tailscaled
#                      weft-tailscaled weft-tailscaled-derp"; "" = none; the last three
#                      run through a real tailnet: bench/tailnet_row.sh)
#   BENCH_SCALE_PEERS  peer counts of the scale rows (default "1000 10000"; "" = none)
#   BENCH_OUT          Markdown file to write (default docs/benchmarks.md; "-" = don't)
#   WEFT_BIN           weft binary (default target/release/weft)
#   SCALE_BIN          scale harness (default target/release/examples/scale)
#   BORINGTUN_BIN      boringtun-cli (default .cache/boringtun/bin/boringtun-cli, then PATH)
#
# Each row runs in its own child process (`bench/run.sh --row IMPL JSON`)
# with its own namespaces and cleanup, so one failing row doesn't stop the
# others; it is marked in the table with the reason.
#
# The scale rows (`bench/run.sh --scale N JSON`) time the engine with N-peer
# netmaps in memory (src/scale_bench.rs, run as examples/scale), then start a weftd with a generated
# N-peer static config to measure its memory and `weft status` latency.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_UDP_RATES=${BENCH_UDP_RATES:-"200M 800M"}
BENCH_UDP_LEN=${BENCH_UDP_LEN:-1200}
BENCH_UDP_BUF=${BENCH_UDP_BUF:-4M}
BENCH_IDLE_SECONDS=${BENCH_IDLE_SECONDS:-5}
BENCH_SETTLE_SECONDS=${BENCH_SETTLE_SECONDS:-35}
BENCH_IMPLS=${BENCH_IMPLS-"veth weft wireguard-go boringtun tailscaled weft-tailscaled weft-tailscaled-derp"}
BENCH_SCALE_PEERS=${BENCH_SCALE_PEERS-"1000 10000"}
BENCH_OUT=${BENCH_OUT:-$repo/docs/benchmarks.md}
export WEFT_BIN=${WEFT_BIN:-$repo/target/release/weft}
case "$WEFT_BIN" in /*) ;; *) WEFT_BIN="$(pwd)/$WEFT_BIN" ;; esac
export SCALE_BIN=${SCALE_BIN:-$repo/target/release/examples/scale}
export BENCH_SECONDS BENCH_UDP_RATES BENCH_UDP_LEN BENCH_UDP_BUF BENCH_IDLE_SECONDS BENCH_SETTLE_SECONDS

# ------------------------------------------------------------ one row
# shellcheck source=measure.sh
. "$here/measure.sh"

row() {
    local impl=$1 out=$2
    case "$impl" in
    tailscaled | weft-tailscaled | weft-tailscaled-derp) exec bash "$here/tailnet_row.sh" "$impl" "$out" ;;
    esac
    # shellcheck source=../tests/lab/lib.sh
    . "$repo/tests/lab/lib.sh"
    local per_test=$((BENCH_SECONDS + 20)) ntests
    ntests=$((2 + $(wc -w <<<"$BENCH_UDP_RATES")))
    lab_init $((ntests * per_test + BENCH_IDLE_SECONDS + 90))
    lab_need iperf3 ping python3 ss
    lab_ns_pair a b
    local dst pids=() note=""
    case "$impl" in
    veth)
        dst=$LAB_IP_b
        note="no tunnel: the ceiling"
        ;;
    wireguard-go)
        lab_need wireguard-go wg
        lab_wg_keys a
        lab_wg_keys b
        local ifa ifb
        ifa=$(lab_ifname a) ifb=$(lab_ifname b)
        lab_wg_go_up a "$ifa" 10.210.0.1/24 51820 a
        pids+=("$LAB_LAST_PID")
        lab_wg_go_up b "$ifb" 10.210.0.2/24 51820 b
        pids+=("$LAB_LAST_PID")
        lab_wg_peer a "$ifa" "$(lab_pub b)" 10.210.0.2/32 "$LAB_IP_b:51820"
        lab_wg_peer b "$ifb" "$(lab_pub a)" 10.210.0.1/32 "$LAB_IP_a:51820"
        dst=10.210.0.2
        note="wireguard-go $(wireguard-go --version 2>/dev/null | awk 'NR==1 {print $2}')"
        ;;
    boringtun)
        lab_need wg
        local bt=${BORINGTUN_BIN:-}
        [ -n "$bt" ] || { [ -x "$repo/.cache/boringtun/bin/boringtun-cli" ] && bt=$repo/.cache/boringtun/bin/boringtun-cli; } || true
        [ -n "$bt" ] || bt=$(command -v boringtun-cli || true)
        [ -n "$bt" ] && [ -x "$bt" ] || lab_skip "boringtun-cli not built (run scripts/install-bench-deps.sh)"
        lab_wg_keys a
        lab_wg_keys b
        local n ifn
        for n in a b; do
            ifn=$(lab_ifname "$n")
            lab_spawn "$n" "boringtun-$n" "$bt" --foreground --disable-drop-privileges "$ifn"
            pids+=("$LAB_LAST_PID")
            lab_wg_finish_up "$n" "$ifn" "10.210.0.$([ $n = a ] && echo 1 || echo 2)/24" 51820 "$n" 1420 "$LAB_LAST_PID"
        done
        lab_wg_peer a "$(lab_ifname a)" "$(lab_pub b)" 10.210.0.2/32 "$LAB_IP_b:51820"
        lab_wg_peer b "$(lab_ifname b)" "$(lab_pub a)" 10.210.0.1/32 "$LAB_IP_a:51820"
        dst=10.210.0.2
        note="boringtun-cli $("$bt" --version 2>/dev/null | awk '{print $2}'), 4 threads (default)"
        ;;
    weft)
        lab_weft_setup
        lab_wg_keys a
        lab_wg_keys b
        {
            lab_weft_conf node-a a 10.210.0.1/32 41641
            lab_weft_conf_peer node-b "$(lab_pub b)" 10.210.0.2/32 "$LAB_IP_b:41641"
        } >"$LAB_TMP/a.conf"
        {
            lab_weft_conf node-b b 10.210.0.2/32 41641
            lab_weft_conf_peer node-a "$(lab_pub a)" 10.210.0.1/32 "$LAB_IP_a:41641"
        } >"$LAB_TMP/b.conf"
        WEFT_VERBOSE=${WEFT_VERBOSE:-0}
        lab_weftd_up a a weft0 41641
        pids+=("$LAB_LAST_PID")
        lab_weftd_up b b weft0 41641
        pids+=("$LAB_LAST_PID")
        dst=10.210.0.2
        note="weft $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
        ;;
    *) lab_fail "unknown implementation $impl" ;;
    esac

    lab_ping_first a "$dst" 10
    lab_ping a "$dst" 3

    bench_in_a() { lab_x a "$@"; }
    bench_iperf_server() {
        lab_spawn b iperf3 iperf3 -s -p "$1"
        lab_wait_for 10 lab_listening b "$1" || lab_fail "iperf3 server did not start"
    }
    bench_log() { lab_log "$@"; }
    bench_fail() { lab_fail "$@"; }
    BENCH_TMP=$LAB_TMP
    measure_tunnel "$out" "$impl" "$note" "$dst" "${pids[@]}"
}

# ------------------------------------------------------------ one scale row
# scale_config N KEYFILE: an N-peer static config for the node of KEYFILE.
# Every peer has two Tailscale addresses, an endpoint and a random key (a
# peer's key needs no private half here); one process writes them all.
scale_config() {
    python3 - "$1" "$2" <<'EOF'
import base64, os, sys
n, key = int(sys.argv[1]), open(sys.argv[2]).read().strip()
out = ["[Interface]", "Name = scale", "PrivateKey = " + key, "Address = 100.64.0.1/32", ""]
for i in range(n):
    a = 0x64400002 + i
    v4 = ".".join(str(a >> s & 255) for s in (24, 16, 8, 0))
    out += ["[Peer]", "Name = peer%d" % i,
            "PublicKey = " + base64.b64encode(os.urandom(32)).decode(),
            "AllowedIPs = %s/32, fd7a:115c:a1e0::%x/128" % (v4, i + 2),
            "Endpoint = 192.0.2.%d:41641" % (i % 250 + 1), ""]
print("\n".join(out))
EOF
}

now_ns() { date +%s%N; }

scale_row() {
    local n=$1 out=$2
    # shellcheck source=../tests/lab/lib.sh
    . "$repo/tests/lab/lib.sh"
    lab_init 600
    lab_need python3
    [ -x "$SCALE_BIN" ] || lab_skip "scale harness not built (cargo build --release --example scale)"
    lab_log "scale: engine with $n peers in memory"
    "$SCALE_BIN" "$n" >"$LAB_TMP/engine.json" || lab_fail "scale harness failed"
    lab_weft_setup
    WEFT_VERBOSE=0
    lab_ns_add s
    lab_weft_keys s
    scale_config 0 "$LAB_TMP/s.key" >"$LAB_TMP/empty.conf"
    scale_config "$n" "$LAB_TMP/s.key" >"$LAB_TMP/full.conf"
    local rss_empty rss_full t0 start_ms i times=()
    lab_weftd_up s empty weft0 41641
    sleep 2
    rss_empty=$(status_kb VmRSS "$LAB_LAST_PID")
    lab_kill "$LAB_LAST_PID"
    t0=$(now_ns)
    lab_weftd_up s full weft0 41641
    start_ms=$(( ($(now_ns) - t0) / 1000000 ))
    sleep 2
    rss_full=$(status_kb VmRSS "$LAB_LAST_PID")
    lab_weft_status full >"$LAB_TMP/status.json" || lab_fail "weft status failed"
    for i in 1 2 3 4 5; do
        t0=$(now_ns)
        lab_weft_status full >/dev/null || lab_fail "weft status failed"
        times+=($(( ($(now_ns) - t0) / 1000 )))
    done
    kill -0 "$LAB_LAST_PID" 2>/dev/null || lab_fail "weftd died"
    python3 - "$out" "$n" "$LAB_TMP/engine.json" "$LAB_TMP/status.json" "$rss_empty" "$rss_full" \
        "$(wc -c <"$LAB_TMP/full.conf")" "$start_ms" "${times[@]}" <<'EOF'
import json, statistics, sys
out, n, engine, status, rss_empty, rss_full, conf_bytes, start_ms = sys.argv[1:9]
res = json.load(open(engine))
peers = json.load(open(status))["Peer"]
if len(peers) != int(n):
    sys.exit("status lists %d peers, not %s" % (len(peers), n))
res.update(status="ok", config_bytes=int(conf_bytes), weftd_start_ms=int(start_ms),
           weftd_rss_empty_kib=int(rss_empty), weftd_rss_kib=int(rss_full),
           weftd_rss_per_peer_kib=(int(rss_full) - int(rss_empty)) / int(n),
           weft_status_ms=statistics.median(int(t) for t in sys.argv[9:]) / 1000)
json.dump(res, open(out, "w"))
EOF
}

if [ "${1:-}" = "--row" ]; then
    row "$2" "$3"
    exit 0
fi
if [ "${1:-}" = "--scale" ]; then
    scale_row "$2" "$3"
    exit 0
fi

# ------------------------------------------------------------ all rows
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root (network namespaces)" >&2; exit 1; }
work=$(mktemp -d /tmp/weftbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "bench: ${BENCH_SECONDS}s per test, UDP at $BENCH_UDP_RATES, rows: $BENCH_IMPLS" >&2
# run_child MODE NAME: `$0 MODE NAME $work/NAME.json`; a row that fails or is
# skipped still gets a JSON file, with the reason as its status.
run_child() {
    local mode=$1 name=$2 rc=0 why status
    echo "bench: --- $name ---" >&2
    LAB_QUIET=${LAB_QUIET:-0} "$0" "$mode" "$name" "$work/$name.json" 2>"$work/$name.log" || rc=$?
    if [ "$rc" -eq 0 ] && [ -s "$work/$name.json" ]; then
        echo "bench: $name ok" >&2
        return
    fi
    if [ "$rc" -eq 77 ]; then
        why=$(sed -n 's/^\[lab\] SKIP: //p' "$work/$name.log" | tail -1)
        status="unavailable: ${why:-skipped}"
    else
        why=$(sed -n 's/^\[lab [0-9:]*\] FAIL: //p' "$work/$name.log" | tail -1)
        status="FAILED (exit $rc): ${why:-see log}"
        tail -n 30 "$work/$name.log" | sed 's/^/    /' >&2
    fi
    echo "bench: $name $status" >&2
    python3 -c 'import json,sys; json.dump({"impl": sys.argv[1], "status": sys.argv[2]}, open(sys.argv[3], "w"))' \
        "$name" "$status" "$work/$name.json"
}
for impl in $BENCH_IMPLS; do
    run_child --row "$impl"
done
for n in $BENCH_SCALE_PEERS; do
    run_child --scale "$n"
done

table=$(python3 - "$BENCH_UDP_RATES" $(for i in $BENCH_IMPLS; do echo "$work/$i.json"; done) <<'EOF'
import json, sys
rates = sys.argv[1].split()
rows = [json.load(open(p)) for p in sys.argv[2:]]
def f(v, nd=0):
    return "–" if v is None else f"{v:.{nd}f}"
hdr = ["", "TCP 1 stream Mbit/s", "TCP 4 streams Mbit/s"]
for r in rates:
    hdr += [f"UDP {r} rx Mbit/s (loss %)"]
hdr += ["daemon CPU s/GB", "idle RSS MiB", "peak RSS MiB", "idle wake-ups/s", "notes"]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(hdr) - 2) + ["---"]) + "|")
for r in rows:
    name = {"veth": "raw veth", "weft": "weftd", "wireguard-go": "wireguard-go", "boringtun": "boringtun-cli",
            "tailscaled": "tailscaled ↔ tailscaled", "weft-tailscaled": "weftd ↔ tailscaled",
            "weft-tailscaled-derp": "weftd ↔ tailscaled via DERP"}.get(r["impl"], r["impl"])
    if r.get("status") != "ok":
        print("| " + " | ".join([name] + ["–"] * (len(hdr) - 2) + [r["status"].replace("|", "/")]) + " |")
        continue
    cells = [name, f(r["tcp1"]), f(r["tcp4"])]
    for rate in rates:
        u = r["udp"].get(rate)
        cells.append(f"{u['mbps']:.0f} ({u['loss']:.2f})" if u else "–")
    cells += [f(r.get("cpu_s_per_gb"), 2), f(r.get("idle_rss_mib"), 1), f(r.get("peak_rss_mib"), 1),
              f(r.get("wakeups"), 1), r.get("note", "")]
    print("| " + " | ".join(cells) + " |")
EOF
)
[ -n "$BENCH_IMPLS" ] || table="(no throughput rows: BENCH_IMPLS was empty)"
echo
echo "$table"

scale_table=$(python3 - $(for n in $BENCH_SCALE_PEERS; do echo "$work/$n.json"; done) <<'EOF'
import json, sys
rows = [json.load(open(p)) for p in sys.argv[1:]]
def f(r, key, nd=1):
    v = r.get(key)
    return "–" if v is None else f"{v:.{nd}f}"
hdr = ["peers", "weftd RSS KiB/peer", "engine RSS KiB/peer", "first load ms",
       "full reconfiguration ms", "same netmap again ms", "one-peer delta µs (add / remove / routes)",
       "control one-peer patch, end to end ms", "status answer ms (longest hold)", "`weft status --json` ms (MB)", "config parse ms (MB)", "weftd start s"]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join(["---:"] * len(hdr)) + "|")
for r in rows:
    if r.get("status") != "ok":
        print("| " + " | ".join([r["impl"]] + ["–"] * (len(hdr) - 2) + [r["status"].replace("|", "/")]) + " |")
        continue
    cells = [str(r["peers"]), f(r, "weftd_rss_per_peer_kib"), f(r, "engine_rss_kib_per_peer"),
             f(r, "load_ms", 0), f(r, "reconfigure_ms"), f(r, "reapply_unchanged_ms"),
             f"{r['delta_add_us']:.0f} / {r['delta_remove_us']:.0f} / {r['delta_routes_us']:.0f}",
             f(r, "control_delta_ms", 2),
             f"{f(r, 'status_ms')} ({max(r.get('status_slice_max_ms', 0), r.get('status_finish_ms', 0)):.1f})",
             f"{r['weft_status_ms']:.0f} ({r['status_bytes'] / 1e6:.1f})",
             f"{r['config_parse_ms']:.1f} ({r['config_bytes'] / 1e6:.1f})", f"{r['weftd_start_ms'] / 1000:.1f}"]
    print("| " + " | ".join(cells) + " |")
tunn = next((r["tunn_bytes"] for r in rows if r.get("status") == "ok"), None)
if tunn:
    print()
    print(f"A peer in use holds a boringtun `Tunn` of {tunn} bytes (with an x25519 computation to")
    print("make it). Idle single-address peers hold none (lazy WireGuard configuration): the rows")
    print("above are of such peers, which is why a load makes no session at all.")
EOF
)
[ -z "$BENCH_SCALE_PEERS" ] || { echo; echo "$scale_table"; }

if [ "$BENCH_OUT" != "-" ]; then
    mkdir -p "$(dirname "$BENCH_OUT")"
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    {
        echo "# Benchmarks"
        echo
        echo "Generated by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        echo "- kernel: $(uname -r) ($(uname -m))"
        echo "- CPU: ${cpu:-unknown}, $(nproc) cores available"
        echo "- weft: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo
        echo "$table"
        echo
        echo "## Method"
        echo
        echo "Each row runs in two fresh network namespaces joined by a veth pair;"
        echo "the tunnel daemons run one per namespace and the traffic goes through"
        echo "their TUN devices (MTU 1420), \"raw veth\" is the same path with no tunnel."
        echo "iperf3 runs ${BENCH_SECONDS}s per test: TCP with 1 stream and with \`-P 4\`,"
        echo "then UDP at fixed offered rates ($BENCH_UDP_RATES, ${BENCH_UDP_LEN}-byte payloads,"
        echo "\`-w $BENCH_UDP_BUF\` so the iperf3 receiver is not the bottleneck),"
        echo "reporting the receiver's rate and loss. Throughput is the receiver's."
        echo
        echo "- **daemon CPU s/GB**: utime+stime (from /proc/PID/stat, all threads) of"
        echo "  both daemons over all the iperf3 tests, divided by the GB (10^9 bytes)"
        echo "  received in them. Kernel work done outside the daemon's context"
        echo "  (softirq, the veth) is not counted."
        echo "- **idle RSS**: VmRSS at the end of that idle window; **peak RSS**: VmHWM"
        echo "  after the tests; both the larger of the two daemons."
        echo "- **idle wake-ups/s**: voluntary + nonvoluntary context switches, summed"
        echo "  over all threads, during ${BENCH_IDLE_SECONDS}s of idle, ${BENCH_SETTLE_SECONDS}s after a handshake with"
        echo "  no keepalives configured; mean per daemon."
        echo
        echo "The last three rows run through a real tailnet (bench/tailnet_row.sh): Tailscale's"
        echo "testcontrol with its DERP and STUN server in a third namespace, tailscaled built"
        echo "from Go modules by tests/interop/build.sh, the pair registered with it and the path"
        echo "checked before measuring (a disco-proven CurAddr for the direct rows, none for the"
        echo "DERP row, where nftables drops the UDP between the nodes). The DERP server's CPU is"
        echo "not in *daemon CPU s/GB*; in the mixed rows the RSS columns are tailscaled's (the"
        echo "larger of the pair). tailscaled's idle wake-ups include its own timers"
        echo "(netcheck, map poll keep-alives, disco heartbeats), which a static-config row has no"
        echo "counterpart of."
        echo
        echo "One run on a shared 2-core machine: expect noise of ±10% or more;"
        echo "compare rows from the same run, not across runs."
        if [ -n "$BENCH_SCALE_PEERS" ]; then
            echo
            echo "## Scale"
            echo
            echo "$scale_table"
            echo
            echo "Targets: at most 1 KiB of RSS per idle peer, a 10,000-peer reconfiguration"
            echo "under 50 ms, a one-peer delta under 1 ms."
            echo
            echo "- **weftd RSS KiB/peer**: VmRSS of a weftd started with a generated N-peer"
            echo "  static config (two addresses, an endpoint and a random key per peer; no"
            echo "  traffic), minus that of one started with no peers, over N; read after each"
            echo "  has answered one \`weft status\`."
            echo "- **engine RSS KiB/peer** and the times: src/scale_bench.rs (run as examples/scale), one process"
            echo "  building N-peer netmaps in memory; times are the CPU time of its thread,"
            echo "  so the machine's other load does not count. *First load*: Engine::new, one"
            echo "  WireGuard session (a boringtun Tunn) per peer. *Full reconfiguration*:"
            echo "  apply_netmap with every peer's endpoint moved (median of 5). *Same netmap"
            echo "  again*: apply_netmap of the running netmap. *One-peer delta*:"
            echo "  apply_peer_delta adding a peer, removing one, changing one's routes"
            echo "  (medians of 201). *Control one-peer patch*: a PeersChangedPatch frame moving"
            echo "  one peer's endpoint, decoded and applied to the control client's state,"
            echo "  handed on as a one-peer delta (with the next key expiry looked up, a scan"
            echo "  of all nodes) and applied by the engine. *Status answer*: the JSON status of N"
            echo "  peers as weftd writes it, 250 peers per loop turn, then put together; in"
            echo "  brackets the longest one step holds the loop. *Config parse*: a static config"
            echo "  of N peers parsed from text (median of 5)."
            echo "- **\`weft status --json\`**: the CLI against that weftd, median of 5 runs, the"
            echo "  CLI's decoding and printing included;"
            echo "  **weftd start**: spawn until the control socket answers."
        fi
    } >"$BENCH_OUT"
    echo >&2
    echo "bench: wrote $BENCH_OUT" >&2
fi
