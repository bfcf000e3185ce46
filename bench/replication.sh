#!/usr/bin/env bash
# Replication figures, Rampart -> Rampart beside Redis -> Redis in one run,
# with ratios (Rampart / Redis; for times and lags < 1 means Rampart is
# better):
#   - full sync of KEYS keys (16-byte values, then 1 KiB values): from
#     REPLICAOF until the replica reports master_link_status:up and its
#     DBSIZE matches (Rampart's sync is an encrypted envelope, stored
#     encrypted on the replica before it is loaded; Redis's is diskless
#     plain RDB);
#   - replication lag under `redis-benchmark -t set -P 16`: the primary's
#     master_repl_offset minus the replica's acknowledged offset, sampled
#     every 100 ms (bytes), and how long the replica takes to catch up;
#   - the primary's SET p99 latency while a replica does a full sync of the
#     1 KiB dataset, beside the same benchmark with no sync.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/replication.sh
#   KEYS=200000 bash bench/replication.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

KEYS=${KEYS:-1000000}
LAG_REQUESTS=${LAG_REQUESTS:-2000000}
P99_REQUESTS=${P99_REQUESTS:-200000}

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2
    exit 1
}
# RAMPART_BIN=path uses a binary built elsewhere (e.g. from a clean worktree).
if [ -z "${RAMPART_BIN:-}" ]; then
    cargo build --release --bin rampart-server >&2
fi
RAMPART=${RAMPART_BIN:-target/release/rampart-server}

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

now() { date +%s.%N; }

field() { # port section field
    redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1 == f { print $2 }'
}

start() { # kind name -> prints the port; extra args follow
    local kind=$1 name=$2 port bin
    shift 2
    port=$(free_port)
    mkdir -p "$tmp/$name"
    if [ "$kind" = rampart ]; then
        bin=$RAMPART
        set -- "$@" --kms-key-file "$tmp/keyring.json" --repl-diskless-sync-delay 0
    else
        bin=redis-server
        set -- "$@" --appendonly no --repl-diskless-sync yes --repl-diskless-sync-delay 0
    fi
    "$bin" --port "$port" --bind 127.0.0.1 --save "" --enable-debug-command yes \
        --dir "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    echo "$!" >"$tmp/$name.pid"
    for _ in $(seq 200); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    echo "$port"
}

stop() { # name
    local pid
    pid=$(cat "$tmp/$1.pid")
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

# full_sync kind size -> seconds
full_sync() {
    local kind=$1 size=$2 p r t0 t1 n
    p=$(start "$kind" "$kind-p-$size")
    redis-cli -p "$p" debug populate "$KEYS" key "$size" >/dev/null
    r=$(start "$kind" "$kind-r-$size")
    t0=$(now)
    redis-cli -p "$r" replicaof 127.0.0.1 "$p" >/dev/null
    while :; do
        if [ "$(field "$r" replication master_link_status)" = up ]; then
            n=$(redis-cli -p "$r" dbsize)
            [ "$n" = "$KEYS" ] && break
        fi
        sleep 0.02
    done
    t1=$(now)
    stop "$kind-r-$size"
    stop "$kind-p-$size"
    echo "$t1 - $t0" | bc -l
}

# lag kind -> "max_bytes avg_bytes catchup_seconds"
lag() {
    local kind=$1 p r bpid max=0 sum=0 n=0 l t0 t1
    p=$(start "$kind" "$kind-lp")
    r=$(start "$kind" "$kind-lr" --replicaof 127.0.0.1 "$p")
    while [ "$(field "$r" replication master_link_status)" != up ]; do sleep 0.05; done
    redis-benchmark -p "$p" -t set -P 16 -c 50 -n "$LAG_REQUESTS" -r 100000 -q >/dev/null 2>&1 &
    bpid=$!
    while kill -0 "$bpid" 2>/dev/null; do
        l=$(redis-cli -p "$p" info replication | tr -d '\r' |
            awk -F'[:,=]' '/^master_repl_offset/ { m = $2 } /^slave0/ { for (i = 1; i < NF; i++) if ($i == "offset") o = $(i + 1) } END { print m - o }')
        [ "$l" -gt "$max" ] && max=$l
        sum=$((sum + l))
        n=$((n + 1))
        sleep 0.1
    done
    t0=$(now)
    while [ "$(field "$p" replication master_repl_offset)" != "$(field "$r" replication slave_repl_offset)" ]; do
        sleep 0.01
    done
    t1=$(now)
    stop "$kind-lr"
    stop "$kind-lp"
    echo "$max $((sum / (n > 0 ? n : 1))) $(echo "$t1 - $t0" | bc -l)"
}

# p99 kind -> "p99_without_sync p99_during_sync" (ms)
p99() {
    local kind=$1 p r base during
    p=$(start "$kind" "$kind-wp")
    redis-cli -p "$p" debug populate "$KEYS" key 1024 >/dev/null
    base=$(redis-benchmark -p "$p" -t set -c 50 -n "$P99_REQUESTS" -r 1000000 --csv 2>/dev/null |
        awk -F'","' 'NR == 2 { gsub(/"/, ""); split($0, f, ","); print f[7] }')
    r=$(start "$kind" "$kind-wr")
    redis-cli -p "$r" replicaof 127.0.0.1 "$p" >/dev/null
    during=$(redis-benchmark -p "$p" -t set -c 50 -n "$P99_REQUESTS" -r 1000000 --csv 2>/dev/null |
        awk -F'","' 'NR == 2 { gsub(/"/, ""); split($0, f, ","); print f[7] }')
    if [ "$(field "$r" replication master_link_status)" = up ]; then
        during="$during(sync-ended-first)"
    fi
    stop "$kind-wr"
    stop "$kind-wp"
    echo "$base $during"
}

ratio() { echo "scale=2; $2 / $1" | bc -l; }

echo "keys: $KEYS" >&2
printf '\n%-34s %12s %12s %8s\n' figure redis rampart ratio
for size in 16 1024; do
    a=$(full_sync redis "$size")
    b=$(full_sync rampart "$size")
    printf '%-34s %12.2f %12.2f %8s\n' "full sync ${size}B values (s)" "$a" "$b" "$(ratio "$a" "$b")"
done
read -r rmax ravg rcatch < <(lag redis)
read -r mmax mavg mcatch < <(lag rampart)
printf '%-34s %12s %12s %8s\n' "lag under SET -P 16, max (bytes)" "$rmax" "$mmax" "$(ratio "$rmax" "$mmax")"
printf '%-34s %12s %12s %8s\n' "lag under SET -P 16, avg (bytes)" "$ravg" "$mavg" "$(ratio "$ravg" "$mavg")"
printf '%-34s %12.3f %12.3f\n' "catch-up after the load (s)" "$rcatch" "$mcatch"
read -r rbase rduring < <(p99 redis)
read -r mbase mduring < <(p99 rampart)
printf '%-34s %12s %12s\n' "SET p99 no sync (ms)" "$rbase" "$mbase"
printf '%-34s %12s %12s\n' "SET p99 during full sync (ms)" "$rduring" "$mduring"
