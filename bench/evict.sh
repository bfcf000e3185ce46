#!/usr/bin/env bash
# A cache at its memory limit, Rampart and redis-server 7.0 side by side,
# each with the same `maxmemory` above what it uses empty:
#   - SET throughput and server CPU per request with allkeys-lru when every
#     write evicts (the servers are filled past the limit first), at -P 1
#     and -P 16 (ratio = Rampart / Redis);
#   - the hit rate of a cache-aside client (GET, and SET on a miss) over a
#     Zipf-distributed key popularity, under allkeys-lru and allkeys-lfu
#     (ratio > 1 means Rampart keeps more of what is asked for: how well
#     it picks victims, and how many keys fit in the same memory).
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/evict.sh
#   LIMIT_MB=32 ZIPF_KEYS=200000 ZIPF_REQUESTS=400000 bash bench/evict.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

LIMIT_MB=${LIMIT_MB:-64}
REQUESTS=${REQUESTS:-400000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
VALUE_SIZE=${VALUE_SIZE:-100}
ZIPF_KEYS=${ZIPF_KEYS:-200000}
ZIPF_REQUESTS=${ZIPF_REQUESTS:-600000}
ZIPF_S=${ZIPF_S:-1.0}
ZIPF_LIMIT_MB=${ZIPF_LIMIT_MB:-8}

bench_init

used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ { print $2+0 }'; }
field() { redis-cli -p "$1" info "$2" | awk -F: -v f="$3" '$1 == f { print $2+0 }'; }

# limit PORT POLICY MB: empties the server and sets maxmemory MB above what
# it uses empty
limit() {
    redis-cli -p "$1" config set maxmemory 0 >/dev/null
    redis-cli -p "$1" flushall >/dev/null
    sleep 0.3
    redis-cli -p "$1" config set maxmemory-policy "$2" >/dev/null
    redis-cli -p "$1" config set maxmemory $(($(used "$1") + $3 * 1024 * 1024)) >/dev/null
}

start_server redis redis-server
start_server rampart "$RAMPART"

printf '\nSET at the limit: maxmemory %s MB above empty, allkeys-lru, %s-byte values, random keys\n' "$LIMIT_MB" "$VALUE_SIZE"
for s in redis rampart; do
    port_var="PORT_$s"
    limit "${!port_var}" allkeys-lru "$LIMIT_MB"
    # Fill well past the limit, so every measured write evicts.
    redis-benchmark -p "${!port_var}" -c 50 -P 16 -n $((LIMIT_MB * 1024 * 1024 / VALUE_SIZE * 2)) \
        -r 100000000 -d "$VALUE_SIZE" -t set >/dev/null 2>&1
done
printf '%-12s %12s %12s %6s %9s %9s %8s %8s %6s %10s %10s\n' test redis_rps rampart_rps ratio redis_p99 ramp_p99 redis_us ramp_us ratio redis_keys ramp_keys
for p in 1 16; do
    for r in $(seq "$ROUNDS"); do
        for s in redis rampart; do
            port_var="PORT_$s" pid_var="PID_$s"
            # bench_tests runs plain `-t set` on one key; -r spreads the keys.
            before=$(cpu_ns "${!pid_var}")
            $CLIENT_CPU redis-benchmark -p "${!port_var}" -c "$CLIENTS" -n "$REQUESTS" -P "$p" -t set \
                -r 100000000 -d "$VALUE_SIZE" --csv 2>/dev/null >"$tmp/out.csv"
            after=$(cpu_ns "${!pid_var}")
            awk -F'","' -v ns=$((after - before)) -v n="$REQUESTS" \
                'END { gsub(/"/, ""); split($0, f, ","); printf "%s,%s,%s,%.3f\n", f[1], f[2], f[7], ns / 1000 / n }' \
                "$tmp/out.csv" >"$tmp/$s.$r.csv"
        done
    done
    median "$tmp"/redis.*.csv >"$tmp/r.csv"
    median "$tmp"/rampart.*.csv >"$tmp/m.csv"
    rm -f "$tmp"/redis.*.csv "$tmp"/rampart.*.csv
    kr=$(redis-cli -p "$PORT_redis" dbsize)
    km=$(redis-cli -p "$PORT_rampart" dbsize)
    join -t, "$tmp/r.csv" "$tmp/m.csv" |
        awk -F, -v p="$p" -v kr="$kr" -v km="$km" '{ printf "%-12s %12.0f %12.0f %6.2f %9s %9s %8.2f %8.2f %6.2f %10s %10s\n", $1 " -P" p, $2, $5, $5 / $2, $3, $6, $4, $7, $7 / $4, kr, km }'
done
for s in redis rampart; do
    port_var="PORT_$s"
    printf '%-8s used_memory %s, maxmemory %s, evicted_keys %s\n' "$s" "$(used "${!port_var}")" \
        "$(field "${!port_var}" memory maxmemory)" "$(field "${!port_var}" stats evicted_keys)"
done

# zipf PORT: a cache-aside client over ZIPF_KEYS keys of Zipf(ZIPF_S)
# popularity; prints the hit rate of the second half of the requests
# (the first half warms the cache up).
zipf() {
    python3 - "$1" "$ZIPF_KEYS" "$ZIPF_REQUESTS" "$ZIPF_S" "$VALUE_SIZE" <<'EOF'
import bisect, itertools, random, socket, sys
port, nkeys, nreq, s, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rng = random.Random(42)  # the same request sequence for both servers
cdf = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(nkeys)))
# Key ids are shuffled so popularity has nothing to do with key order.
ids = list(range(nkeys)); rng.shuffle(ids)
sock = socket.create_connection(("127.0.0.1", port))
f = sock.makefile("rb")
value = b"v" * size
def cmd(*a):
    return b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
def reply():
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if line[:1] == b"-":
        raise SystemExit("error: " + line.decode().strip())
    return line
hits = counted = 0
batch = 100
for start in range(0, nreq, batch):
    keys = [b"key:%d" % ids[bisect.bisect_left(cdf, rng.random() * cdf[-1])] for _ in range(batch)]
    sock.sendall(b"".join(cmd(b"GET", k) for k in keys))
    got = [reply() for _ in keys]
    misses = [k for k, g in zip(keys, got) if g is None]
    if misses:
        sock.sendall(b"".join(cmd(b"SET", k, value) for k in misses))
        for _ in misses:
            reply()
    if start >= nreq // 2:
        counted += len(keys)
        hits += len(keys) - len(misses)
print("%.4f" % (hits / counted))
EOF
}

printf '\nhit rate, cache-aside over %s keys of Zipf(%s) popularity, %s requests, maxmemory %s MB above empty\n' \
    "$ZIPF_KEYS" "$ZIPF_S" "$ZIPF_REQUESTS" "$ZIPF_LIMIT_MB"
printf '%-14s %10s %10s %6s %10s %10s\n' policy redis rampart ratio redis_keys ramp_keys
for policy in allkeys-lru allkeys-lfu; do
    declare -A rate keys
    for s in redis rampart; do
        port_var="PORT_$s"
        limit "${!port_var}" "$policy" "$ZIPF_LIMIT_MB"
        rate[$s]=$(zipf "${!port_var}")
        keys[$s]=$(redis-cli -p "${!port_var}" dbsize)
    done
    awk -v p="$policy" -v a="${rate[redis]}" -v b="${rate[rampart]}" -v ka="${keys[redis]}" -v kb="${keys[rampart]}" \
        'BEGIN { printf "%-14s %10.4f %10.4f %6.3f %10s %10s\n", p, a, b, b / a, ka, kb }'
done
