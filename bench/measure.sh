# shellcheck shell=bash
# bench/measure.sh — what every throughput row of bench/run.sh measures, whoever set up
# its tunnel (bench/run.sh's rows with tests/lab/lib.sh, bench/tailnet_row.sh's with the
# interop lab of tests/interop/lib.sh).
#
# measure_tunnel OUT IMPL NOTE DST PID... : idle wake-ups and RSS of the daemons PID...,
# then iperf3 from node a to DST (TCP 1 and 4 streams, UDP at $BENCH_UDP_RATES), their CPU
# time and peak RSS; writes the row's JSON to OUT. The caller defines
#   bench_in_a CMD...        run CMD in node a's namespace
#   bench_iperf_server PORT  start `iperf3 -s -p PORT` on DST's side and wait until it listens
#   bench_log MSG / bench_fail MSG, and sets BENCH_TMP (a scratch directory).

# Sum of voluntary+nonvoluntary context switches over all threads of PIDs.
ctxt_sum() {
    local pid t s=0 v
    for pid in "$@"; do
        for t in /proc/"$pid"/task/*/status; do
            v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }' "$t" 2>/dev/null || echo 0)
            s=$((s + v))
        done
    done
    echo "$s"
}
# CPU clock ticks (utime+stime, all threads) summed over PIDs.
cpu_ticks() {
    local pid s=0
    for pid in "$@"; do
        s=$((s + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")))
    done
    echo "$s"
}
# status_kb FIELD PID...: max of a /proc/PID/status kB field over PIDs.
status_kb() {
    local f=$1 pid m=0 v
    shift
    for pid in "$@"; do
        v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$pid/status")
        [ "${v:-0}" -gt "$m" ] && m=$v
    done
    echo "$m"
}

measure_tunnel() {
    local out=$1 impl=$2 note=$3 dst=$4
    shift 4
    local pids=("$@")
    # Idle: no keepalives are configured, so a quiet daemon should sleep. WireGuard's own
    # timers may still run for a while after the handshake (weftd ticks for 30 s after the
    # last packet, for retries and passive keepalives); count once they had time to settle.
    local idle_rss=0 wake=""
    if [ "${#pids[@]}" -gt 0 ]; then
        sleep "$BENCH_SETTLE_SECONDS"
        local c0 c1
        c0=$(ctxt_sum "${pids[@]}")
        sleep "$BENCH_IDLE_SECONDS"
        c1=$(ctxt_sum "${pids[@]}")
        wake=$(python3 -c "print(round(($c1 - $c0) / $BENCH_IDLE_SECONDS / ${#pids[@]}, 1))")
        idle_rss=$(status_kb VmRSS "${pids[@]}")
    fi

    bench_iperf_server 5201
    local t0=0
    [ "${#pids[@]}" -gt 0 ] && t0=$(cpu_ticks "${pids[@]}")
    local ip3=(timeout $((BENCH_SECONDS + 20)) iperf3 -c "$dst" -p 5201 -t "$BENCH_SECONDS" -J)
    bench_log "$impl: TCP 1 stream, ${BENCH_SECONDS}s"
    bench_in_a "${ip3[@]}" >"$BENCH_TMP/tcp1.json" || bench_fail "iperf3 TCP failed: $(tail -c 300 "$BENCH_TMP/tcp1.json")"
    bench_log "$impl: TCP 4 streams"
    bench_in_a "${ip3[@]}" -P 4 >"$BENCH_TMP/tcp4.json" || bench_fail "iperf3 TCP -P 4 failed: $(tail -c 300 "$BENCH_TMP/tcp4.json")"
    local r udp=()
    for r in $BENCH_UDP_RATES; do
        bench_log "$impl: UDP $r"
        bench_in_a "${ip3[@]}" -u -b "$r" -l "$BENCH_UDP_LEN" -w "$BENCH_UDP_BUF" >"$BENCH_TMP/udp-$r.json" ||
            bench_fail "iperf3 UDP $r failed: $(tail -c 300 "$BENCH_TMP/udp-$r.json")"
        udp+=("$r=$BENCH_TMP/udp-$r.json")
    done
    local t1=0 peak=0
    if [ "${#pids[@]}" -gt 0 ]; then
        t1=$(cpu_ticks "${pids[@]}")
        peak=$(status_kb VmHWM "${pids[@]}")
        local p
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || bench_fail "daemon $p died during the run"; done
    fi
    python3 - "$out" "$impl" "$note" "${#pids[@]}" "$((t1 - t0))" "$(getconf CLK_TCK)" \
        "$idle_rss" "$peak" "$wake" "$BENCH_TMP/tcp1.json" "$BENCH_TMP/tcp4.json" "${udp[@]}" <<'EOF'
import json, sys
out, impl, note, ndaemons, ticks, hz, idle_rss, peak, wake, tcp1, tcp4 = sys.argv[1:12]
res = {"impl": impl, "note": note, "status": "ok"}
moved = 0
def tcp(path):
    global moved
    e = json.load(open(path))["end"]
    moved += e["sum_received"]["bytes"]
    return e["sum_received"]["bits_per_second"] / 1e6
res["tcp1"] = tcp(tcp1)
res["tcp4"] = tcp(tcp4)
res["udp"] = {}
for arg in sys.argv[12:]:
    rate, path = arg.split("=", 1)
    e = json.load(open(path))["end"]
    s = e.get("sum_received") or e["sum"]
    moved += s["bytes"]
    res["udp"][rate] = {"mbps": s["bits_per_second"] / 1e6, "loss": e["sum"]["lost_percent"]}
res["gb"] = moved / 1e9
if int(ndaemons) > 0:
    res["cpu_s_per_gb"] = int(ticks) / int(hz) / (moved / 1e9) if moved else None
    res["idle_rss_mib"] = int(idle_rss) / 1024
    res["peak_rss_mib"] = int(peak) / 1024
    res["wakeups"] = float(wake)
json.dump(res, open(out, "w"))
EOF
}
