#!/usr/bin/env bash
# Starts the services the kms tests need and prints the env to use them.
#
#   eval "$(scripts/services.sh start)"   # installs moto if missing, starts it
#   cargo test -p rampart-kms
#   scripts/services.sh stop
#
# moto[server]==5.2.5 goes in its own venv (.venv/moto): the image's moto
# 5.2.1 breaks S3 multipart, and pip's find-links setting here would keep it,
# hence PIP_FIND_LINKS= for the install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAMPART_MOTO_VENV:-$ROOT/.venv/moto}"
RUN="${RAMPART_SERVICES_DIR:-$ROOT/target/services}"
PORT="${RAMPART_MOTO_PORT:-0}"

install_moto() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.5")' 2>/dev/null; then
        return
    fi
    echo "installing moto[server]==5.2.5 into $VENV" >&2
    python3 -m venv "$VENV"
    PIP_FIND_LINKS= "$VENV/bin/pip" install --quiet 'moto[server]==5.2.5' >&2
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    install_moto
    mkdir -p "$RUN"
    if [ -f "$RUN/moto.pid" ] && kill -0 "$(cat "$RUN/moto.pid")" 2>/dev/null; then
        port="$(cat "$RUN/moto.port")"
    else
        port="$PORT"
        [ "$port" = 0 ] && port="$(free_port)"
        nohup "$VENV/bin/python" "$ROOT/scripts/moto_kms.py" -H 127.0.0.1 -p "$port" >"$RUN/moto.log" 2>&1 &
        echo $! >"$RUN/moto.pid"
        echo "$port" >"$RUN/moto.port"
        for _ in $(seq 1 100); do
            if curl -sf -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null \
                || python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
    fi
    cat <<ENV
export RAMPART_TEST_KMS_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
ENV
}

stop() {
    if [ -f "$RUN/moto.pid" ]; then
        kill "$(cat "$RUN/moto.pid")" 2>/dev/null || true
        rm -f "$RUN/moto.pid" "$RUN/moto.port"
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    install) install_moto ;;
    *) echo "usage: $0 start|stop|install" >&2; exit 2 ;;
esac
