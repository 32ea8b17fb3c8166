#!/bin/sh
# Benchmark: ansible-core's stock async_wrapper/async_status vs this project's, side by side.
# `make bench` runs this from the repo root after `make build venvs`; it works from anywhere.
#
#   sh tests/bench/run.sh [bench.py options]     e.g. --runs 10 --only 1,2 --keep
#   ASYNC_BENCH_QUICK=1 ASYNC_BENCH_SSH=0 sh tests/bench/run.sh   # about a minute: checks the bench
#
# Writes target/bench/results.md (table), results.json (raw numbers) and chart.png, and prints
# the table. The chart is drawn with matplotlib from a venv of its own, .venv/bench, created
# here on first use. Then the SSH part (tests/bench/ssh_bench.py: the tests' private sshd (tests/harness/sshd.py),
# as root; ASYNC_BENCH_SSH=0 skips it) writes target/bench/ssh-results.md, ssh-results.json
# and ssh-chart.svg. Whatever the bench starts is stopped when it ends, fails or is interrupted.
set -eu

cd "$(dirname "$0")/../.."

MATPLOTLIB=3.11.2
PY=.venv/core-2.19/bin/python
OUT=target/bench
CHART_VENV=.venv/bench

log() { printf 'bench: %s\n' "$*" >&2; }

[ -x "$PY" ] || { log "no controller venv at $PY: run \`make venvs\` first"; exit 2; }
for f in async_wrapper async_status; do
    [ -f "library/$f" ] || { log "library/$f is missing: run \`make build\` first"; exit 2; }
done

# The chart's venv, before measuring: a failure here should not waste a whole bench run.
want="matplotlib==$MATPLOTLIB"
if [ ! -x "$CHART_VENV/bin/python" ] || [ "$(cat "$CHART_VENV/.ready" 2>/dev/null)" != "$want" ]; then
    log "creating $CHART_VENV ($want)"
    rm -rf "$CHART_VENV"
    python3 -m venv "$CHART_VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$CHART_VENV/bin/python" -m pip install --quiet "$want"
    printf '%s\n' "$want" >"$CHART_VENV/.ready"
fi

mkdir -p "$OUT"
rm -f "$OUT/results.json" "$OUT/results.md" "$OUT/chart.png"

# bench.py stops everything it started (try/finally, and on SIGTERM/SIGINT/SIGHUP): forward
# those signals to it by its pid and wait for its clean-up.
"$PY" tests/bench/bench.py --out "$OUT" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null || :' INT TERM HUP
status=0
wait "$bench" || status=$?
# a signal interrupts `wait`: wait again until bench.py has finished its clean-up
while kill -0 "$bench" 2>/dev/null; do wait "$bench" || status=$?; done
trap - INT TERM HUP
[ "$status" -eq 0 ] || { log "bench.py failed (exit $status)"; exit "$status"; }
[ -f "$OUT/results.json" ] || exit 0 # --help

"$CHART_VENV/bin/python" tests/bench/chart.py "$OUT/results.json" "$OUT/chart.png"
log "chart: $OUT/chart.png"

if [ "${ASYNC_BENCH_SSH:-1}" != 0 ]; then
    log "SSH part: tests/bench/ssh_bench.py"
    "$PY" tests/bench/ssh_bench.py
    for figure in results collect; do
        [ -f "$OUT/ssh-$figure.md" ] || continue
        chart=$OUT/ssh-chart.svg
        [ "$figure" = collect ] && chart=$OUT/ssh-collect-chart.svg
        "$PY" tests/bench/ssh_chart.py "$OUT/ssh-$figure.md" "$chart"
        log "SSH chart: $chart"
    done
fi
