#!/usr/bin/env bash
# Install the Debian 12 packages Rota needs to build, run and test.
# Quick and silent when everything is already there.
# --build: only what scripts/build.sh needs (compiler, meson, ninja, pkg-config, the -dev
# libraries); the Dockerfile's build stage uses it. No node/npm, no test tools.
set -euo pipefail

MODE=all
case "${1:-}" in
    "") ;;
    --build) MODE=build ;;
    *) echo "usage: $0 [--build]" >&2; exit 2 ;;
esac

# python3: scripts/embed.py runs at build time (meson needs it anyway);
# libcmocka-dev: the unit tests (optional in meson.build, so not in --build);
# clang and libclang-rt-14-dev: libFuzzer and the sanitizers (scripts/fuzz.sh);
# python3-yaml, dpkg-dev, systemd: the packaging tests (compose, .deb, units);
# prometheus: promtool for tests/integration/test_metrics.py;
# chromium: the dashboard's browser tests (tests/browser, with node and npm);
# gnuplot-nox: bench/compare.sh's charts.
BUILD_PKGS=(build-essential pkg-config meson ninja-build python3
      libraft-dev libuv1-dev liblmdb-dev libh2o-dev libssl-dev liblz4-dev
      libjansson-dev libcurl4-openssl-dev libyaml-dev libicu-dev)
TEST_PKGS=(clang-format clang-tidy clang libclang-rt-14-dev libcmocka-dev
      python3-pytest curl iproute2 iptables openssl
      python3-yaml dpkg-dev systemd prometheus chromium gnuplot-nox)
PKGS=("${BUILD_PKGS[@]}")
if [ "$MODE" = all ]; then
    PKGS+=("${TEST_PKGS[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
# node and npm may come from elsewhere (nodesource's nodejs has npm inside):
# Debian's only when there is none.
if [ "$MODE" = all ] && ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs)
fi
if [ "$MODE" = all ] && ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi
if [ ${#missing[@]} -ne 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "deps: done"
fi
if [ "$MODE" = build ]; then
    exit 0
fi
# The TypeScript client (clients/node) and the browser tests need Node.js 18.17
# or newer (Debian 12 has 18.19; undici 6 and puppeteer-core 24 need 18.17, 18).
node_ver=$(node -p 'process.versions.node' 2>/dev/null || echo 0)
node_major=${node_ver%%.*}
node_minor=0
case $node_ver in
    *.*) node_minor=${node_ver#*.} && node_minor=${node_minor%%.*} ;;
esac
[[ $node_major =~ ^[0-9]+$ ]] || node_major=0
[[ $node_minor =~ ^[0-9]+$ ]] || node_minor=0
if [ "$node_major" -lt 18 ] || { [ "$node_major" -eq 18 ] && [ "$node_minor" -lt 17 ]; }; then
    echo "deps: clients/node needs Node.js 18.17 or newer (node: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi
