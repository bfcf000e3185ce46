#!/usr/bin/env bash
# Cost of a Prometheus scrape (metrics-port) with many clients connected and
# 16 databases holding keys:
#   - one scrape's wall time (median and worst of SCRAPES), the exposition's
#     size and series count, and the server's CPU per scrape (all its
#     threads, less what it burns idle over the same time);
#   - used_memory before the first scrape and after them all (the registry
#     and its families are created at the first scrape);
#   - SET p99 and throughput from redis-benchmark alone, then with a scrape
#     every SCRAPE_MS (100 ms: ten times Prometheus's usual rate) beside
#     it, and the scraper's own CPU per scrape (see the scraper below; a
#     `curl` per scrape would cost a fork and exec each time, more than
#     the scrape).
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/metrics.sh
#   IDLE_CLIENTS=10000 KEYS=100000 bash bench/metrics.sh
#   ROUNDS=5 ...          # alone/scraped SET pairs (default 3)
#   SCRAPER=python ...    # scrape from Python rather than a small C client
#   SCRAPE_MS=1 ...       # scrape every 1 ms instead of 100 (amplifies the
#                         # effect: about 100 times the scrapes a second)
#   SCRAPER_IDLE=yes ...  # run the scraper at SCHED_IDLE (chrt --idle 0): its
#                         # own CPU then waits for a free core, as if it ran
#                         # on another machine, so the SET tail shows the
#                         # server's share of a scrape only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

IDLE_CLIENTS=${IDLE_CLIENTS:-1000}
KEYS=${KEYS:-20000}
SCRAPES=${SCRAPES:-50}
SCRAPE_MS=${SCRAPE_MS:-100}
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
pid=$PID_rampart
idle_a=$(cpu_ns "$pid"); idle_t0=$(date +%s%N); sleep 1
idle_b=$(cpu_ns "$pid"); idle_t1=$(date +%s%N)
cpu_a=$(cpu_ns "$pid"); t0=$(date +%s%N)

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
cpu_b=$(cpu_ns "$pid"); t1=$(date +%s%N)
awk -v d=$((cpu_b - cpu_a)) -v t=$((t1 - t0)) -v i=$((idle_b - idle_a)) -v it=$((idle_t1 - idle_t0)) -v n="$SCRAPES" \
    'BEGIN { printf "server CPU per scrape: %.3f ms (idle CPU over the same time subtracted)\n", (d - i * t / it) / n / 1e6 }'
mem_after=$(used)
echo "used_memory before the first scrape $mem_before, after $SCRAPES: $mem_after (delta $((mem_after - mem_before)) bytes)"

# p99 of SET alone, then with a scrape every SCRAPE_MS, ROUNDS times in turn
# (on a shared machine the load drifts: pairs taken close together, and
# their median, say more than one pair).
set_line() {
    redis-benchmark -p "$port" -t set -n "$REQUESTS" -c "$CLIENTS" -r 100000 --csv 2>/dev/null |
        awk -F'","' 'END { gsub(/"/, ""); split($0, f, ","); printf "%s rps, p99 %s ms", f[2], f[7] }'
}
# The scraper beside the load: in production Prometheus runs on another
# machine, here it shares the two cores with the server and
# redis-benchmark, so its own CPU lands in the SET tail too. A Python
# loop costs about 0.35 ms of CPU per scrape, about the server's render;
# a small C client (built here when cc exists) about 0.15 ms, mostly the
# kernel's share of a 36 KB loopback read. Either reports its CPU;
# SCRAPER=python picks Python.
if [ "${SCRAPER:-c}" != python ] && command -v cc >/dev/null && cat >"$tmp/scraper.c" <<'EOF' && cc -O2 -DPAUSE_NS="$((SCRAPE_MS * 1000000))L" -o "$tmp/scraper" "$tmp/scraper.c"
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 20];
static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }
int main(int argc, char **argv) {
    struct sockaddr_in a = {0};
    (void)argc;
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
    struct timespec pause = {PAUSE_NS / 1000000000L, PAUSE_NS % 1000000000L};
    long n = 0;
    signal(SIGTERM, on_term);
    while (!stop) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0 &&
            write(s, req, strlen(req)) > 0) {
            while (read(s, buf, sizeof buf) > 0) {}
            n++;
        }
        if (s >= 0) close(s);
        nanosleep(&pause, NULL);
    }
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    double ms = (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
    if (n) printf("scraper CPU (C): %.3f ms per scrape over %ld\n", ms / n, n);
    return 0;
}
EOF
then
    start_scraper() { "$tmp/scraper" "$MPORT" & }
else
    start_scraper() {
        python3 - "$MPORT" "$SCRAPE_MS" <<'EOF' &
import signal, socket, sys, time
port, pause = int(sys.argv[1]), int(sys.argv[2]) / 1000
n, cpu0 = 0, time.process_time()
def done(*_):
    if n:
        print(f"scraper CPU (Python): {(time.process_time() - cpu0) / n * 1000:.3f} ms per scrape over {n}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    n += 1
    time.sleep(pause)
EOF
    }
fi
ROUNDS=${ROUNDS:-3}
if [ "${SCRAPER_IDLE:-no}" = yes ]; then
    eval "idle_$(declare -f start_scraper)"
    start_scraper() { idle_start_scraper; chrt --idle -a -p 0 $! >/dev/null; }
fi
ratios=()
alone_p99=()
scraped_p99=()
for round in $(seq "$ROUNDS"); do
    alone=$(set_line)
    echo "SET alone:                $alone"
    start_scraper
    scraper=$!
    pids+=($scraper)
    # Let the scraper start before the load does: Python's own startup is
    # tens of milliseconds of CPU, which landed in the first SET requests.
    sleep 0.5
    scraped=$(set_line)
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    echo "SET, scraped every ${SCRAPE_MS}ms: $scraped"
    ratios+=("$(awk -v a="${alone##*p99 }" -v b="${scraped##*p99 }" 'BEGIN { printf "%.2f", b / a }')")
    alone_p99+=("${alone##*p99 }")
    scraped_p99+=("${scraped##*p99 }")
done
# The median of each side too: a round's two runs drift together, but one
# noisy run moves its round's ratio by tens of percent on this machine.
median() { printf '%s\n' "$@" | sort -n | awk '{ r[NR] = $1 } END { if (NR % 2) print r[(NR + 1) / 2]; else print (r[NR / 2] + r[NR / 2 + 1]) / 2 }'; }
ma=$(median "${alone_p99[@]}")
ms=$(median "${scraped_p99[@]}")
awk -v a="$ma" -v s="$ms" 'BEGIN { printf "SET p99 medians: alone %.3f ms, scraped %.3f ms (%.2fx)\n", a, s, s / a }'
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1; all = all (NR > 1 ? " " : "") $1 "x" } END {
    if (NR % 2) m = r[(NR + 1) / 2]; else m = (r[NR / 2] + r[NR / 2 + 1]) / 2
    printf "SET p99 scraped / alone: median %.2fx over %d rounds (%s)\n", m, NR, all }'
