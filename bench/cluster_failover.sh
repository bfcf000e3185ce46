#!/usr/bin/env bash
# Cluster failover time, Rampart and redis-server 7.0 side by side: for
# each, six nodes made into 3 primaries x 1 replica by `redis-cli --cluster
# create --cluster-replicas 1` (cluster-node-timeout NODE_TIMEOUT ms), a
# few thousand keys written, then one primary killed with kill -9. Measures
# the time from the kill until every live node says cluster_state:ok and
# sees the dead primary's replica as a master serving slots. Prints each
# round and the medians with the Rampart / Redis ratio. A benchmark, not a
# test: it reports, it asserts nothing.
#
#   bash bench/cluster_failover.sh
#   NODE_TIMEOUT=1000 ROUNDS=3 bash bench/cluster_failover.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh

NODE_TIMEOUT=${NODE_TIMEOUT:-2000}
ROUNDS=${ROUNDS:-1}
KEYS=${KEYS:-5000}

bench_init redis-cli

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# state_ok PORT -> success when the node says cluster_state:ok
state_ok() { redis-cli -p "$1" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

# sees_master PORT ID -> success when the node lists ID as a master with slots
sees_master() {
    redis-cli -p "$1" cluster nodes 2>/dev/null |
        awk -v id="$2" '$1 == id && $3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { found = 1 } END { exit !found }'
}

# one KIND ROUND -> prints the milliseconds from kill -9 to a healthy cluster
one() {
    local kind=$1 round=$2 bin ports=() i name port extra=()
    [ "$kind" = redis ] && bin=redis-server || bin=$RAMPART
    [ "$kind" = rampart ] && extra=(--kms-key-file "$tmp/keyring-$round.json")
    for i in 0 1 2 3 4 5; do
        name="${kind}_${round}_$i"
        start_server "$name" "$bin" --cluster-enabled yes --cluster-port "$(free_port)" \
            --cluster-node-timeout "$NODE_TIMEOUT" "${extra[@]}"
        port_var="PORT_$name"
        ports+=("${!port_var}")
    done
    local addrs=()
    for port in "${ports[@]}"; do addrs+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$tmp/create-$kind-$round.log" 2>&1
    # Wait for three replicas with their links up, and every node ok.
    for _ in $(seq 600); do
        local ok=1 slaves
        slaves=$(redis-cli -p "${ports[0]}" cluster nodes | grep -c slave || true)
        [ "$slaves" -eq 3 ] || ok=0
        for port in "${ports[@]}"; do
            state_ok "$port" || ok=0
            if redis-cli -p "$port" info replication | grep -q role:slave; then
                redis-cli -p "$port" info replication | grep -q master_link_status:up || ok=0
            fi
        done
        [ "$ok" = 1 ] && break
        sleep 0.1
    done
    redis-cli -p "${ports[0]}" cluster nodes >"$tmp/nodes-$kind-$round.txt"
    # Some data, through redis-cli -c so each key reaches its shard.
    for i in $(seq "$KEYS"); do echo "SET key:$i $i"; done | redis-cli -c -p "${ports[0]}" >/dev/null
    # The victim: the primary of the first replica line; its replica the heir.
    local heir victim_id victim_port victim_pid
    read -r heir victim_id < <(awk '$3 ~ /slave/ { print $1, $4; exit }' "$tmp/nodes-$kind-$round.txt")
    victim_port=$(awk -v id="$victim_id" '$1 == id { split($2, a, "[:@]"); print a[2] }' "$tmp/nodes-$kind-$round.txt")
    for i in 0 1 2 3 4 5; do
        if [ "${ports[$i]}" = "$victim_port" ]; then
            pid_var="PID_${kind}_${round}_$i"
            victim_pid=${!pid_var}
        fi
    done
    local t0 t1
    t0=$(now_ms)
    kill -9 "$victim_pid"
    while :; do
        local done_=1
        for port in "${ports[@]}"; do
            [ "$port" = "$victim_port" ] && continue
            state_ok "$port" && sees_master "$port" "$heir" || { done_=0; break; }
        done
        [ "$done_" = 1 ] && break
        [ $(($(now_ms) - t0)) -gt 120000 ] && { echo "timeout" >&2; break; }
        sleep 0.02
    done
    t1=$(now_ms)
    # Stop this round's nodes before the next.
    for i in 0 1 2 3 4 5; do
        pid_var="PID_${kind}_${round}_$i"
        kill "${!pid_var}" 2>/dev/null || true
    done
    echo $((t1 - t0))
}

med() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

r=() a=()
printf '%-8s %14s %14s\n' round redis_ms rampart_ms
for round in $(seq "$ROUNDS"); do
    r+=("$(one redis "$round")")
    a+=("$(one rampart "$round")")
    printf '%-8s %14s %14s\n' "$round" "${r[-1]}" "${a[-1]}"
done
rm=$(printf '%s\n' "${r[@]}" | med)
am=$(printf '%s\n' "${a[@]}" | med)
printf '%-8s %14s %14s\n' median "$rm" "$am"
awk -v r="$rm" -v a="$am" -v t="$NODE_TIMEOUT" 'BEGIN {
    printf "kill -9 of a primary to cluster ok with its replica promoted (node timeout %d ms): redis %d ms, rampart %d ms, rampart/redis %.2f\n", t, r, a, (r > 0 ? a / r : 0) }'
