#!/usr/bin/env bash
# Cost of a Prometheus scrape (metrics-port) with many clients connected and
# 16 databases holding keys:
#   - one scrape's wall time (median and worst of SCRAPES), the exposition's
#     size and series count;
#   - used_memory before the first scrape and after them all (the registry
#     and its families are created at the first scrape);
#   - SET p99 and throughput from redis-benchmark alone, then with a scrape
#     every 100 ms beside it (ten times Prometheus's usual rate).
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/metrics.sh
#   IDLE_CLIENTS=10000 KEYS=100000 bash bench/metrics.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

IDLE_CLIENTS=${IDLE_CLIENTS:-1000}
KEYS=${KEYS:-20000}
SCRAPES=${SCRAPES:-50}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}

bench_init
ulimit -n $((IDLE_CLIENTS + 1024)) 2>/dev/null || true
MPORT=$(free_port)
start_server rampart "$RAMPART" --metrics-port "$MPORT" --maxclients $((IDLE_CLIENTS + 1000))
port=$PORT_rampart

for db in $(seq 0 15); do
    redis-benchmark -p "$port" --dbnum "$db" -t set -n "$KEYS" -r "$KEYS" -c 20 -P 16 -q >/dev/null
done
echo "databases holding keys: $(redis-cli -p "$port" info keyspace | grep -c '^db')"

# Idle clients, held open by one Python process until the script ends.
python3 - "$port" "$IDLE_CLIENTS" <<'EOF' &
import resource, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(3600)
EOF
pids+=($!)
for _ in $(seq 300); do
    c=$(redis-cli -p "$port" info clients | awk -F: '/^connected_clients/ { print $2+0 }')
    [ "$c" -ge "$IDLE_CLIENTS" ] && break
    sleep 0.1
done
echo "connected_clients: $c"

used() { redis-cli -p "$port" info memory | awk -F: '/^used_memory:/ { print $2+0 }'; }
mem_before=$(used)

python3 - "$MPORT" "$SCRAPES" <<'EOF'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
def scrape():
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data.split(b"\r\n\r\n", 1)[1]
times = []
for _ in range(n):
    t = time.perf_counter()
    body = scrape()
    times.append((time.perf_counter() - t) * 1000)
times.sort()
series = sum(1 for l in body.split(b"\n") if l and not l.startswith(b"#"))
print(f"scrape: median {times[len(times)//2]:.2f} ms, worst {times[-1]:.2f} ms over {n}; "
      f"{len(body)} bytes, {series} series")
EOF
mem_after=$(used)
echo "used_memory before the first scrape $mem_before, after $SCRAPES: $mem_after (delta $((mem_after - mem_before)) bytes)"

# p99 of SET alone, then with a scrape every 100 ms.
set_line() {
    redis-benchmark -p "$port" -t set -n "$REQUESTS" -c "$CLIENTS" -r 100000 --csv 2>/dev/null |
        awk -F'","' 'END { gsub(/"/, ""); split($0, f, ","); printf "%s rps, p99 %s ms", f[2], f[7] }'
}
echo "SET alone:               $(set_line)"
python3 - "$MPORT" <<'EOF' &
import socket, sys, time
port = int(sys.argv[1])
while True:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    time.sleep(0.1)
EOF
scraper=$!
pids+=($scraper)
echo "SET, scraped every 100ms: $(set_line)"
kill "$scraper" 2>/dev/null || true
