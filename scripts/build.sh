#!/usr/bin/env bash
# Build Rota into build/ (and, with --asan, an ASan+UBSan tree in build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null
fi
ninja -C build
if [ "${1:-}" = "--asan" ]; then
    if [ ! -f build-asan/build.ninja ]; then
        meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
    fi
    ninja -C build-asan
fi
