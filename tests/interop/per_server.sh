# shellcheck shell=bash
# run_each_server LABEL LIMIT SCRIPT SERVER... : runs `SCRIPT --one SERVER` for each server
# in turn under `timeout LIMIT` (in the background, so INT/TERM reach the child's teardown at
# once), prints "LABEL: N passed, N failed, N skipped" and sets RUN_PASS, RUN_FAIL and
# RUN_SKIPPED. A run that exits 77 skipped itself.
run_each_server() {
    local label=$1 limit=$2 script=$3 s rc child
    shift 3
    RUN_PASS=0 RUN_FAIL=0 RUN_SKIPPED=0
    for s in "$@"; do
        echo "=== $label: $s"
        rc=0
        timeout --kill-after=10 "$limit" "$script" --one "$s" &
        child=$!
        trap 'kill -TERM $child 2>/dev/null; wait $child; exit 143' TERM
        trap 'kill -TERM $child 2>/dev/null; wait $child; exit 130' INT
        wait $child || rc=$?
        trap - TERM INT
        case $rc in
        0) RUN_PASS=$((RUN_PASS + 1)); echo "=== $s: ok" ;;
        77) RUN_SKIPPED=$((RUN_SKIPPED + 1)); echo "=== $s: skipped" ;;
        *) RUN_FAIL=$((RUN_FAIL + 1)); echo "=== $s: FAILED (exit $rc)" ;;
        esac
    done
    echo "$label: $RUN_PASS passed, $RUN_FAIL failed, $RUN_SKIPPED skipped"
}
