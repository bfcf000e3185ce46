# Shared by the bench/ scripts: ports, CPU readings, one redis-benchmark
# line with the server's CPU per request, and medians over rounds.
# Source it; it defines functions only.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME BINARY [ARG...]: starts a server on a free port with no
# persistence, in $tmp/NAME, logging to $tmp/NAME.log, and waits until it
# answers; sets PORT_<NAME> and PID_<NAME> and adds the PID to pids (the
# caller defines tmp and pids and kills them on exit)
start_server() {
    local name=$1 bin=$2 port
    shift 2
    port=$(free_port)
    mkdir -p "$tmp/$name"
    $SERVER_CPU "$bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    printf -v "PID_$name" %s "$!"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    printf -v "PORT_$name" %s "$port"
}

# run_line PORT PID PIPELINE NAME CMD... -> "name,rps,cpu_us_per_request": one
# redis-benchmark run of CMD (CLIENTS clients, REQUESTS requests)
run_line() {
    local port=$1 pid=$2 pipeline=$3 name=$4 before after csv
    shift 4
    csv=$(mktemp)
    before=$(cpu_ns "$pid")
    $CLIENT_CPU redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -P "$pipeline" --csv "$@" 2>/dev/null >"$csv"
    after=$(cpu_ns "$pid")
    awk -F'","' -v ns=$((after - before)) -v n="$REQUESTS" -v name="$name" \
        'END { if (NR < 2) exit; gsub(/"/, ""); split($0, f, ","); printf "%s,%s,%.3f\n", name, f[2], ns / 1000 / n }' "$csv"
    rm -f "$csv"
}

# turns ROUNDS FN [ARG...]: runs `FN SERVER PORT PID ROUND [ARG...]` for
# redis then rampart (started as NAME redis and rampart), round by round,
# so a noisy spell of a shared machine falls on both servers rather than on
# one server's rounds
turns() {
    local rounds=$1 fn=$2 r server port_var pid_var
    shift 2
    for r in $(seq "$rounds"); do
        for server in redis rampart; do
            port_var=PORT_$server pid_var=PID_$server
            "$fn" "$server" "${!port_var}" "${!pid_var}" "$r" "$@"
        done
    done
}

# cpu_ns PID -> nanoseconds the process's threads have run on a CPU
# (schedstat: exact, where /proc/PID/stat's user + system counts 10 ms
# ticks, too coarse for a short pipelined run)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }

# redis-benchmark's default suite, test by test
SUITE=ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset

# PIN=yes puts the servers on the last CPU and redis-benchmark on the
# others (taskset), so the server's own ceiling shows; BENCH_THREADS=N runs
# redis-benchmark with --threads N.
SERVER_CPU=
CLIENT_CPU=
if [ "${PIN:-no}" = yes ]; then
    last=$(($(nproc) - 1))
    SERVER_CPU="taskset -c $last"
    CLIENT_CPU="taskset -c 0-$((last > 0 ? last - 1 : 0))"
fi

# bench_tests PORT PID PIPELINE TESTS -> lines "test,rps,p99,cpu_us_per_request",
# one redis-benchmark run per test (CLIENTS clients, REQUESTS requests) so
# each gets its own CPU reading of the server PID (an LRANGE run's reading
# includes the LPUSHes that fill its list; its line is the LRANGE one, the
# last redis-benchmark prints)
bench_tests() {
    local port=$1 pid=$2 pipeline=$3 tests=$4 t before after csv
    csv=$(mktemp)
    for t in ${tests//,/ }; do
        before=$(cpu_ns "$pid")
        $CLIENT_CPU redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -P "$pipeline" -t "$t" \
            ${BENCH_THREADS:+--threads "$BENCH_THREADS"} --csv 2>/dev/null >"$csv"
        after=$(cpu_ns "$pid")
        awk -F'","' -v ns=$((after - before)) -v n="$REQUESTS" \
            'END { if (NR < 2) exit; gsub(/"/, ""); split($0, f, ","); printf "%s,%s,%s,%.3f\n", f[1], f[2], f[7], ns / 1000 / n }' "$csv"
    done
    rm -f "$csv"
}

# median FILE... -> "test,rps,p99,cpu" with the median of each over the files
median() {
    cat "$@" | sort -t, -k1,1 | awk -F, '
        function med(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        function flush() { if (name != "") print name "," med(rps, n) "," med(lat, n) "," med(cpu, n) }
        $1 != name { flush(); name = $1; n = 0 }
        { n++; rps[n] = $2; lat[n] = $3; cpu[n] = $4 }
        END { flush() }'
}

# bench_init [TOOL...]: checks that redis-server, redis-benchmark and each
# TOOL are installed, builds the release server ($RAMPART, unless RAMPART
# already names a binary built elsewhere), and makes $tmp and the pids
# list, both cleaned up on exit
bench_init() {
    local tool
    for tool in redis-server redis-benchmark "$@"; do
        command -v "$tool" >/dev/null || {
            echo "needs $tool (apt-get install redis-server redis-tools $*)" >&2
            exit 1
        }
    done
    if [ -z "${RAMPART:-}" ]; then
        cargo build --release --bin rampart-server >&2
        RAMPART=${CARGO_TARGET_DIR:-target}/release/rampart-server
    fi
    tmp=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
