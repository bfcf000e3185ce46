#!/usr/bin/env bash
# Streams, Rampart and redis-server 7.0 side by side:
#   - XADD (auto ids, three fields), XRANGE (COUNT 10) and XREADGROUP
#     (COUNT 1, a fresh consumer group) throughput at -P 1 and -P 16, and
#     XACK of every entry a group read (one connection, redis-cli --pipe),
#     with the server's CPU per request (ratio = Rampart / Redis);
#   - memory per entry: 100k XADDs of three fields each, `used_memory`
#     before and after on both servers.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/streams.sh
#   REQUESTS=200000 CLIENTS=50 ROUNDS=3 bash bench/streams.sh
#   RAMPART=target/debug/rampart-server bash bench/streams.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
ENTRIES=${ENTRIES:-100000}

bench_init python3

start_server redis redis-server
start_server rampart "$RAMPART" --encryption-at-rest no


median() { sort -t, -k2 -n | awk -F, '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

# stream_round SERVER PORT PID ROUND PIPELINE: one round of the three lines
stream_round() {
    local server=$1 port=$2 pid=$3 r=$4 P=$5
    redis-cli -p "$port" del bs >/dev/null
    run_line "$port" "$pid" "$P" xadd xadd bs '*' name user action login ts 1700000000 >>"$tmp/$server.$P"
    run_line "$port" "$pid" "$P" xrange xrange bs - + COUNT 10 >>"$tmp/$server.$P"
    redis-cli -p "$port" xgroup create bs "g$P$r" 0 >/dev/null
    run_line "$port" "$pid" "$P" xreadgroup xreadgroup GROUP "g$P$r" c COUNT 1 STREAMS bs '>' >>"$tmp/$server.$P"
}

printf '\n%-12s %4s %12s %12s %7s %14s %14s\n' test P redis_rps rampart_rps ratio redis_us/req rampart_us/req
for P in 1 16; do
    : >"$tmp/redis.$P"
    : >"$tmp/rampart.$P"
    turns "$ROUNDS" stream_round "$P"
    for t in xadd xrange xreadgroup; do
        r=$(grep "^$t," "$tmp/redis.$P" | median)
        m=$(grep "^$t," "$tmp/rampart.$P" | median)
        IFS=, read -r _ rr rc <<<"$r"
        IFS=, read -r _ mr mc <<<"$m"
        printf '%-12s %4s %12s %12s %7.2f %14s %14s\n' "$t" "$P" "$rr" "$mr" "$(echo "$mr / $rr" | bc -l)" "$rc" "$mc"
    done
done

# XACK: redis-benchmark sends one fixed command (and its __rand_int__ is
# zero-padded, which no stream id parses), so each server gets the same
# REQUESTS acknowledgements of distinct pending entries through
# `redis-cli --pipe` (one connection, deep pipeline): entries 1-0, 1-1, ...
# added with a partial id, all read into one consumer's PEL, then acked one
# XACK each. "-" in the P column: the pipeline is redis-cli's.
python3 - "$REQUESTS" >"$tmp/xack.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    ident = b"1-%d" % i
    out.write(b"*4\r\n$4\r\nXACK\r\n$3\r\nack\r\n$1\r\ng\r\n$%d\r\n%s\r\n" % (len(ident), ident))
PY
: >"$tmp/redis.ack"
: >"$tmp/rampart.ack"
# ack_round SERVER PORT PID ROUND: REQUESTS entries read into a PEL, then
# every one acknowledged
ack_round() {
    local server=$1 port=$2 pid=$3 before after t0 t1 replies pending
    redis-cli -p "$port" del ack >/dev/null
    redis-benchmark -p "$port" -c 1 -n "$REQUESTS" -P 64 xadd ack '1-*' f v >/dev/null 2>&1
    redis-cli -p "$port" xgroup create ack g 0 >/dev/null
    redis-cli -p "$port" xreadgroup group g c count "$REQUESTS" streams ack '>' >/dev/null
    before=$(cpu_ns "$pid")
    t0=$(date +%s%N)
    replies=$(redis-cli -p "$port" --pipe <"$tmp/xack.resp" 2>&1 | awk '/replies:/ { gsub(/[^0-9]/, " "); print $2 }')
    t1=$(date +%s%N)
    after=$(cpu_ns "$pid")
    pending=$(redis-cli -p "$port" xpending ack g | head -1)
    if [ "$replies" != "$REQUESTS" ] || [ "$pending" != 0 ]; then
        echo "xack on $server: $replies replies, $pending left pending" >&2
        return
    fi
    awk -v n="$REQUESTS" -v ns=$((t1 - t0)) -v cpu=$((after - before)) \
        'BEGIN { printf "xack,%.2f,%.3f\n", n / (ns / 1e9), cpu / 1000 / n }' >>"$tmp/$server.ack"
    redis-cli -p "$port" del ack >/dev/null
}
turns "$ROUNDS" ack_round
r=$(median <"$tmp/redis.ack")
m=$(median <"$tmp/rampart.ack")
IFS=, read -r _ rr rc <<<"$r"
IFS=, read -r _ mr mc <<<"$m"
printf '%-12s %4s %12s %12s %7.2f %14s %14s\n' xack - "$rr" "$mr" "$(echo "$mr / $rr" | bc -l)" "$rc" "$mc"

# bytes per entry of ENTRIES three-field XADDs with explicit ids
per_entry() {
    python3 - "$1" "$ENTRIES" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def cmd(*a):
    s.sendall(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
def used():
    cmd(b"INFO", b"memory")
    size = int(f.readline()[1:])
    body = f.read(size + 2).decode()
    return int(next(l for l in body.split("\r\n") if l.startswith("used_memory:")).split(":")[1])
cmd(b"DEL", b"mem"); f.readline()
before = used()
for start in range(1, n + 1, 1000):
    batch = range(start, min(start + 1000, n + 1))
    for i in batch:
        cmd(b"XADD", b"mem", b"%d-0" % (1700000000000 + i), b"name", b"user%d" % i,
            b"action", b"login", b"ts", b"%d" % (1700000000 + i))
    for _ in batch:
        f.readline(); f.readline()
print("%.1f" % ((used() - before) / n))
PY
}
r=$(per_entry "$PORT_redis")
m=$(per_entry "$PORT_rampart")
printf '\nmemory per entry (%s entries, 3 fields): redis %s B, rampart %s B, ratio %.3f\n' \
    "$ENTRIES" "$r" "$m" "$(echo "$m / $r" | bc -l)"
