#!/usr/bin/env bash
# Scripting throughput, Rampart and redis-server 7.0 side by side:
#   - EVALSHA of a script making three redis.call (INCR, SET, GET),
#     loaded first with SCRIPT LOAD;
#   - FCALL of the same body as a function (where the server has
#     FUNCTION LOAD; skipped otherwise);
# at -P 1 and -P 16, with the server's CPU per request (ratio = Rampart /
# Redis for requests per second). A benchmark, not a test: it reports,
# it asserts nothing.
#
#   bash bench/scripting.sh
#   REQUESTS=200000 CLIENTS=50 ROUNDS=3 bash bench/scripting.sh
#   RAMPART=target/debug/rampart-server bash bench/scripting.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}

# RAMPART=path/to/rampart-server skips the release build (to measure a
# binary built elsewhere).
bench_init

BODY="redis.call('incr', KEYS[1]) redis.call('set', KEYS[2], ARGV[1]) return redis.call('get', KEYS[2])"
LIB="#!lua name=benchlib
redis.register_function('three', function(keys, args) redis.call('incr', keys[1]) redis.call('set', keys[2], args[1]) return redis.call('get', keys[2]) end)"

start_server redis redis-server
start_server rampart "$RAMPART"


# script_round SERVER PORT PID ROUND PIPELINE: one EVALSHA and one FCALL line
script_round() {
    local server=$1 port=$2 pid=$3 P=$5 sha
    sha=$(redis-cli -p "$port" script load "$BODY")
    run_line "$port" "$pid" "$P" evalsha evalsha "$sha" 2 "{k}n" "{k}s" value >>"$tmp/$server.$P"
    if redis-cli -p "$port" function load replace "$LIB" >/dev/null 2>&1 &&
        [ "$(redis-cli -p "$port" fcall three 2 a b c)" = c ]; then
        run_line "$port" "$pid" "$P" fcall fcall three 2 "{k}n" "{k}s" value >>"$tmp/$server.$P"
    fi
}

printf '\n%-18s %4s %12s %12s %7s %14s %14s\n' test P redis_rps rampart_rps ratio redis_us/req rampart_us/req
for P in 1 16; do
    : >"$tmp/redis.$P"
    : >"$tmp/rampart.$P"
    turns "$ROUNDS" script_round "$P"
    for t in evalsha fcall; do
        r=$(grep "^$t," "$tmp/redis.$P" | sort -t, -k2 -n | awk -F, '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }')
        m=$(grep "^$t," "$tmp/rampart.$P" | sort -t, -k2 -n | awk -F, '{ a[NR] = $0 } END { if (NR) print a[int((NR + 1) / 2)] }')
        if [ -z "$r" ] || [ -z "$m" ]; then
            printf '%-18s %4s %s\n' "$t" "$P" "(not run: FUNCTION LOAD missing on one side)"
            continue
        fi
        IFS=, read -r _ rr rc <<<"$r"
        IFS=, read -r _ mr mc <<<"$m"
        printf '%-18s %4s %12s %12s %7.2f %14s %14s\n' "$t" "$P" "$rr" "$mr" "$(echo "$mr / $rr" | bc -l)" "$rc" "$mc"
    done
done
