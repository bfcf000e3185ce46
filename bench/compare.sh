#!/usr/bin/env bash
# Runs Rampart and redis-server 7.0 side by side and prints ratios:
#   - redis-benchmark throughput and p99 latency for each test, at -P 1 and
#     -P 16 (ratio = Rampart / Redis; > 1 means Rampart is faster); by
#     default the whole default suite (no -t), as `redis-benchmark` runs it;
#   - the server's CPU time per request (user + system, microseconds) in
#     each of those runs, and its ratio (< 1 means Rampart spends less).
#     Where redis-benchmark saturates its own core (-P 1 on a small
#     machine) throughput measures the client, not the server; CPU per
#     request still measures the server;
#   - memory per key after DEBUG POPULATE of N keys with 16-byte values,
#     per field of HASHES hashes of 5 small fields and per member of ZSETS
#     sorted sets of 100 members (used_memory and RSS deltas; ratio < 1
#     means Rampart uses less).
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/compare.sh                        # defaults below
#   REQUESTS=100000 TESTS=set,get MEMORY=no bash bench/compare.sh
#   ROUNDS=3 TESTS=set,get,incr,mset MEMORY=no bash bench/compare.sh
# ROUNDS > 1 runs each pipeline depth that many times, the two servers
# taking turns, and prints the median of each figure: on a shared machine
# one round can be off by 10-20% either way.
#   PIN=yes ...           server on the last CPU, redis-benchmark on the rest
#   BENCH_THREADS=2 ...   redis-benchmark --threads 2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-200000}
ROUNDS=${ROUNDS:-1}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-}
MEMORY=${MEMORY:-yes}
HASHES=${HASHES:-1000000}
ZSETS=${ZSETS:-100000}
PIPELINES=${PIPELINES:-"1 16"}
KEYS=${KEYS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-16}

bench_init

start_server redis redis-server --enable-debug-command yes
start_server rampart "$RAMPART" --enable-debug-command yes

# bench NAME PIPELINE -> lines "test,rps,p99,cpu_us_per_request" (lib.sh)
bench() {
    local port_var="PORT_$1" pid_var="PID_$1"
    bench_tests "${!port_var}" "${!pid_var}" "$2" "${TESTS:-$SUITE}"
}

[ "$ROUNDS" -gt 1 ] && printf '\nmedian of %s rounds, Redis and Rampart taking turns\n' "$ROUNDS"
printf '\n%-22s %12s %12s %6s %9s %9s %8s %8s %6s\n' test redis_rps rampart_rps ratio redis_p99 ramp_p99 redis_us ramp_us ratio
for p in $PIPELINES; do
    redis-cli -p "$PORT_redis" flushall >/dev/null
    redis-cli -p "$PORT_rampart" flushall >/dev/null
    for r in $(seq "$ROUNDS"); do
        bench redis "$p" >"$tmp/r.$r.csv"
        bench rampart "$p" >"$tmp/m.$r.csv"
    done
    median "$tmp"/r.*.csv >"$tmp/r.csv"
    median "$tmp"/m.*.csv >"$tmp/m.csv"
    rm -f "$tmp"/[rm].*.csv
    join -t, <(sort "$tmp/r.csv") <(sort "$tmp/m.csv") |
        awk -F, -v p="$p" '{ printf "%-22s %12.0f %12.0f %6.2f %9s %9s %8.2f %8.2f %6.2f\n", $1 " -P" p, $2, $5, $5 / $2, $3, $6, $4, $7, $7 / $4 }'
    # A test that failed on one side has no line there: say so.
    join -t, -v1 -v2 <(sort "$tmp/r.csv") <(sort "$tmp/m.csv") | sed 's/^/MISSING on one side: /'
done
[ "$MEMORY" = yes ] || exit 0

used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ { print $2+0 }'; }
rss() { redis-cli -p "$1" info memory | awk -F: '/^used_memory_rss:/ { print $2+0 }'; }

printf '\nmemory per key, %s keys of %s-byte values (DEBUG POPULATE)\n' "$KEYS" "$VALUE_SIZE"
printf '%-10s %16s %16s\n' server used_memory/key rss/key
declare -A per_used per_rss
for s in redis rampart; do
    port_var="PORT_$s"
    port=${!port_var}
    redis-cli -p "$port" flushall >/dev/null
    sleep 0.5
    u0=$(used "$port"); r0=$(rss "$port")
    redis-cli -p "$port" debug populate "$KEYS" key "$VALUE_SIZE" >/dev/null
    sleep 0.5
    u1=$(used "$port"); r1=$(rss "$port")
    per_used[$s]=$(awk -v a="$u0" -v b="$u1" -v n="$KEYS" 'BEGIN { printf "%.1f", (b - a) / n }')
    per_rss[$s]=$(awk -v a="$r0" -v b="$r1" -v n="$KEYS" 'BEGIN { printf "%.1f", (b - a) / n }')
    printf '%-10s %16s %16s\n' "$s" "${per_used[$s]}" "${per_rss[$s]}"
done
awk -v a="${per_used[rampart]}" -v b="${per_used[redis]}" -v c="${per_rss[rampart]}" -v d="${per_rss[redis]}" \
    'BEGIN { printf "%-10s %16.2f %16.2f\n", "ratio", a / b, c / d }'

# mem_case LABEL ELEMENTS GENERATOR: loads the RESP stream GENERATOR prints
# into each server with redis-cli --pipe and reports bytes per element.
mem_case() {
    local label=$1 n=$2 gen=$3
    python3 -c "$gen" >"$tmp/load.resp"
    printf '\n%s (bytes per element, %s elements)\n' "$label" "$n"
    printf '%-10s %16s %16s\n' server used_memory/el rss/el
    declare -A cu cr
    for s in redis rampart; do
        port_var="PORT_$s"
        port=${!port_var}
        redis-cli -p "$port" flushall >/dev/null
        sleep 0.5
        u0=$(used "$port"); r0=$(rss "$port")
        redis-cli -p "$port" --pipe <"$tmp/load.resp" >/dev/null
        sleep 0.5
        u1=$(used "$port"); r1=$(rss "$port")
        cu[$s]=$(awk -v a="$u0" -v b="$u1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
        cr[$s]=$(awk -v a="$r0" -v b="$r1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
        printf '%-10s %16s %16s\n' "$s" "${cu[$s]}" "${cr[$s]}"
    done
    awk -v a="${cu[rampart]}" -v b="${cu[redis]}" -v c="${cr[rampart]}" -v d="${cr[redis]}" \
        'BEGIN { printf "%-10s %16.2f %16.2f\n", "ratio", a / b, c / d }'
    rm -f "$tmp/load.resp"
}

resp_gen='
import sys
def cmd(*a):
    out = [b"*%d\r\n" % len(a)]
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(x), x))
    return b"".join(out)
w = sys.stdout.buffer
'
mem_case "hashes: $HASHES x 5 small fields" $((HASHES * 5)) "$resp_gen
for i in range($HASHES):
    w.write(cmd('HSET', 'h:%d' % i, 'name', 'user%d' % i, 'age', i % 90, 'city', 'Paris', 'score', i * 7 % 1000, 'flag', 'yes'))
"
mem_case "sorted sets: $ZSETS x 100 members" $((ZSETS * 100)) "$resp_gen
for i in range($ZSETS):
    a = ['ZADD', 'z:%d' % i]
    for j in range(100):
        a += [j * 1.5, 'member:%d' % j]
    w.write(cmd(*a))
"
