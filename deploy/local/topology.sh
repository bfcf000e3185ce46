#!/usr/bin/env bash
# The staging topology of deploy/compose and deploy/k8s as processes on one
# machine: a primary, two replicas sharing the dataset key (an AWS KMS key
# on a KMS-compatible endpoint), and an S3-compatible store for backups.
#
#   deploy/local/topology.sh start    # prints the ports; state in $DIR
#   deploy/local/topology.sh status
#   deploy/local/topology.sh stop     # stops everything it started, by PID
#
# KMS and S3: when RAMPART_TEST_KMS_ENDPOINT and RAMPART_TEST_S3_ENDPOINT
# are set (scripts/test.sh exports them), those are used and left running;
# otherwise scripts/services.sh starts a moto and a Garage of the topology's
# own, under $DIR/services, and `stop` stops them.
#
# Environment: RAMPART_TOPOLOGY_DIR (default target/topology),
# RAMPART_SERVER_BIN (default target/debug/rampart-server),
# RAMPART_TOPOLOGY_PORTS ("P0 P1 P2"; default: free ports).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${RAMPART_TOPOLOGY_DIR:-$ROOT/target/topology}"
BIN="${RAMPART_SERVER_BIN:-$ROOT/target/debug/rampart-server}"
NODES=(primary replica-1 replica-2)

log() { echo "topology: $*" >&2; }

free_ports() { bash "$ROOT/scripts/services.sh" free-ports "$1"; }

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

node_pid() { cat "$DIR/$1/rampart.pid" 2>/dev/null || true; }

ping_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]; }

# kms_create_key ENDPOINT: a new symmetric key's ARN (KMS's JSON API,
# signed with curl, so no AWS CLI or SDK is needed).
kms_create_key() {
    curl -sf -X POST "$1/" \
        --aws-sigv4 "aws:amz:us-east-1:kms" --user "${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}" \
        -H 'Content-Type: application/x-amz-json-1.1' \
        -H 'X-Amz-Target: TrentService.CreateKey' \
        -d '{"Description":"rampart local topology dataset key"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["KeyMetadata"]["Arn"])'
}

start() {
    command -v redis-cli >/dev/null || { log "redis-cli is needed (apt-get install redis-tools)"; exit 1; }
    [ -x "$BIN" ] || { log "$BIN not found: run cargo build --bins first"; exit 1; }
    for n in "${NODES[@]}"; do
        if alive "$(node_pid "$n")"; then
            log "already running ($n, pid $(node_pid "$n")); stop it first"
            exit 1
        fi
    done
    rm -rf "$DIR"
    mkdir -p "$DIR"
    if [ -n "${RAMPART_TEST_KMS_ENDPOINT:-}" ] && [ -n "${RAMPART_TEST_S3_ENDPOINT:-}" ]; then
        echo external >"$DIR/services.mode"
        log "using the KMS endpoint $RAMPART_TEST_KMS_ENDPOINT and the S3 endpoint $RAMPART_TEST_S3_ENDPOINT"
    else
        echo own >"$DIR/services.mode"
        log "starting a KMS endpoint (moto) and an S3 store (Garage) under $DIR/services"
        local env
        env="$(RAMPART_SERVICES_DIR="$DIR/services" bash "$ROOT/scripts/services.sh" start)"
        eval "$env"
    fi
    : "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${RAMPART_TEST_S3_BUCKET:?}" "${RAMPART_TEST_S3_REGION:?}"
    local key ports prefix
    key="$(kms_create_key "$RAMPART_TEST_KMS_ENDPOINT")" || { log "could not create a KMS key at $RAMPART_TEST_KMS_ENDPOINT"; exit 1; }
    if [ -n "${RAMPART_TOPOLOGY_PORTS:-}" ]; then
        ports="$(tr ' ' '\n' <<<"$RAMPART_TOPOLOGY_PORTS")"
    else
        ports="$(free_ports 3)"
    fi
    mapfile -t PORTS <<<"$ports"
    prefix="topology-$(date +%s)-$$/"
    cat >"$DIR/topology.env" <<ENV
PRIMARY_PORT=${PORTS[0]}
REPLICA1_PORT=${PORTS[1]}
REPLICA2_PORT=${PORTS[2]}
KMS_ENDPOINT=$RAMPART_TEST_KMS_ENDPOINT
KMS_KEY_ID=$key
S3_ENDPOINT=$RAMPART_TEST_S3_ENDPOINT
S3_BUCKET=$RAMPART_TEST_S3_BUCKET
S3_REGION=$RAMPART_TEST_S3_REGION
S3_PREFIX=$prefix
ENV
    local i n
    for i in 0 1 2; do
        n="${NODES[$i]}"
        mkdir -p "$DIR/$n"
        chmod 700 "$DIR/$n"
        cat >"$DIR/$n/rampart.conf" <<CONF
bind 127.0.0.1
port ${PORTS[$i]}
dir $DIR/$n
daemonize yes
pidfile $DIR/$n/rampart.pid
logfile $DIR/$n/server.log
encryption-at-rest yes
kms-provider aws
kms-key-id $key
kms-endpoint $RAMPART_TEST_KMS_ENDPOINT
kms-region us-east-1
backup-s3-bucket $RAMPART_TEST_S3_BUCKET
backup-s3-prefix $prefix
backup-s3-endpoint $RAMPART_TEST_S3_ENDPOINT
backup-s3-region $RAMPART_TEST_S3_REGION
backup-s3-path-style yes
allow-core-dumps no
lock-memory yes
CONF
        if [ "$i" != 0 ]; then
            echo "replicaof 127.0.0.1 ${PORTS[0]}" >>"$DIR/$n/rampart.conf"
        fi
        # daemonize yes: the command returns once the daemon has forked; its
        # PID is in the pidfile once it listens.
        AWS_REGION=us-east-1 "$BIN" "$DIR/$n/rampart.conf" </dev/null >>"$DIR/$n/start.out" 2>&1 ||
            { log "$n failed to start; $DIR/$n/server.log:"; tail -n 20 "$DIR/$n/server.log" >&2 || true; exit 1; }
        local ok=no
        for _ in $(seq 1 200); do
            if ping_ok "${PORTS[$i]}" && alive "$(node_pid "$n")"; then
                ok=yes
                break
            fi
            sleep 0.1
        done
        if [ "$ok" != yes ]; then
            log "$n did not answer PING on port ${PORTS[$i]}; $DIR/$n/server.log:"
            tail -n 20 "$DIR/$n/server.log" >&2 || true
            exit 1
        fi
        log "$n on 127.0.0.1:${PORTS[$i]} (pid $(node_pid "$n"))"
    done
    cat "$DIR/topology.env"
}

status() {
    [ -f "$DIR/topology.env" ] || { echo "not started"; return 1; }
    # shellcheck disable=SC1091
    . "$DIR/topology.env"
    local ports=("$PRIMARY_PORT" "$REPLICA1_PORT" "$REPLICA2_PORT") i n pid down=0
    for i in 0 1 2; do
        n="${NODES[$i]}"
        pid="$(node_pid "$n")"
        if alive "$pid"; then
            local role link
            role="$(redis-cli -p "${ports[$i]}" info replication 2>/dev/null | tr -d '\r' | sed -n 's/^role://p')"
            link="$(redis-cli -p "${ports[$i]}" info replication 2>/dev/null | tr -d '\r' | sed -n 's/^master_link_status://p')"
            echo "$n port=${ports[$i]} pid=$pid role=${role:-?}${link:+ master_link_status=$link}"
        else
            echo "$n port=${ports[$i]} down"
            down=1
        fi
    done
    echo "kms $KMS_ENDPOINT key $KMS_KEY_ID"
    echo "s3 $S3_ENDPOINT bucket $S3_BUCKET prefix $S3_PREFIX"
    return "$down"
}

stop() {
    local n pid
    # Replicas first, so none of them logs a lost primary on the way down.
    for n in replica-2 replica-1 primary; do
        pid="$(node_pid "$n")"
        if alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 300); do
                alive "$pid" || break
                sleep 0.1
            done
            if alive "$pid"; then
                log "$n (pid $pid) ignored SIGTERM for 30 s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$DIR/$n/rampart.pid"
    done
    if [ "$(cat "$DIR/services.mode" 2>/dev/null || true)" = own ]; then
        RAMPART_SERVICES_DIR="$DIR/services" bash "$ROOT/scripts/services.sh" stop
    fi
    rm -f "$DIR/services.mode"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
