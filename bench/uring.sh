#!/usr/bin/env bash
# Does io_uring pay for the connection runtimes here? Builds
# bench/uring-probe (a minimal PING server, outside the workspace) and runs
# redis-benchmark's PING_MBULK against its two loops, the one Rampart uses
# (current-thread tokio over epoll) and one io_uring ring, taking turns, and
# prints throughput and server CPU per request (schedstat) with ratios
# uring/tokio. A benchmark, not a test.
#
#   bash bench/uring.sh                 # ROUNDS=3, -P 1 and -P 16
#   PIN=yes bash bench/uring.sh         # servers on the last CPU
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-500000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
PIPELINES=${PIPELINES:-"1 16"}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark (apt-get install redis-tools)" >&2; exit 1; }
(cd bench/uring-probe && CARGO_TARGET_DIR=../../target/uring-probe cargo build -q --release) >&2
BIN=target/uring-probe/release/uring-probe

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
declare -A PORT PID
for m in tokio uring; do
    PORT[$m]=$(free_port)
    $SERVER_CPU "$BIN" "$m" "${PORT[$m]}" &
    PID[$m]=$!
    pids+=("${PID[$m]}")
done
for m in tokio uring; do
    for _ in $(seq 50); do
        redis-cli -p "${PORT[$m]}" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
done
printf '%-16s %10s %10s %6s %9s %9s %6s\n' line tokio_rps uring_rps ratio tokio_us uring_us ratio
for p in $PIPELINES; do
    for r in $(seq "$ROUNDS"); do
        for m in tokio uring; do
            bench_tests "${PORT[$m]}" "${PID[$m]}" "$p" ping_mbulk >"$tmp/$m.$r.csv"
        done
    done
    median "$tmp"/tokio.*.csv >"$tmp/tokio.csv"
    median "$tmp"/uring.*.csv >"$tmp/uring.csv"
    rm -f "$tmp"/tokio.*.csv "$tmp"/uring.*.csv
    join -t, "$tmp/tokio.csv" "$tmp/uring.csv" |
        awk -F, -v p="$p" '{ printf "%-16s %10.0f %10.0f %6.2f %9.3f %9.3f %6.2f\n", $1 " -P" p, $2, $5, $5 / $2, $4, $7, $7 / $4 }'
done
