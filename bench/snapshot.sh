#!/usr/bin/env bash
# Snapshot costs of Rampart (encryption-at-rest yes: the default, with the
# local keyring it creates in its --dir) beside redis-server 7.0 (plain RDB,
# rdbcompression yes), in one run; ratio = Rampart / Redis, so < 1 means
# Rampart is faster, smaller or lighter:
#   1. SAVE: wall time of `redis-cli SAVE` (best of SAVE_RUNS, all runs
#      listed) and file size, after DEBUG POPULATE of KEYS keys with values
#      of each of SIZES bytes (16 and 1024 by default);
#   2. load at startup: the server is stopped and started again on the same
#      --dir; time from exec until PING answers PONG and DBSIZE is KEYS, and
#      the load time the server logs itself;
#   3. memory during BGSAVE: KEYS keys of BG_SIZE-byte values named as
#      redis-benchmark names them (key:%012d), so that the concurrent
#      `redis-benchmark -t set -r KEYS -d BG_SIZE -c CLIENTS` overwrites keys
#      instead of adding them; BGSAVE runs in a loop (a new one as soon as
#      the last ended) for as long as the load runs. VmRSS is sampled every
#      SAMPLE_MS ms, parent + forked child for Redis (one process for
#      Rampart), and PSS (shared pages split between parent and child: the
#      memory really used) every PSS_EVERY samples. Peak minus the RSS before
#      the load; the same figure for the load without BGSAVE is a control;
#   4. rps, p99 and max latency of that SET load: -n REQUESTS without BGSAVE,
#      -n BUSY_REQUESTS with the BGSAVE loop (a run still going after
#      BUSY_TIMEOUT seconds is stopped and reported as "-"). The -n is fixed,
#      not sized from a short first run: throughput under a BGSAVE depends on
#      how far the save is, so a short run's rate misleads. Latencies of
#      3000 ms are redis-benchmark's histogram cap: read them as >= 3 s.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/snapshot.sh                       # defaults below
#   KEYS=100000 bash bench/snapshot.sh           # quick run
#   SIZES=1024 BGSAVE=no bash bench/snapshot.sh  # SAVE/load of 1 KiB values only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KEYS=${KEYS:-1000000}
SIZES=${SIZES:-"16 1024"}
SAVE_RUNS=${SAVE_RUNS:-2}
BGSAVE=${BGSAVE:-yes}
BG_SIZE=${BG_SIZE:-1024}
CLIENTS=${CLIENTS:-50}
REQUESTS=${REQUESTS:-$KEYS}
SAMPLE_MS=${SAMPLE_MS:-10}
PSS_EVERY=${PSS_EVERY:-10}
BUSY_REQUESTS=${BUSY_REQUESTS:-$REQUESTS}
BUSY_TIMEOUT=${BUSY_TIMEOUT:-900}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-600}

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2
    exit 1
}
cargo build --release --bin rampart-server >&2
RAMPART=$PWD/target/release/rampart-server

tmp=$(mktemp -d)
declare -A PID PORT BIN
cleanup() {
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
cli() { redis-cli -p "${PORT[$1]}" "${@:2}"; }

launch() { # name: starts the server on its port and --dir, returns at once
    local name=$1
    mkdir -p "$tmp/$name"
    "${BIN[$name]}" --port "${PORT[$name]}" --bind 127.0.0.1 --save "" --appendonly no \
        --enable-debug-command yes --dir "$tmp/$name" >>"$tmp/$name.log" 2>&1 &
    PID[$name]=$!
}

wait_ready() { # name keys: until PING answers PONG and DBSIZE is keys
    local deadline=$(($(date +%s) + LOAD_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if [ "$(cli "$1" ping 2>/dev/null)" = PONG ] &&
            [ "$(cli "$1" dbsize 2>/dev/null)" = "$2" ]; then
            return 0
        fi
        sleep 0.01
    done
    echo "$1 not ready after ${LOAD_TIMEOUT}s (see its log)" >&2
    tail -5 "$tmp/$1.log" >&2
    return 1
}

stop() { # name: SIGTERM (no save: --save "") and wait for the exit
    kill "${PID[$1]}" 2>/dev/null || true
    wait "${PID[$1]}" 2>/dev/null || true
    unset "PID[$1]"
}

BIN[redis]=$(command -v redis-server)
BIN[rampart]=$RAMPART
for s in redis rampart; do
    PORT[$s]=$(free_port)
    launch "$s"
    wait_ready "$s" 0
done
echo "redis:   $("${BIN[redis]}" --version)"
echo "rampart: $RAMPART (built $(date -r "$RAMPART" -u +%H:%M:%SZ), tree $(git describe --always --dirty 2>/dev/null || echo ?))"
echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "dir:     $tmp ($(df -T "$tmp" | awk 'NR == 2 { print $2 }'))"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
row() { # dataset metric redis rampart [ratio]: the ratio is computed unless given
    local r
    if [ $# -ge 5 ]; then r=$5; else r=$(ratio "$4" "$3"); fi
    printf '%-16s %-30s %18s %18s %8s\n' "$1" "$2" "$3" "$4" "$r"
}

# ---- 1 and 2: SAVE and load at startup -------------------------------------
printf '\n%-16s %-30s %18s %18s %8s\n' dataset metric redis rampart ratio
for size in $SIZES; do
    declare -A best all fsize rdbbytes load logload
    for s in redis rampart; do
        cli "$s" flushall >/dev/null
        cli "$s" debug populate "$KEYS" key "$size" >/dev/null
        best[$s]=
        all[$s]=
        for _ in $(seq "$SAVE_RUNS"); do
            t0=$(now_ns)
            reply=$(cli "$s" save 2>&1)
            t=$(ms_since "$t0")
            [ "$reply" = OK ] || echo "$s SAVE: $reply" >&2
            all[$s]="${all[$s]:+${all[$s]} }$t"
            if [ -z "${best[$s]}" ] || [ "$t" -lt "${best[$s]}" ]; then best[$s]=$t; fi
        done
        fsize[$s]=$(stat -c %s "$tmp/$s/dump.rdb")
        # Rampart logs the size of the RDB stream inside the envelope.
        rdbbytes[$s]=$(sed -n 's/.*DB saved on disk (.*, \([0-9]*\) bytes of RDB).*/\1/p' "$tmp/$s.log" | tail -1)
        [ -n "${rdbbytes[$s]}" ] || rdbbytes[$s]=${fsize[$s]}
        stop "$s"
        t0=$(now_ns)
        launch "$s"
        wait_ready "$s" "$KEYS"
        load[$s]=$(ms_since "$t0")
        # Redis: "DB loaded from disk: 0.452 seconds"; Rampart: "Done
        # loading RDB <path>, keys loaded: N, keys expired: 0, in 0.452 seconds".
        logload[$s]=$(grep -E 'DB loaded from disk|Done loading RDB .* seconds' "$tmp/$s.log" |
            tail -1 | sed -n 's/.*[: ]\([0-9.]*\) seconds.*/\1/p')
        logload[$s]=$(awk -v x="${logload[$s]:-0}" 'BEGIN { printf "%.0f", x * 1000 }')
    done
    ds="${KEYS}x${size}B"
    row "$ds" "SAVE ms (best of $SAVE_RUNS)" "${best[redis]}" "${best[rampart]}"
    row "" "SAVE ms (each run)" "${all[redis]}" "${all[rampart]}" ""
    row "" "file bytes" "${fsize[redis]}" "${fsize[rampart]}"
    row "" "RDB bytes (inside envelope)" "${rdbbytes[redis]}" "${rdbbytes[rampart]}"
    row "" "SAVE MB/s of file" \
        "$(awk -v b="${fsize[redis]}" -v t="${best[redis]}" 'BEGIN { printf "%.0f", b / 1e6 / (t / 1000) }')" \
        "$(awk -v b="${fsize[rampart]}" -v t="${best[rampart]}" 'BEGIN { printf "%.0f", b / 1e6 / (t / 1000) }')"
    row "" "startup ms (to PING+DBSIZE)" "${load[redis]}" "${load[rampart]}"
    row "" "load ms (server's log)" "${logload[redis]}" "${logload[rampart]}"
done
[ "$BGSAVE" = yes ] || exit 0

# ---- 3 and 4: BGSAVE under a write load ------------------------------------
cat >"$tmp/sampler.py" <<'EOF'
# sampler.py PID PORT MODE STOPFILE PERIOD_MS PSS_EVERY
# Samples VmRSS of PID and its children every PERIOD_MS (PSS every
# PSS_EVERY samples); MODE bgsave also starts a BGSAVE whenever none runs.
# Runs until STOPFILE exists (and, in bgsave mode, the last BGSAVE ended);
# prints one line of figures (kB, s).
import os, socket, sys, time
pid, port, mode, stop, period, pss_every = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]) / 1000, int(sys.argv[6])

def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def children(p):
    out = []
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    out += f.read().split()
            except OSError:
                pass
    except OSError:
        pass
    return out

sock = socket.create_connection(("127.0.0.1", port))
rd = sock.makefile("rb")

def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    sock.sendall(b"".join(parts))
    line = rd.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return b"" if n < 0 else rd.read(n + 2)[:-2]
    return line[:-2]

def saving():
    info = cmd("INFO", "persistence").decode()
    return "rdb_bgsave_in_progress:1" in info

rss0 = field(f"/proc/{pid}/status", "VmRSS:")
pss0 = field(f"/proc/{pid}/smaps_rollup", "Pss:")
peak = peak_parent = rss0
peak_child = 0
peak_pss = pss0
started = done = 0
in_save = False
save_start = 0.0
covered = 0.0
errors = set()
t0 = time.monotonic()
t_stop = None
n = 0
while True:
    now = time.monotonic()
    kids = children(pid)
    parent = field(f"/proc/{pid}/status", "VmRSS:")
    child = sum(field(f"/proc/{k}/status", "VmRSS:") for k in kids)
    peak = max(peak, parent + child)
    peak_parent = max(peak_parent, parent)
    peak_child = max(peak_child, child)
    if n % pss_every == 0:
        pss = field(f"/proc/{pid}/smaps_rollup", "Pss:") + sum(
            field(f"/proc/{k}/smaps_rollup", "Pss:") for k in kids)
        peak_pss = max(peak_pss, pss)
    if t_stop is None and os.path.exists(stop):
        t_stop = now
    if mode == "bgsave":
        if in_save and not saving():
            in_save = False
            done += 1
            covered += min(now, t_stop or now) - save_start
        if not in_save and t_stop is None:
            r = cmd("BGSAVE")
            if r.startswith(b"+Background saving started"):
                in_save, save_start = True, now
                started += 1
            else:
                errors.add(r.decode(errors="replace"))
    if t_stop is not None and not in_save:
        break
    n += 1
    time.sleep(max(0.0, t0 + (n * period) - time.monotonic()))
    if n % 1000 == 0 and time.monotonic() - t0 > 3600:
        break
dur = (t_stop or time.monotonic()) - t0
for e in errors:
    print("BGSAVE:", e, file=sys.stderr)
print(rss0, peak, peak_parent, peak_child, pss0, peak_pss, done, "%.3f" % covered, "%.3f" % dur)
EOF

resp_gen="
import sys
w = sys.stdout.buffer
val = b'x' * $BG_SIZE
tail = b'\r\n\$%d\r\n' % len(val) + val + b'\r\n'
batch = []
for i in range($KEYS):
    batch.append(b'*3\r\n\$3\r\nSET\r\n\$16\r\nkey:%012d' % i + tail)
    if len(batch) == 10000:
        w.write(b''.join(batch)); batch = []
w.write(b''.join(batch))
"

# bench NAME N -> "rps p99 max" of N SETs ("- - -" when it ran out of time)
bench() {
    local out
    out=$(timeout "$BUSY_TIMEOUT" redis-benchmark -p "${PORT[$1]}" -t set -r "$KEYS" -d "$BG_SIZE" \
        -c "$CLIENTS" -n "$2" --csv 2>/dev/null |
        awk -F'","' 'NR > 1 { gsub(/"/, ""); split($0, f, ","); print f[2], f[7], f[8] }') || true
    echo "${out:-- - -}"
}

# load NAME MODE -> "rss0 peak peak_parent peak_child pss0 peak_pss saves covered dur rps p99 max n"
# MODE idle: REQUESTS SETs; MODE bgsave: BUSY_REQUESTS SETs under a BGSAVE loop.
load() {
    local s=$1 mode=$2 sp csv n
    rm -f "$tmp/stop"
    python3 "$tmp/sampler.py" "${PID[$s]}" "${PORT[$s]}" "$mode" "$tmp/stop" "$SAMPLE_MS" "$PSS_EVERY" \
        >"$tmp/sample.out" &
    sp=$!
    sleep 0.3
    if [ "$mode" = idle ]; then n=$REQUESTS; else n=$BUSY_REQUESTS; fi
    csv=$(bench "$s" "$n")
    touch "$tmp/stop"
    wait "$sp"
    echo "$(cat "$tmp/sample.out") $csv $n"
}

printf '\nredis-benchmark -t set -r %s -d %s -c %s over %s keys of %s-byte values, without and with a BGSAVE loop\n' \
    "$KEYS" "$BG_SIZE" "$CLIENTS" "$KEYS" "$BG_SIZE"
declare -A idle busy
for s in redis rampart; do
    # A fresh process with no snapshot to load: memory freed by FLUSHALL is
    # not always reused (Rampart's I/O threads allocate from other arenas
    # than the startup load did), which would inflate "RSS before".
    stop "$s"
    rm -f "$tmp/$s/dump.rdb"
    launch "$s"
    wait_ready "$s" 0
    python3 -c "$resp_gen" | redis-cli -p "${PORT[$s]}" --pipe >/dev/null
    sleep 1
    idle[$s]=$(load "$s" idle)
    busy[$s]=$(load "$s" bgsave)
done
f() { echo "$1" | awk -v i="$2" '{ print $i }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ds="${KEYS}x${BG_SIZE}B"
printf '\n%-16s %-30s %18s %18s %8s\n' dataset metric redis rampart ratio
row "$ds" "RSS before, MB" "$(mb "$(f "${busy[redis]}" 1)")" "$(mb "$(f "${busy[rampart]}" 1)")"
row "" "BGSAVE: peak RSS - before, MB" \
    "$(mb $(($(f "${busy[redis]}" 2) - $(f "${busy[redis]}" 1))))" \
    "$(mb $(($(f "${busy[rampart]}" 2) - $(f "${busy[rampart]}" 1))))"
row "" "  parent peak / child peak MB" \
    "$(mb "$(f "${busy[redis]}" 3)")/$(mb "$(f "${busy[redis]}" 4)")" \
    "$(mb "$(f "${busy[rampart]}" 3)")/$(mb "$(f "${busy[rampart]}" 4)")" ""
row "" "BGSAVE: peak PSS - before, MB" \
    "$(mb $(($(f "${busy[redis]}" 6) - $(f "${busy[redis]}" 5))))" \
    "$(mb $(($(f "${busy[rampart]}" 6) - $(f "${busy[rampart]}" 5))))"
row "" "no BGSAVE: peak RSS - before" \
    "$(mb $(($(f "${idle[redis]}" 2) - $(f "${idle[redis]}" 1))))" \
    "$(mb $(($(f "${idle[rampart]}" 2) - $(f "${idle[rampart]}" 1))))"
row "" "BGSAVEs done / % of load" \
    "$(f "${busy[redis]}" 7)/$(awk -v c="$(f "${busy[redis]}" 8)" -v d="$(f "${busy[redis]}" 9)" 'BEGIN { printf "%.0f%%", 100 * c / d }')" \
    "$(f "${busy[rampart]}" 7)/$(awk -v c="$(f "${busy[rampart]}" 8)" -v d="$(f "${busy[rampart]}" 9)" 'BEGIN { printf "%.0f%%", 100 * c / d }')" ""
row "" "BGSAVE s (mean)" \
    "$(awk -v c="$(f "${busy[redis]}" 8)" -v n="$(f "${busy[redis]}" 7)" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print "-" }')" \
    "$(awk -v c="$(f "${busy[rampart]}" 8)" -v n="$(f "${busy[rampart]}" 7)" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print "-" }')"
row "" "SET requests (-n), no BGSAVE" "$(f "${idle[redis]}" 13)" "$(f "${idle[rampart]}" 13)" ""
row "" "SET requests (-n), BGSAVE loop" "$(f "${busy[redis]}" 13)" "$(f "${busy[rampart]}" 13)" ""
row "" "SET rps, no BGSAVE" "$(f "${idle[redis]}" 10)" "$(f "${idle[rampart]}" 10)"
row "" "SET rps, BGSAVE loop" "$(f "${busy[redis]}" 10)" "$(f "${busy[rampart]}" 10)"
row "" "SET p99 ms, no BGSAVE" "$(f "${idle[redis]}" 11)" "$(f "${idle[rampart]}" 11)"
row "" "SET p99 ms, BGSAVE loop" "$(f "${busy[redis]}" 11)" "$(f "${busy[rampart]}" 11)"
row "" "SET max ms, no BGSAVE" "$(f "${idle[redis]}" 12)" "$(f "${idle[rampart]}" 12)"
row "" "SET max ms, BGSAVE loop" "$(f "${busy[redis]}" 12)" "$(f "${busy[rampart]}" 12)"
# Redis's own account of the fork's copy-on-write (7.0: "Fork CoW for RDB:
# current N MB, peak N MB, average N MB" when a child ends).
cow=$(sed -n 's/.*Fork CoW for RDB: .*peak \([0-9]*\) MB.*/\1/p' "$tmp/redis.log" | sort -n | tail -1) || true
echo "redis log: largest copy-on-write peak of a BGSAVE child: ${cow:-?} MB"
echo "(latencies of 3000 ms are redis-benchmark's histogram cap: >= 3 s)"
