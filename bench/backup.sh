#!/usr/bin/env bash
# Backup and restore costs against a real S3-compatible server (the Garage
# that scripts/services.sh starts on loopback), Rampart beside what a
# redis-server 7.0 user does today, in one run; ratio = Rampart / Redis:
#   1. backup: Rampart's `BACKUP CREATE` (point-in-time capture, RDB,
#      envelope, multipart upload of 8 MiB parts, manifest) against
#      `redis-cli --rdb` (the RDB over the replication link, to a local
#      file) plus a plaintext multipart upload of that file with boto3 (what
#      `aws s3 cp` does): wall time and MB/s of the uploaded object;
#   2. memory: Rampart's peak VmRSS during its backup above its RSS before
#      (sampled every SAMPLE_MS ms; the target is <= 64 MiB whatever the
#      dataset's size);
#   3. restore: `rampart backup restore` (ranged GETs, decrypt, check, and
#      re-seal as the new directory's snapshot) against a boto3 download of
#      the plain RDB: wall time and MB/s;
#   4. SET p99 while backups run back to back against the same load with
#      no backup (the target is <= 1.2x), on both: Rampart's BACKUP CREATE
#      in a loop, and Redis's --rdb + upload in a loop. Garage runs on the
#      same 2 cores as the servers and the load, which a remote store would
#      not.
# KEYS keys of SIZE-byte values, filled with DEBUG POPULATE (1,000,000 x
# 1 KiB by default: about 1.1 GB of RDB). A benchmark, not a test: it
# reports, it asserts nothing.
#
#   bash bench/backup.sh                  # defaults below
#   KEYS=100000 bash bench/backup.sh      # quick run
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

KEYS=${KEYS:-1000000}
SIZE=${SIZE:-1024}
CLIENTS=${CLIENTS:-50}
REQUESTS=${REQUESTS:-300000}
SAMPLE_MS=${SAMPLE_MS:-10}

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)" >&2
    exit 1
}
cargo build --release --bin rampart-server --bin rampart >&2
RAMPART=$PWD/target/release/rampart-server
TOOL=$PWD/target/release/rampart
eval "$(bash scripts/services.sh start)"
PY=$PWD/.venv/moto/bin/python # has boto3 (moto's dependency)

tmp=$(mktemp -d)
declare -A PID PORT
cleanup() {
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PID[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
cli() { redis-cli -p "${PORT[$1]}" "${@:2}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN { if (t + 0 == 0) print "-"; else printf "%.0f", b / 1e6 / (t / 1000) }'; }
row() { # metric redis rampart [ratio]
    local r
    if [ $# -ge 4 ]; then r=$4; else r=$(ratio "$3" "$2"); fi
    printf '%-38s %16s %16s %8s\n' "$1" "$2" "$3" "$r"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

prefix="bench-$(date +%s)/"
S3ARGS=(--backup-s3-bucket "$RAMPART_TEST_S3_BUCKET" --backup-s3-prefix "$prefix"
    --backup-s3-endpoint "$RAMPART_TEST_S3_ENDPOINT" --backup-s3-region "$RAMPART_TEST_S3_REGION"
    --backup-s3-path-style yes)
STORE=(--store "s3://$RAMPART_TEST_S3_BUCKET/$prefix" --s3-endpoint "$RAMPART_TEST_S3_ENDPOINT"
    --s3-region "$RAMPART_TEST_S3_REGION" --s3-path-style)

for s in redis rampart; do
    PORT[$s]=$(free_port)
    mkdir -p "$tmp/$s"
done
# repl-diskless-sync-delay 0: `redis-cli --rdb` would otherwise wait 5 s
# for other replicas before the transfer starts.
redis-server --port "${PORT[redis]}" --bind 127.0.0.1 --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --enable-debug-command yes --dir "$tmp/redis" >"$tmp/redis.log" 2>&1 &
PID[redis]=$!
"$RAMPART" --port "${PORT[rampart]}" --bind 127.0.0.1 --save "" --enable-debug-command yes \
    --dir "$tmp/rampart" "${S3ARGS[@]}" >"$tmp/rampart.log" 2>&1 &
PID[rampart]=$!
for s in redis rampart; do
    for _ in $(seq 200); do [ "$(cli "$s" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
    cli "$s" debug populate "$KEYS" key "$SIZE" >/dev/null
done
echo "redis:   $(redis-server --version)"
echo "rampart: $RAMPART (tree $(git describe --always --dirty 2>/dev/null || echo ?))"
echo "cpu:     $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "store:   s3://$RAMPART_TEST_S3_BUCKET/$prefix at $RAMPART_TEST_S3_ENDPOINT (Garage, loopback)"
echo "data:    $KEYS keys x $SIZE B"
printf '\n%-38s %16s %16s %8s\n' metric redis rampart ratio

# ---- 1 and 2: backup ---------------------------------------------------------
base=$(rss_kb "${PID[rampart]}")
: >"$tmp/rss"
(
    while [ ! -e "$tmp/stop" ]; do rss_kb "${PID[rampart]}" >>"$tmp/rss"; sleep "0.0$SAMPLE_MS"; done
) &
sampler=$!
t0=$(now_ns)
reply=$(cli rampart backup create b1)
t_ramp=$(ms_since "$t0")
touch "$tmp/stop"
wait "$sampler"
[ "$reply" = b1 ] || echo "BACKUP CREATE: $reply" >&2
peak=$(sort -n "$tmp/rss" | tail -1)
size_ramp=$(cli rampart backup list | awk 'prev == "size" { print; exit } { prev = $0 }')

t0=$(now_ns)
redis-cli -p "${PORT[redis]}" --rdb "$tmp/redis.rdb" >/dev/null 2>&1
t_rdb=$(ms_since "$t0")
size_redis=$(stat -c %s "$tmp/redis.rdb")
t0=$(now_ns)
"$PY" - "$tmp/redis.rdb" "${prefix}redis-plain.rdb" <<'EOF'
import os, sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["RAMPART_TEST_S3_ENDPOINT"],
                  region_name=os.environ["RAMPART_TEST_S3_REGION"])
cfg = TransferConfig(multipart_chunksize=8 << 20, max_concurrency=1)
s3.upload_file(sys.argv[1], os.environ["RAMPART_TEST_S3_BUCKET"], sys.argv[2], Config=cfg)
EOF
t_up=$(ms_since "$t0")
t_redis=$((t_rdb + t_up))
row "backup ms (redis: --rdb + upload)" "$t_redis" "$t_ramp"
row "  redis --rdb ms / upload ms" "$t_rdb / $t_up" "" ""
row "object bytes" "$size_redis" "$size_ramp"
row "backup MB/s of object" "$(mbps "$size_redis" "$t_redis")" "$(mbps "$size_ramp" "$t_ramp")"
row "rampart peak RSS above start (MiB)" "" "$(awk -v p="$peak" -v b="$base" 'BEGIN { printf "%.1f", (p - b) / 1024 }')" ""

# ---- 3: restore --------------------------------------------------------------
t0=$(now_ns)
"$TOOL" backup restore b1 --dir "$tmp/restored" "${STORE[@]}" \
    --key-file "$tmp/rampart/keys/keyring.json" 2>"$tmp/restore.log"
t_rest=$(ms_since "$t0")
t0=$(now_ns)
"$PY" - "$tmp/downloaded.rdb" "${prefix}redis-plain.rdb" <<'EOF'
import os, sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["RAMPART_TEST_S3_ENDPOINT"],
                  region_name=os.environ["RAMPART_TEST_S3_REGION"])
cfg = TransferConfig(multipart_chunksize=8 << 20, max_concurrency=1)
s3.download_file(os.environ["RAMPART_TEST_S3_BUCKET"], sys.argv[2], sys.argv[1], Config=cfg)
EOF
t_down=$(ms_since "$t0")
rm -rf "$tmp/restored" "$tmp/downloaded.rdb" "$tmp/redis.rdb"
row "restore ms (redis: download)" "$t_down" "$t_rest"
row "restore MB/s of object" "$(mbps "$size_redis" "$t_down")" "$(mbps "$size_ramp" "$t_rest")"

# ---- 4: SET p99 during backups -----------------------------------------------
p99() { # name -> p99 ms of a SET load over the populated keys
    redis-benchmark -p "${PORT[$1]}" -c "$CLIENTS" -n "$REQUESTS" -r "$KEYS" -d "$SIZE" -t set --csv 2>/dev/null |
        awk -F, 'NR == 2 { gsub(/"/, ""); print $7 }'
}
backup_loop() { # name: back-to-back backups until $tmp/stop exists
    local n=0
    while [ ! -e "$tmp/stop" ]; do
        n=$((n + 1))
        if [ "$1" = rampart ]; then
            cli rampart backup create "loop-$n" >/dev/null
        else
            redis-cli -p "${PORT[redis]}" --rdb "$tmp/loop.rdb" >/dev/null 2>&1
            "$PY" - "$tmp/loop.rdb" "${prefix}loop-$n.rdb" <<'EOF'
import os, sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["RAMPART_TEST_S3_ENDPOINT"],
                  region_name=os.environ["RAMPART_TEST_S3_REGION"])
s3.upload_file(sys.argv[1], os.environ["RAMPART_TEST_S3_BUCKET"], sys.argv[2],
               Config=TransferConfig(multipart_chunksize=8 << 20, max_concurrency=1))
EOF
        fi
    done
    echo "$n" >"$tmp/loops.$1"
}
declare -A QUIET BUSY
for s in redis rampart; do
    QUIET[$s]=$(p99 "$s")
    rm -f "$tmp/stop"
    backup_loop "$s" &
    looper=$!
    BUSY[$s]=$(p99 "$s")
    touch "$tmp/stop"
    wait "$looper"
done
row "SET p99 ms, no backup" "${QUIET[redis]}" "${QUIET[rampart]}"
row "SET p99 ms, backups in a loop" "${BUSY[redis]}" "${BUSY[rampart]}"
row "  p99 with / without backups" "$(ratio "${BUSY[redis]}" "${QUIET[redis]}")" "$(ratio "${BUSY[rampart]}" "${QUIET[rampart]}")" ""
echo "backups taken during the loaded runs: redis $(cat "$tmp/loops.redis"), rampart $(cat "$tmp/loops.rampart")"
"$PY" - "$prefix" <<'EOF' >/dev/null
import os, sys, boto3
s3 = boto3.resource("s3", endpoint_url=os.environ["RAMPART_TEST_S3_ENDPOINT"],
                    region_name=os.environ["RAMPART_TEST_S3_REGION"])
s3.Bucket(os.environ["RAMPART_TEST_S3_BUCKET"]).objects.filter(Prefix=sys.argv[1]).delete()
EOF
