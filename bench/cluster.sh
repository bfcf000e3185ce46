#!/usr/bin/env bash
# Cluster mode, three Rampart primaries and three redis-server 7.0
# primaries side by side (each set made with `redis-cli --cluster create`):
#   - `redis-benchmark --cluster` SET and GET at -P 1 and -P 16, random
#     keys over every slot: ops/s, the three servers' CPU per request
#     together, ratio = Rampart / Redis;
#   - the resharding rate: KEYS keys written, then `redis-cli --cluster
#     reshard` of SLOTS slots from the first primary to the second
#     (GETKEYSINSLOT + MIGRATE, RESHARD_PIPELINE keys a MIGRATE): keys
#     moved per second of the whole reshard, and the p50/p99/max latency
#     of a client doing GET/SET on random keys through the reshard
#     (following MOVED and ASK), which the reshard's MIGRATEs and slot
#     changes hold up.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/cluster.sh
#   REQUESTS=200000 KEYS=300000 SLOTS=2000 bash bench/cluster.sh
#   RAMPART=target/debug/rampart-server REQUESTS=2000 KEYS=2000 bash bench/cluster.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
KEYS=${KEYS:-200000}
SLOTS=${SLOTS:-1000}
RESHARD_PIPELINE=${RESHARD_PIPELINE:-10}

bench_init python3

# cluster NAME BINARY [ARG...]: three cluster-enabled servers NAME0..2,
# joined by `redis-cli --cluster create`; waits for cluster_state:ok
cluster() {
    local name=$1 bin=$2 i port addrs=()
    shift 2
    for i in 0 1 2; do
        start_server "$name$i" "$bin" --cluster-enabled yes --cluster-port "$(free_port)" \
            --cluster-node-timeout 5000 "$@"
        port_var=PORT_$name$i
        addrs+=("127.0.0.1:${!port_var}")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >"$tmp/$name.create" 2>&1
    for i in 0 1 2; do
        port_var=PORT_$name$i
        for _ in $(seq 300); do
            redis-cli -p "${!port_var}" cluster info 2>/dev/null | grep -q cluster_state:ok && break
            sleep 0.1
        done
    done
}

cluster redis redis-server
cluster rampart "$RAMPART" --encryption-at-rest no

# cpu NAME -> nanoseconds run by the cluster's three servers together
cpu() {
    local i pid_var s=0
    for i in 0 1 2; do
        pid_var=PID_$1$i
        s=$((s + $(cpu_ns "${!pid_var}")))
    done
    echo "$s"
}

# run NAME PIPELINE TEST -> "test,rps,cpu_us_per_request"
run() {
    local name=$1 pipeline=$2 t=$3 port_var=PORT_${1}0 before after csv
    csv=$(mktemp)
    before=$(cpu "$name")
    $CLIENT_CPU redis-benchmark --cluster -p "${!port_var}" -c "$CLIENTS" -n "$REQUESTS" \
        -P "$pipeline" -r 1000000 -t "$t" --csv 2>/dev/null >"$csv"
    after=$(cpu "$name")
    awk -F'","' -v ns=$((after - before)) -v n="$REQUESTS" \
        'END { if (NR < 2) exit; gsub(/"/, ""); split($0, f, ","); printf "%s,%s,%.3f\n", f[1], f[2], ns / 1000 / n }' "$csv"
    rm -f "$csv"
}

med() { sort -t, -k2 -n | awk -F, '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }'; }

printf '\n%-6s %4s %12s %12s %7s %14s %14s\n' test P redis_rps rampart_rps ratio redis_us/req rampart_us/req
for P in 1 16; do
    for name in redis rampart; do
        : >"$tmp/$name.$P"
        for _ in $(seq "$ROUNDS"); do
            for t in set get; do
                run "$name" "$P" "$t" >>"$tmp/$name.$P"
            done
        done
    done
    for t in SET GET; do
        r=$(grep "^$t," "$tmp/redis.$P" | med)
        m=$(grep "^$t," "$tmp/rampart.$P" | med)
        IFS=, read -r _ rr rc <<<"$r"
        IFS=, read -r _ mr mc <<<"$m"
        printf '%-6s %4s %12s %12s %7.2f %14s %14s\n' "$t" "$P" "$rr" "$mr" \
            "$(echo "$mr / $rr" | bc -l)" "$rc" "$mc"
    done
done

# dbsize NAME I -> keys held by server NAME<I>
dbsize() { local port_var=PORT_$1$2; redis-cli -p "${!port_var}" dbsize; }

# reshard NAME -> "keys_moved seconds keys_per_second"
reshard() {
    local name=$1 p0=PORT_${1}0 p1=PORT_${1}1 p2=PORT_${1}2 from to before after t0 t1
    redis-cli -p "${!p0}" flushall >/dev/null
    redis-cli -p "${!p1}" flushall >/dev/null
    redis-cli -p "${!p2}" flushall >/dev/null
    # KEYS distinct keys, each sent straight to its slot's owner in
    # pipelined batches (redis-cli -c would take a round trip a key).
    python3 - "$KEYS" "${!p0}" "${!p1}" "${!p2}" <<'PY'
import socket, sys
n, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
def crc16(b):
    crc = 0
    for c in b:
        crc ^= c << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
def owner(slot):
    return 0 if slot <= 5460 else 1 if slot <= 10922 else 2
socks = [socket.create_connection(("127.0.0.1", p)) for p in ports]
files = [s.makefile("rb") for s in socks]
batch = [[] for _ in ports]
def flush(i):
    if not batch[i]:
        return
    socks[i].sendall(b"".join(batch[i]))
    for _ in batch[i]:
        files[i].readline()
    batch[i] = []
for k in range(n):
    key = b"key:%d" % k
    i = owner(crc16(key) % 16384)
    batch[i].append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nval\r\n" % (len(key), key))
    if len(batch[i]) >= 1000:
        flush(i)
for i in range(len(ports)):
    flush(i)
PY
    from=$(redis-cli -p "${!p0}" cluster myid)
    to=$(redis-cli -p "${!p1}" cluster myid)
    before=$(dbsize "$name" 1)
    rm -f "$tmp/stop" "$tmp/started"
    python3 - "$KEYS" "$tmp/stop" "$tmp/$name.lat" "${!p0}" "$tmp/started" <<'PY' &
# A client on one connection per node: GET or SET of a random key, sent to
# the node the last MOVED named, ASKING after -ASK; each request's latency
# until the stop file appears, then p50/p99/max in ms.
import os, random, socket, sys, time
n, stop, out, seed, started = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
conns = {}
def conn(port):
    if port not in conns:
        s = socket.create_connection(("127.0.0.1", port))
        conns[port] = (s, s.makefile("rb"))
    return conns[port]
def cmd(port, *args):
    s, f = conn(port)
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    line = f.readline()
    if line.startswith(b"$") and not line.startswith(b"$-1"):
        f.read(int(line[1:]) + 2)
    return line
owner = {}
lat = []
while not os.path.exists(stop):
    key = b"key:%d" % random.randrange(n)
    args = (b"GET", key) if random.random() < 0.5 else (b"SET", key, b"val")
    port = owner.get(key, seed)
    t = time.perf_counter()
    for _ in range(5):
        r = cmd(port, *args)
        if r.startswith(b"-MOVED"):
            port = int(r.split()[2].rsplit(b":", 1)[1])
            owner[key] = port
        elif r.startswith(b"-ASK"):
            port = int(r.split()[2].rsplit(b":", 1)[1])
            cmd(port, b"ASKING")
        elif r.startswith(b"-TRYAGAIN"):
            time.sleep(0.001)
        else:
            break
    lat.append(time.perf_counter() - t)
    if len(lat) == 1:
        open(started, "w").close()
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
open(out, "w").write("%d %.3f %.3f %.3f\n" % (len(lat), q(0.5), q(0.99), lat[-1] * 1000))
PY
    local client=$!
    # The reshard starts once the client is running.
    for _ in $(seq 100); do [ -e "$tmp/started" ] && break; sleep 0.1; done
    t0=$(date +%s.%N)
    redis-cli --cluster reshard "127.0.0.1:${!p0}" --cluster-from "$from" --cluster-to "$to" \
        --cluster-slots "$SLOTS" --cluster-pipeline "$RESHARD_PIPELINE" --cluster-yes \
        >"$tmp/$name.reshard" 2>&1
    t1=$(date +%s.%N)
    touch "$tmp/stop"
    wait "$client"
    after=$(dbsize "$name" 1)
    echo "$((after - before)) $(echo "$t1 - $t0" | bc -l) $(echo "($after - $before) / ($t1 - $t0)" | bc -l) $(cat "$tmp/$name.lat")"
}

read -r rk rs rr rn r50 r99 rmax <<<"$(reshard redis)"
read -r mk ms mr mn m50 m99 mmax <<<"$(reshard rampart)"
printf '\nreshard of %s slots (%s keys in the cluster, %s keys a MIGRATE)\n' "$SLOTS" "$KEYS" "$RESHARD_PIPELINE"
printf '%-8s %12s %10s %12s %10s %10s %10s %10s\n' server keys_moved seconds keys/s requests p50_ms p99_ms max_ms
printf '%-8s %12s %10.2f %12.0f %10s %10s %10s %10s\n' redis "$rk" "$rs" "$rr" "$rn" "$r50" "$r99" "$rmax"
printf '%-8s %12s %10.2f %12.0f %10s %10s %10s %10s\n' rampart "$mk" "$ms" "$mr" "$mn" "$m50" "$m99" "$mmax"
printf 'ratio (rampart / redis keys/s): %.2f\n' "$(echo "$mr / $rr" | bc -l)"
printf 'client p99 during the reshard (rampart / redis): %.2f\n' "$(echo "$m99 / $r99" | bc -l)"
