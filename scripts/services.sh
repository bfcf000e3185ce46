#!/usr/bin/env bash
# Starts the services the kms and backup tests need and prints the env to
# use them.
#
#   eval "$(scripts/services.sh start)"   # installs what is missing, starts
#   cargo test -p rampart-kms
#   scripts/services.sh stop
#   scripts/services.sh free-ports N      # N distinct free loopback ports
#
# KMS: moto[server]==5.2.5 goes in its own venv (.venv/moto): the image's moto
# 5.2.1 breaks S3 multipart, and pip's find-links setting here would keep it,
# hence PIP_FIND_LINKS= for the install.
#
# S3: a single-node Garage 2.5.0 (crates.io `garage`, built with cargo
# install into $CACHE/garage-2.5.0 once per machine: several minutes). Each
# fresh start wipes $RUN/garage, so the bucket starts empty, and makes a new
# rpc secret and access key. Garage only accepts requests signed for its
# s3_region (RAMPART_TEST_S3_REGION), whatever AWS_REGION says. moto's KMS
# accepts any credentials, so the Garage key pair serves both.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAMPART_MOTO_VENV:-$ROOT/.venv/moto}"
RUN="${RAMPART_SERVICES_DIR:-$ROOT/target/services}"
PORT="${RAMPART_MOTO_PORT:-0}"
CACHE="${RAMPART_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart}"
GARAGE_VERSION=2.5.0
GARAGE_ROOT="$CACHE/garage-$GARAGE_VERSION"
GARAGE="$GARAGE_ROOT/bin/garage"
GARAGE_DIR="$RUN/garage"
S3_REGION=garage
S3_BUCKET=rampart-test

install_moto() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null; then
        return
    fi
    echo "installing moto[server]==5.2.5 into $VENV" >&2
    python3 -m venv "$VENV"
    PIP_FIND_LINKS='' "$VENV/bin/pip" install --quiet 'moto[server]==5.2.5' >&2
}

install_garage() {
    if [ -x "$GARAGE" ]; then
        return
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is needed to install garage $GARAGE_VERSION" >&2
        return 1
    fi
    echo "installing garage $GARAGE_VERSION into $GARAGE_ROOT (once per machine, several minutes)" >&2
    mkdir -p "$GARAGE_ROOT"
    local target status=0
    target="$(mktemp -d "${TMPDIR:-/tmp}/garage-build.XXXXXX")"
    CARGO_TARGET_DIR="$target" cargo install garage --version "$GARAGE_VERSION" --locked \
        --root "$GARAGE_ROOT" --no-default-features --features bundled-libs,sqlite >&2 ||
        status=$?
    rm -rf "$target"
    return "$status"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# free_ports N: N distinct free ports, one a line (bound together so they differ).
free_ports() {
    python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
for s in ss:
    print(s.getsockname()[1])
' "$1"
}

hex() {
    python3 -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"
}

running() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_moto() {
    if running "$RUN/moto.pid"; then
        return
    fi
    local port="$PORT"
    [ "$port" = 0 ] && port="$(free_port)"
    nohup "$VENV/bin/python" "$ROOT/scripts/moto_kms.py" -H 127.0.0.1 -p "$port" \
        </dev/null >"$RUN/moto.log" 2>&1 &
    echo $! >"$RUN/moto.pid"
    echo "$port" >"$RUN/moto.port"
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null \
            || python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
}

# start_garage: a single-node Garage whose env lines go to $RUN/garage.env.
start_garage() {
    if running "$RUN/garage.pid" && [ -f "$RUN/garage.env" ]; then
        return
    fi
    stop_garage
    rm -rf "$GARAGE_DIR"
    mkdir -p "$GARAGE_DIR/meta" "$GARAGE_DIR/data"
    local ports s3_port rpc_port rpc_secret key_id secret
    ports="$(free_ports 2)"
    s3_port="$(sed -n 1p <<<"$ports")"
    rpc_port="$(sed -n 2p <<<"$ports")"
    rpc_secret="$(hex 32)"
    key_id="GK$(hex 12)"
    secret="$(hex 32)"
    cat >"$GARAGE_DIR/garage.toml" <<TOML
metadata_dir = "$GARAGE_DIR/meta"
data_dir = "$GARAGE_DIR/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$rpc_secret"

[s3_api]
s3_region = "$S3_REGION"
api_bind_addr = "127.0.0.1:$s3_port"
TOML
    chmod 600 "$GARAGE_DIR/garage.toml"
    GARAGE_DEFAULT_ACCESS_KEY="$key_id" GARAGE_DEFAULT_SECRET_KEY="$secret" \
        GARAGE_DEFAULT_BUCKET="$S3_BUCKET" RUST_LOG="${RUST_LOG:-garage=info}" \
        nohup "$GARAGE" -c "$GARAGE_DIR/garage.toml" server --single-node --default-bucket \
        </dev/null >"$RUN/garage.log" 2>&1 &
    echo $! >"$RUN/garage.pid"
    # The bucket and key exist before the S3 API listens; a signed listing
    # of the bucket checks both.
    local ready=no
    for _ in $(seq 1 300); do
        if ! running "$RUN/garage.pid"; then
            break
        fi
        if curl -sf -o /dev/null --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$key_id:$secret" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
            "http://127.0.0.1:$s3_port/$S3_BUCKET?list-type=2" 2>/dev/null; then
            ready=yes
            break
        fi
        sleep 0.1
    done
    if [ "$ready" != yes ]; then
        echo "garage did not start; the end of $RUN/garage.log:" >&2
        tail -n 30 "$RUN/garage.log" >&2 || true
        stop_garage
        return 1
    fi
    cat >"$RUN/garage.env" <<ENV
export RAMPART_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export RAMPART_TEST_S3_BUCKET=$S3_BUCKET
export RAMPART_TEST_S3_REGION=$S3_REGION
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
ENV
}

start() {
    install_moto
    install_garage
    mkdir -p "$RUN"
    start_moto
    start_garage
    echo "export RAMPART_TEST_KMS_ENDPOINT=http://127.0.0.1:$(cat "$RUN/moto.port")"
    cat "$RUN/garage.env"
    cat <<ENV
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
ENV
}

stop_moto() {
    if [ -f "$RUN/moto.pid" ]; then
        kill "$(cat "$RUN/moto.pid")" 2>/dev/null || true
        rm -f "$RUN/moto.pid" "$RUN/moto.port"
    fi
}

stop_garage() {
    if [ -f "$RUN/garage.pid" ]; then
        local pid
        pid="$(cat "$RUN/garage.pid")"
        if kill "$pid" 2>/dev/null; then
            # Let it finish shutting down before its directory is reused.
            for _ in $(seq 1 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        rm -f "$RUN/garage.pid"
    fi
    rm -f "$RUN/garage.env"
}

stop() {
    stop_moto
    stop_garage
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    install) install_moto && install_garage ;;
    free-ports) free_ports "${2:-1}" ;;
    *) echo "usage: $0 start|stop|install|free-ports N" >&2; exit 2 ;;
esac
