#!/usr/bin/env bash
# Startup time on a large dataset, with and without `lock-memory yes`, and
# redis-server loading the same data as a plain RDB beside it:
#   - a dataset of about DATASET_MB MiB (VALUE-byte random values, so
#     neither RDB compression nor the page cache makes it small), saved by Rampart as its encrypted snapshot and decrypted
#     with `rampart snapshot decrypt` for redis-server;
#   - per round, each server started on it in turn, timed from exec until
#     PING answers PONG (the load done), with VmLck and VmRSS then.
# Needs the right to lock that much memory (root, or RLIMIT_MEMLOCK /
# CAP_IPC_LOCK); otherwise the lock-memory line reports the failure.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/lock_memory.sh
#   DATASET_MB=256 ROUNDS=5 bash bench/lock_memory.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

DATASET_MB=${DATASET_MB:-1024}
VALUE=${VALUE:-1024}
ROUNDS=${ROUNDS:-3}

bench_init python3
cargo build --release --bin rampart >&2
CLI=$(dirname "$RAMPART")/rampart
data=$tmp/data
mkdir -p "$data" "$tmp/redis"

now_ms() { date +%s%3N; }

# status_kb PID FIELD -> the field of /proc/PID/status, in kB
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# boot NAME CMD... -> "name,ms,vmlck_kb,vmrss_kb": starts the server, waits
# for PONG (bounded: 10 minutes), reads its memory, stops it
boot() {
    local name=$1 port start pid ms lck rss
    shift
    port=$(free_port)
    start=$(now_ms)
    "$@" --port "$port" --bind 127.0.0.1 --save "" --appendonly no >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 30000); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    ms=$(($(now_ms) - start))
    lck=$(status_kb "$pid" VmLck || echo 0)
    rss=$(status_kb "$pid" VmRSS || echo 0)
    [ "$(redis-cli -p "$port" dbsize 2>/dev/null)" = "$KEYS" ] ||
        echo "$name: dbsize $(redis-cli -p "$port" dbsize 2>&1) != $KEYS; log:" "$(tail -3 "$tmp/$name.log")" >&2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "$name,$ms,${lck:-0},${rss:-0}"
}

KEYS=$((DATASET_MB * 1024 * 1024 / VALUE))
echo "building a ${DATASET_MB} MiB dataset: $KEYS keys of $VALUE-byte values" >&2
start_server seed "$RAMPART" --dir "$data"
python3 - "$PORT_seed" "$KEYS" "$VALUE" <<'PY'
import os, socket, sys
port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
for start in range(0, n, 1000):
    batch = range(start, min(start + 1000, n))
    s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nkey:%d\r\n$%d\r\n%s\r\n"
                       % (len(b"key:%d" % i), i, size, os.urandom(size)) for i in batch))
    for _ in batch:
        if f.readline() != b"+OK\r\n":
            sys.exit("SET failed")
PY
redis-cli -p "$PORT_seed" save >/dev/null
redis-cli -p "$PORT_seed" shutdown nosave >/dev/null 2>&1 || true
"$CLI" snapshot decrypt "$data/dump.rdb" -o "$tmp/redis/dump.rdb" --key-file "$data/keys/keyring.json" >&2
printf 'encrypted snapshot %s MiB, plain RDB %s MiB\n\n' \
    $(($(stat -c %s "$data/dump.rdb") >> 20)) $(($(stat -c %s "$tmp/redis/dump.rdb") >> 20))

: >"$tmp/runs"
for r in $(seq "$ROUNDS"); do
    boot redis redis-server --dir "$tmp/redis" >>"$tmp/runs"
    boot rampart "$RAMPART" --dir "$data" --lock-memory no >>"$tmp/runs"
    boot rampart-locked "$RAMPART" --dir "$data" --lock-memory yes >>"$tmp/runs"
done

# med NAME COLUMN -> the median of that column over the rounds
med() { awk -F, -v n="$1" -v c="$2" '$1 == n { print $c }' "$tmp/runs" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-16s %10s %12s %12s\n' server ready_ms VmLck_MiB VmRSS_MiB
for n in redis rampart rampart-locked; do
    printf '%-16s %10s %12s %12s\n' "$n" "$(med "$n" 2)" $(($(med "$n" 3) >> 10)) $(($(med "$n" 4) >> 10))
done
printf '\nrampart / redis-server: %.2f   lock-memory yes / no: %.2f   (median of %s rounds)\n' \
    "$(echo "$(med rampart 2) / $(med redis 2)" | bc -l)" \
    "$(echo "$(med rampart-locked 2) / $(med rampart 2)" | bc -l)" "$ROUNDS"
grep -h -i "lock" "$tmp/rampart-locked.log" | head -2 || true
