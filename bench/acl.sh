#!/usr/bin/env bash
# ACL cost, Rampart and redis-server 7.0 side by side, each holding 1,000
# ACL users (user:000000000000 … user:000000000999, each `on >pw ~key:*
# +get +set`):
#   - AUTH throughput: every request authenticates as a random one of the
#     1,000 users (redis-benchmark's __rand_int__), at -P 1 and -P 16;
#   - GET and SET as one restricted user (a command bitmap and a key
#     pattern checked on every request) against the same as the default
#     user (no check), at -P 1 and -P 16.
# Prints requests/s and server CPU µs per request, and Rampart / Redis
# ratios. A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/acl.sh
#   REQUESTS=400000 ROUNDS=5 bash bench/acl.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-1000}

bench_init

start_server redis redis-server
start_server rampart "$RAMPART"

for port in "$PORT_redis" "$PORT_rampart"; do
    for i in $(seq 0 $((USERS - 1))); do
        printf 'ACL SETUSER user:%012d on >pw ~key:* +get +set\n' "$i"
    done | redis-cli -p "$port" >/dev/null
    n=$(redis-cli -p "$port" acl users | wc -l)
    [ "$n" -eq $((USERS + 1)) ] || { echo "port $port has $n users" >&2; exit 1; }
done

# run NAME PORT PID PIPELINE ARGS... -> "rps cpu_us_per_request"
run() {
    local port=$2 pid=$3 pipeline=$4 before after csv
    shift 4
    csv=$(mktemp)
    before=$(cpu_ns "$pid")
    $CLIENT_CPU redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -P "$pipeline" --csv "$@" 2>/dev/null >"$csv"
    after=$(cpu_ns "$pid")
    awk -F'","' -v ns=$((after - before)) -v n="$REQUESTS" \
        'END { gsub(/"/, ""); split($0, f, ","); printf "%s %.3f\n", f[2], ns / 1000 / n }' "$csv"
    rm -f "$csv"
}

# median of column $1 over stdin lines
med() { sort -g -k"$1","$1" | awk -v c="$1" '{ v[NR] = $c } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

printf '%-34s %12s %12s %8s %10s %10s %8s\n' case redis_rps rampart_rps ratio redis_cpu rampart_cpu ratio
measure() {
    local label=$1 pipeline=$2
    shift 2
    local r=() a=()
    for _ in $(seq "$ROUNDS"); do
        r+=("$(run redis "$PORT_redis" "$PID_redis" "$pipeline" "$@")")
        a+=("$(run rampart "$PORT_rampart" "$PID_rampart" "$pipeline" "$@")")
    done
    local rr ar rc ac
    rr=$(printf '%s\n' "${r[@]}" | med 1)
    ar=$(printf '%s\n' "${a[@]}" | med 1)
    rc=$(printf '%s\n' "${r[@]}" | med 2)
    ac=$(printf '%s\n' "${a[@]}" | med 2)
    awk -v l="$label" -v rr="$rr" -v ar="$ar" -v rc="$rc" -v ac="$ac" \
        'BEGIN { printf "%-34s %12.0f %12.0f %8.3f %10.3f %10.3f %8.3f\n", l, rr, ar, ar / rr, rc, ac, ac / rc }'
}

for p in 1 16; do
    measure "AUTH random of $USERS users -P$p" "$p" -r "$USERS" AUTH user:__rand_int__ pw
    measure "GET as a restricted user -P$p" "$p" -r 100000 --user user:000000000007 -a pw -t get
    measure "GET as default -P$p" "$p" -r 100000 -t get
    measure "SET as a restricted user -P$p" "$p" -r 100000 --user user:000000000007 -a pw -t set
    measure "SET as default -P$p" "$p" -r 100000 -t set
done
