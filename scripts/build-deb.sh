#!/usr/bin/env bash
# Build a Debian package of Rota from an existing build tree.
#   scripts/build-deb.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, .)
# Writes OUT_DIR/rota_<version>_<arch>.deb and prints its path. It neither builds nor
# writes into BUILD_DIR: it copies BUILD_DIR/rotad, worker/rota-worker, ctl/rotactl
# (stripped copies) into /usr/bin, the systemd units into /lib/systemd/system, the docs
# and example env files into /usr/share/doc/rota. Depends: from dpkg-shlibdeps (package
# dpkg-dev) when it is installed, else the NEEDED libraries of the binaries mapped to
# their packages with dpkg -S (no version constraints then).
# Version: meson's project version + the source commit ("0.1.0+git.d087518"), or
# ROTA_DEB_VERSION. ROTA_DEB_NO_SHLIBDEPS=1 forces the dpkg -S fallback.
# Needs dpkg-deb and python3; strip and readelf (binutils) if present.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
OUT="${2:-.}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

BINS=("rotad:rotad" "worker/rota-worker:rota-worker" "ctl/rotactl:rotactl")
for b in "${BINS[@]}"; do
    if [ ! -x "$BUILD/${b%%:*}" ]; then
        echo "build-deb: $BUILD/${b%%:*} missing: build first (scripts/build.sh)" >&2
        exit 1
    fi
done

# The project version and the source directory, from meson's introspection files.
info_field() { # FILE KEY-PATH (python dict path)
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$1" "$2" 2>/dev/null
}
VERSION="${ROTA_DEB_VERSION:-}"
if [ -z "$VERSION" ]; then
    VERSION="$(info_field "$BUILD/meson-info/intro-projectinfo.json" '["version"]' || true)"
    if [ -z "$VERSION" ]; then
        VERSION="$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" "$ROOT/meson.build" | head -1)"
    fi
    SRC="$(info_field "$BUILD/meson-info/meson-info.json" '["directories"]["source"]' || echo "$ROOT")"
    if sha="$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)"; then
        VERSION="$VERSION+git.$sha"
    fi
fi
ARCH="$(dpkg --print-architecture)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PKG="$WORK/debian/rota"   # the package root (dpkg-shlibdeps' layout)
install -d "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/lib/systemd/system" \
    "$PKG/usr/share/doc/rota/examples"

for b in "${BINS[@]}"; do
    install -m 0755 "$BUILD/${b%%:*}" "$PKG/usr/bin/${b##*:}"
    if command -v strip >/dev/null; then
        strip --strip-unneeded "$PKG/usr/bin/${b##*:}"
    fi
done
install -m 0644 "$ROOT/deploy/systemd/rotad.service" \
    "$ROOT/deploy/systemd/rota-worker.service" "$PKG/lib/systemd/system/"
install -m 0644 "$ROOT/deploy/systemd/rotad.env.example" \
    "$ROOT/deploy/systemd/worker.env.example" "$PKG/usr/share/doc/rota/examples/"
install -m 0644 "$ROOT/README.md" "$ROOT"/docs/*.md "$PKG/usr/share/doc/rota/"

# Depends.
DEPENDS=""
if [ -z "${ROTA_DEB_NO_SHLIBDEPS:-}" ] && command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: rota\n\nPackage: rota\nArchitecture: any\n' > "$WORK/debian/control"
    DEPENDS="$(cd "$WORK" && dpkg-shlibdeps -O -edebian/rota/usr/bin/rotad \
        -edebian/rota/usr/bin/rota-worker -edebian/rota/usr/bin/rotactl \
        | sed -n 's/^shlibs:Depends=//p')"
    rm -f "$WORK/debian/control"
fi
# The fallback: each NEEDED library's file, through ldconfig's cache, to its package.
so_package() { # SONAME
    local path real
    path="$(ldconfig -p | awk -v so="$1" '$1 == so {print $NF; exit}')"
    if [ -z "$path" ]; then
        echo "build-deb: $1 not found" >&2
        return 1
    fi
    real="$(readlink -f "$path")"
    { dpkg -S "$path" 2>/dev/null || dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}"; } \
        | head -1 | cut -d: -f1
}
if [ -z "$DEPENDS" ]; then
    for so in $(for f in "$PKG"/usr/bin/*; do
                    readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
                done | sort -u); do
        so_package "$so"
    done > "$WORK/depends"
    DEPENDS="$(sort -u "$WORK/depends" | paste -sd, | sed 's/,/, /g')"
fi
# adduser: postinst creates the user.
DEPENDS="adduser, $DEPENDS"

SIZE="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
cat > "$PKG/DEBIAN/control" <<EOF
Package: rota
Version: $VERSION
Architecture: $ARCH
Maintainer: Rota developers <rota@localhost>
Installed-Size: $SIZE
Depends: $DEPENDS
Section: admin
Priority: optional
Homepage: https://localhost/rota
Description: distributed job scheduler on raft
 Rota runs jobs (shell, HTTP, cron schedules, workflows) on a cluster of rotad
 nodes that replicate their state with raft; rota-worker processes lease and run
 the jobs; rotactl is the command line client.
 .
 This package installs rotad, rota-worker, rotactl, the systemd units
 rotad.service and rota-worker.service (not enabled: configure /etc/rota/rotad.env
 and /etc/rota/worker.env first, examples in /usr/share/doc/rota/examples) and
 creates the system user rota.
EOF

cat > "$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd rota >/dev/null; then
        adduser --system --group --home /var/lib/rota --no-create-home \
            --gecos "Rota scheduler" rota
    fi
    install -d -o root -g rota -m 0750 /etc/rota
    install -d -o rota -g rota -m 0750 /var/lib/rota
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
cat > "$PKG/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop rota-worker.service rotad.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$PKG/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
# The data (/var/lib/rota), /etc/rota and the user rota are kept, even on purge:
# a node's raft log is not something to delete by accident.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/prerm" "$PKG/DEBIAN/postrm"

DEB="$OUT/rota_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
