#!/usr/bin/env bash
# Envelope encrypt/decrypt throughput beside raw AES-256-GCM (ring and
# RustCrypto aes-gcm), one core, 1 GiB per run, best of 3
# (override: bench/envelope.sh MiB RUNS).
# Prints figures; it is not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-1024}"
cargo build --release -p rampart-kms --example envelope_bench
BIN=target/release/examples/envelope_bench
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
if command -v taskset >/dev/null; then
    taskset -c 0 "$BIN" "$MIB" "${2:-3}"
else
    "$BIN" "$MIB" "${2:-3}"
fi
