#!/usr/bin/env bash
# The request path's guard: builds a base commit (default: the merge base
# with main, which on main itself is HEAD) and the working tree, runs the
# same redis-benchmark lines against both builds and prints per line, new
# against old:
#   - instructions per request, counted by valgrind's callgrind on each
#     build (INSTR_REQUESTS requests a line): a count, not a timing, so it
#     repeats within ~0.5% on a shared machine. A line whose count rose by
#     more than LIMIT percent is flagged;
#   - throughput and the server's CPU time per request (schedstat, all
#     threads), medians of ROUNDS rounds with the builds taking turns: what
#     the time is, but on this shared 2-core VM two runs of the same build
#     differ by up to 20% a line, so these are reported, not flagged.
# Run it before merging a change that touches dispatch, the connection
# loop, the keyspace or a command family's hot path.
# A benchmark, not a test: it reports and flags, and exits 0 either way
# (FAIL_ON_FLAG=yes makes a flag exit 1).
#
#   bash bench/guard.sh                      # merge base vs working tree
#   bash bench/guard.sh HEAD~3               # a given commit vs working tree
#   ROUNDS=5 TESTS=set,get bash bench/guard.sh
#
# The base is built in a detached worktree under target/guard/ with its
# own target directory, kept between runs so a rebuild is incremental.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-200000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,lpush,mset}
PIPELINES=${PIPELINES:-"1 16"}
LIMIT=${LIMIT:-3}
INSTR_REQUESTS=${INSTR_REQUESTS:-20000}
FAIL_ON_FLAG=${FAIL_ON_FLAG:-no}

command -v redis-benchmark >/dev/null && command -v valgrind >/dev/null || {
    echo "needs redis-benchmark and valgrind (apt-get install redis-tools valgrind)" >&2
    exit 1
}
base=${1:-$(git merge-base HEAD main 2>/dev/null || git rev-parse HEAD)}
base=$(git rev-parse --verify "$base^{commit}")
root=$PWD
guard=$root/target/guard
mkdir -p "$guard"
# The old build: a detached worktree at the base, its own target dir.
if [ -d "$guard/tree" ]; then
    git -C "$guard/tree" checkout -q --detach "$base"
else
    git worktree add -q --detach "$guard/tree" "$base"
fi
echo "building old ($(git log -1 --format='%h %s' "$base" | cut -c1-60))" >&2
(cd "$guard/tree" && CARGO_TARGET_DIR=$guard/target cargo build -q --release --bin rampart-server) >&2
cp "$guard/target/release/rampart-server" "$guard/rampart-server.old"
echo "building new (working tree $(git describe --always --dirty))" >&2
cargo build -q --release --bin rampart-server >&2
cp target/release/rampart-server "$guard/rampart-server.new"

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# instr BUILD PIPELINE -> lines "test,instructions per request": the
# build runs under callgrind; its counters are zeroed before each line and
# dumped after it.
instr() {
    local bin=$guard/rampart-server.$1 port vp t f total name
    port=$(free_port)
    rm -rf "$tmp/cg" && mkdir -p "$tmp/cg"
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg/out.%p" "$bin" --port "$port" \
        --bind 127.0.0.1 --save "" --dir "$tmp/cg" >"$tmp/cg.log" 2>&1 &
    vp=$!
    for _ in $(seq 300); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    for t in ${TESTS//,/ }; do
        callgrind_control -z "$vp" >/dev/null 2>&1
        name=$(redis-benchmark -p "$port" -c "$CLIENTS" -n "$INSTR_REQUESTS" -P "$2" -t "$t" --csv 2>/dev/null |
            awk -F'","' 'END { gsub(/"/, "", $1); print $1 }')
        callgrind_control -d "$vp" >/dev/null 2>&1
        f=$(ls -t "$tmp"/cg/out.* | head -1)
        total=$(awk '/^summary:/ { print $2 }' "$f")
        rm -f "$tmp"/cg/out.*.[0-9]*
        echo "$name,$(awk -v t="$total" -v n="$INSTR_REQUESTS" 'BEGIN { printf "%.0f", t / n }')"
    done
    kill "$vp" 2>/dev/null || true
    wait "$vp" 2>/dev/null || true
}

declare -A PORT PID
for s in old new; do
    PORT[$s]=$(free_port)
    mkdir -p "$tmp/$s"
    "$guard/rampart-server.$s" --port "${PORT[$s]}" --bind 127.0.0.1 --save "" \
        --dir "$tmp/$s" >"$tmp/$s.log" 2>&1 &
    PID[$s]=$!
    pids+=("${PID[$s]}")
    for _ in $(seq 100); do
        redis-cli -p "${PORT[$s]}" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
done

echo "old:  $(git log -1 --format='%h' "$base")   new: working tree   cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf 'median of %s rounds of %s requests (5x pipelined), the builds taking turns; ratios new/old\n\n' "$ROUNDS" "$REQUESTS"
printf '%-20s %9s %9s %6s %10s %10s %6s %9s %9s %6s  %s\n' line old_instr new_instr ratio old_rps new_rps ratio old_us new_us ratio flag
flags=0
BASE_REQUESTS=$REQUESTS
for p in $PIPELINES; do
    # Pipelined lines run 5x the requests, so each lasts long enough to
    # measure.
    REQUESTS=$((BASE_REQUESTS * (p > 1 ? 5 : 1)))
    for r in $(seq "$ROUNDS"); do
        # Alternate which build goes first, so neither always runs on a
        # machine the other just warmed or loaded.
        if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
        for s in $order; do
            redis-cli -p "${PORT[$s]}" flushall >/dev/null
            bench_tests "${PORT[$s]}" "${PID[$s]}" "$p" "$TESTS" >"$tmp/$s.$r.csv"
        done
    done
    median "$tmp"/old.*.csv >"$tmp/old.csv"
    median "$tmp"/new.*.csv >"$tmp/new.csv"
    rm -f "$tmp"/old.*.csv "$tmp"/new.*.csv
    instr old "$p" | sort >"$tmp/old.instr"
    instr new "$p" | sort >"$tmp/new.instr"
    # test, old_instr, new_instr, old rps/p99/cpu, new rps/p99/cpu
    join -t, "$tmp/old.instr" "$tmp/new.instr" |
        join -t, - <(sort "$tmp/old.csv") | join -t, - <(sort "$tmp/new.csv") >"$tmp/all.csv"
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case $line in *"instructions/request"*) flags=$((flags + 1)) ;; esac
    done < <(awk -F, -v p="$p" -v limit="$LIMIT" '{
            ins = $2 > 0 ? $3 / $2 : 0
            cpu = $6 > 0 ? $9 / $6 : 0
            flag = ins > 1 + limit / 100 ? sprintf("<< instructions/request +%.1f%%", (ins - 1) * 100) : ""
            printf "%-20s %9d %9d %6.3f %10.0f %10.0f %6.2f %9.3f %9.3f %6.2f  %s\n", $1 " -P" p, $2, $3, ins, $4, $7, $7 / $4, $6, $9, cpu, flag
        }' "$tmp/all.csv")
    for side in old new; do
        cut -d, -f1 "$tmp/$side.csv" | sort | comm -23 - <(cut -d, -f1 "$tmp/all.csv" | sort) |
            sed "s/^/MISSING a figure ($side): /"
    done
done
echo
if [ "$flags" -gt 0 ]; then
    echo "$flags line(s) run more than $LIMIT% more instructions per request than the base: look before merging"
    [ "$FAIL_ON_FLAG" = yes ] && exit 1
else
    echo "no line runs more than $LIMIT% more instructions per request than the base"
fi
exit 0
