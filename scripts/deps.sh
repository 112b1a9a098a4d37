#!/usr/bin/env bash
# Install the Debian 12 packages Rota needs to build, run and test.
# Quick and silent when everything is already there.
set -euo pipefail

# clang and libclang-rt-14-dev: libFuzzer and the sanitizers (scripts/fuzz.sh);
# python3-yaml, dpkg-dev, systemd: the packaging tests (compose, .deb, units);
# prometheus: promtool for tests/integration/test_metrics.py;
# chromium: the dashboard's browser tests (tests/browser, with node and npm).
PKGS=(build-essential pkg-config meson ninja-build clang-format clang-tidy
      clang libclang-rt-14-dev
      libraft-dev libuv1-dev liblmdb-dev libh2o-dev libssl-dev liblz4-dev
      libjansson-dev libcurl4-openssl-dev libyaml-dev libcmocka-dev libicu-dev
      python3 python3-pytest curl iproute2 iptables openssl
      python3-yaml dpkg-dev systemd prometheus chromium)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
# node and npm may come from elsewhere (nodesource's nodejs has npm inside):
# Debian's npm only when there is none.
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "deps: done"
