#!/usr/bin/env bash
# TLS, Rampart and redis-server 7.0 side by side in one run: both serve a
# tls-port with the same certificates (made here with openssl: a CA and a
# server certificate for 127.0.0.1, which redis-benchmark also presents as
# its client certificate), and `redis-benchmark --tls` runs SET and GET at
# -P 1 and -P 16 against each, the servers taking turns. Prints requests
# per second and the server's CPU time per request (schedstat, all
# threads), medians of ROUNDS rounds, with ratios Rampart / Redis.
# A benchmark, not a test: it reports, it asserts nothing.
#
#   bash bench/tls.sh
#   ROUNDS=5 REQUESTS=200000 bash bench/tls.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
ROUNDS=${ROUNDS:-3}
TESTS=${TESTS:-set,get}

bench_init openssl

# Certificates: v3 with a subjectAltName (rustls, through webpki, takes no
# v1 certificate) and both usages, so one certificate serves both sides.
(
    cd "$tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
        -subj /CN=bench-ca >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
        -subj /CN=localhost >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.crt >/dev/null 2>&1
)
TLS_ARGS=(--tls-cert-file "$tmp/server.crt" --tls-key-file "$tmp/server.key"
    --tls-ca-cert-file "$tmp/ca.crt")
CLI_TLS=(--tls --cacert "$tmp/ca.crt" --cert "$tmp/server.crt" --key "$tmp/server.key")

TLS_redis=$(free_port)
start_server redis redis-server --tls-port "$TLS_redis" "${TLS_ARGS[@]}"
TLS_rampart=$(free_port)
start_server rampart "$RAMPART" --tls-port "$TLS_rampart" "${TLS_ARGS[@]}"
for s in redis rampart; do
    port_var="TLS_$s"
    redis-cli -p "${!port_var}" "${CLI_TLS[@]}" ping >/dev/null || {
        echo "$s does not answer on its tls-port; its log:" >&2
        cat "$tmp/$s.log" >&2
        exit 1
    }
done

echo "redis-benchmark --tls, $CLIENTS clients, $REQUESTS requests a line (5x pipelined), median of $ROUNDS rounds"
echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
printf '\n%-12s %11s %11s %6s %9s %9s %6s\n' line redis_rps ramp_rps ratio redis_us ramp_us ratio
for p in 1 16; do
    n=$((REQUESTS * (p > 1 ? 5 : 1)))
    for r in $(seq "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then order="redis rampart"; else order="rampart redis"; fi
        for s in $order; do
            port_var="TLS_$s" pid_var="PID_$s"
            : >"$tmp/$s.$r.csv"
            for t in ${TESTS//,/ }; do
                before=$(cpu_ns "${!pid_var}")
                $CLIENT_CPU redis-benchmark -p "${!port_var}" "${CLI_TLS[@]}" -c "$CLIENTS" -n "$n" \
                    -P "$p" -t "$t" --csv 2>/dev/null >"$tmp/out.csv"
                after=$(cpu_ns "${!pid_var}")
                awk -F'","' -v ns=$((after - before)) -v n="$n" \
                    'END { if (NR < 2) exit; gsub(/"/, ""); split($0, f, ","); printf "%s,%s,%s,%.3f\n", f[1], f[2], f[7], ns / 1000 / n }' \
                    "$tmp/out.csv" >>"$tmp/$s.$r.csv"
            done
        done
    done
    median "$tmp"/redis.*.csv >"$tmp/redis.csv"
    median "$tmp"/rampart.*.csv >"$tmp/rampart.csv"
    rm -f "$tmp"/redis.*.csv "$tmp"/rampart.*.csv
    join -t, <(sort "$tmp/redis.csv") <(sort "$tmp/rampart.csv") |
        awk -F, -v p="$p" '{
            rps = $2 > 0 ? $5 / $2 : 0
            cpu = $4 > 0 ? $7 / $4 : 0
            printf "%-12s %11.0f %11.0f %6.2f %9.3f %9.3f %6.2f\n", $1 " -P" p, $2, $5, rps, $4, $7, cpu
        }'
done
echo
echo "ratio: Rampart / Redis (rps: higher is faster; us: server CPU per request, lower is cheaper)"
