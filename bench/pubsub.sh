#!/usr/bin/env bash
# Pub/Sub and client-side caching, Rampart and redis-server 7.0 side by
# side in one run (ratio = Rampart / Redis, > 1 is better for Rampart):
#   - PUBLISH to 1 and to 100 subscribers: messages the subscribers
#     actually received per second, while redis-benchmark publishes
#     (-c 50 -P 16), and the server's CPU per delivered message;
#   - tracking invalidations per second: a RESP3 client in BCAST mode
#     hears of every key redis-benchmark SETs; keys announced per second.
# Listeners are bench/pubsub_sink.py (one process, many sockets), counting
# what arrives. A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/pubsub.sh
#   REQUESTS=400000 ROUNDS=5 bash bench/pubsub.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
PIPELINE=${PIPELINE:-16}

bench_init

start_server redis redis-server
start_server rampart "$RAMPART"

# run NAME LISTENERS MODE CMD... -> "received_per_sec,cpu_us_per_received"
run() {
    local name=$1 n=$2 mode=$3 port pid sink start end before after got
    shift 3
    port=$(eval echo "\$PORT_$name")
    pid=$(eval echo "\$PID_$name")
    python3 bench/pubsub_sink.py "$port" "$n" "$mode" >"$tmp/sink.out" &
    sink=$!
    for _ in $(seq 100); do grep -q ready "$tmp/sink.out" 2>/dev/null && break; sleep 0.05; done
    sleep 0.3
    before=$(cpu_ns "$pid")
    start=$(date +%s%N)
    $CLIENT_CPU redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -P "$PIPELINE" -q "$@" >/dev/null 2>&1
    # Until the listeners have everything that was sent.
    sleep 0.5
    end=$(date +%s%N)
    after=$(cpu_ns "$pid")
    kill -TERM "$sink"
    wait "$sink" || true
    got=$(tail -1 "$tmp/sink.out")
    awk -v got="$got" -v ns=$((end - start - 500000000)) -v cpu=$((after - before)) \
        'BEGIN { printf "%.0f,%.3f\n", got / (ns / 1e9), (got ? cpu / 1000 / got : 0) }'
}

lines=(
    "publish_1|1|sub|publish ch hello-subscribers"
    "publish_100|100|sub|publish ch hello-subscribers"
    "invalidations|1|track|-r 1000000 set key:__rand_int__ v"
)

for r in $(seq "$ROUNDS"); do
    for l in "${lines[@]}"; do
        IFS='|' read -r label n mode cmd <<<"$l"
        for s in redis rampart; do
            # shellcheck disable=SC2086
            echo "$label,$(run "$s" "$n" "$mode" $cmd)" >>"$tmp/$s.$r"
        done
    done
done

med() { # FILE... -> "label,rate,cpu" medians
    cat "$@" | sort -t, -k1,1 | awk -F, '
        function m(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function flush() { if (name != "") print name "," m(r, n) "," m(c, n) }
        $1 != name { flush(); name = $1; n = 0 }
        { n++; r[n] = $2; c[n] = $3 }
        END { flush() }'
}
med "$tmp"/redis.* >"$tmp/redis.med"
med "$tmp"/rampart.* >"$tmp/rampart.med"

printf '\nmedian of %s rounds, redis-benchmark -c %s -P %s -n %s\n' "$ROUNDS" "$CLIENTS" "$PIPELINE" "$REQUESTS"
printf '%-14s %14s %14s %7s %12s %12s %7s\n' line redis/s rampart/s ratio "redis us" "rampart us" ratio
join -t, "$tmp/redis.med" "$tmp/rampart.med" | awk -F, '{
    printf "%-14s %14.0f %14.0f %7.2f %12.3f %12.3f %7.2f\n", $1, $2, $4, ($2 ? $4 / $2 : 0), $3, $5, ($3 ? $5 / $3 : 0)
}'
echo "(rates: messages received per second; us: server CPU per received message, lower is better)"
