#!/usr/bin/env bash
# Check docker/Dockerfile without a Docker engine: run its two stages in clean Debian 12
# chroots made with mmdebstrap.
#   1. build stage: a `--variant=minbase bookworm` tree (what debian:bookworm is), the
#      repository's tracked files (git ls-files, no build trees) copied to /src, then the
#      stage's WORKDIR and RUN lines (scripts/deps.sh --build && scripts/build.sh), niced.
#   2. runtime stage: a second clean minbase tree (debian:bookworm-slim), its RUN lines
#      (apt-get install, groupadd/useradd/install -d), its COPY --from=build lines, then
#      `ldd` (nothing "not found") and `--help` of each copied binary, run as the stage's
#      USER (chroot --userspec).
# The RUN/COPY/WORKDIR/USER lines are read from the Dockerfile, not repeated here.
# Needs root (mmdebstrap, chroot, mount), mmdebstrap (apt-get install mmdebstrap) and the
# network (Debian mirrors). It takes minutes, so it is NOT part of .ci/run: run it by hand
# after changing the Dockerfile, scripts/deps.sh or the libraries Rota links.
# Prints PASS or FAIL last; exit status 0 only on PASS. The trees (in /tmp) are removed on
# exit, and every mount is undone first; ROTA_DOCKER_CHECK_KEEP=1 keeps the trees.
# ROTA_DOCKERFILE=path checks another Dockerfile (e.g. a broken copy, to see it FAIL).
# Untested by this: a Docker engine itself, `docker build` caching, compose networking.
# Run on 2026-12-02: PASS in about 5 minutes (rotad, rota-worker, rotactl --help as rota,
# no library missing); with libjansson4 dropped from the runtime apt-get line: FAIL.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE=${ROTA_DOCKERFILE:-docker/Dockerfile}
SUITE=bookworm

if [ "$(id -u)" -ne 0 ]; then
    echo "docker-check: needs root (mmdebstrap, chroot, mount)" >&2
    exit 2
fi
command -v mmdebstrap >/dev/null || { echo "docker-check: apt-get install mmdebstrap" >&2; exit 2; }

WORK=$(mktemp -d /tmp/rota-docker-check.XXXXXX)
MOUNTS=()
RESULT=FAIL

cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" || true
    done
    # Never rm -rf a tree with something still mounted in it.
    if findmnt -rn -o TARGET | grep -q "^$WORK/"; then
        echo "docker-check: mounts remain under $WORK, not removing it:" >&2
        findmnt -rn -o TARGET | grep "^$WORK/" >&2
    elif [ "${ROTA_DOCKER_CHECK_KEEP:-}" = 1 ]; then
        echo "docker-check: trees kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    echo "docker-check: $RESULT"
}
trap cleanup EXIT

fail() {
    echo "docker-check: $*" >&2
    exit 1
}

# The instructions of stage $1 (0-based), one a line, continuation lines joined, comments
# dropped: "FROM image", "RUN cmd", "COPY ...", "WORKDIR dir", "USER name", ...
stage() {
    python3 - "$DOCKERFILE" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
text = re.sub(r"\\\n", " ", "\n".join(lines))
stages, cur = [], None
for line in text.splitlines():
    line = " ".join(line.split())
    if not line:
        continue
    if line.upper().startswith("FROM "):
        cur = []
        stages.append(cur)
    cur.append(line)
for line in stages[int(sys.argv[2])]:
    print(line)
PY
}

mount_in() { # $1: tree
    local t=$1
    mount -t proc proc "$t/proc"
    MOUNTS+=("$t/proc")
    mount -t sysfs sys "$t/sys"
    MOUNTS+=("$t/sys")
    mount --bind /dev "$t/dev"
    MOUNTS+=("$t/dev")
    # Private, so that the devpts below never propagates to this machine's /dev/pts;
    # a new devpts instance: apt wants a pty for its log.
    mount --make-private "$t/dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$t/dev/pts"
    MOUNTS+=("$t/dev/pts")
}

umount_in() { # $1: tree
    local m keep=()
    for m in "${MOUNTS[@]}"; do
        case "$m" in "$1"/*) ;; *) keep+=("$m") ;; esac
    done
    umount "$1/dev/pts" "$1/dev" "$1/sys" "$1/proc"
    MOUNTS=("${keep[@]+"${keep[@]}"}")
}

# A clean tree for a FROM line: debian:bookworm and debian:bookworm-slim are both minbase
# (slim drops documentation, which does not matter here).
make_tree() { # $1: tree, $2: image
    case "$2" in
        "debian:$SUITE" | "debian:$SUITE-slim") ;;
        *) fail "FROM $2: only debian:${SUITE} and debian:${SUITE}-slim are handled" ;;
    esac
    echo "docker-check: mmdebstrap --variant=minbase $SUITE $1 (for $2)"
    mmdebstrap --quiet --variant=minbase "$SUITE" "$1" </dev/null >"$1.log" 2>&1 \
        || { tail -20 "$1.log" >&2; fail "mmdebstrap failed (log: $1.log)"; }
    cp /etc/resolv.conf "$1/etc/resolv.conf"
}

# Run one shell command as RUN would: /bin/sh -c in the WORKDIR, as the current USER.
run_in() { # $1: tree, $2: workdir, $3: user, $4: command
    echo "docker-check: RUN $4"
    nice -n 10 chroot --userspec="$3" "$1" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        DEBIAN_FRONTEND=noninteractive /bin/sh -c "cd '$2' && $4" </dev/null
}

# Play stage $1 in tree $2; $3: the build stage's tree (for COPY --from), or "".
play() {
    local n=$1 t=$2 from=$3 workdir=/ user=root:root line args src dst
    while IFS= read -r line; do
        args=${line#* }
        case "$line" in
            FROM\ *) make_tree "$t" "${args%% *}"; mount_in "$t" ;;
            WORKDIR\ *) workdir=$args; mkdir -p "$t$workdir" ;;
            USER\ *) # numeric, from the tree's own /etc/passwd (not this machine's)
                user=$(chroot "$t" id -u "$args"):$(chroot "$t" id -g "$args") \
                    || fail "USER $args: no such user in the tree" ;;
            RUN\ *) run_in "$t" "$workdir" "$user" "$args" || fail "RUN failed: $args" ;;
            COPY\ --from=*)
                read -r _ src dst <<<"$args"
                [ -n "$from" ] || fail "COPY --from with no build tree: $line"
                echo "docker-check: COPY $src -> $dst"
                install -D -m 0755 "$from$src" "$t$dst" || fail "$line" ;;
            COPY\ .\ *)
                dst=${args#. }
                echo "docker-check: COPY . $dst (git ls-files)"
                mkdir -p "$t$dst"
                git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$t$dst" ;;
            COPY\ * | ADD\ *) fail "not handled: $line" ;;
            *) echo "docker-check: skipped (no effect on the check): $line" ;;
        esac
    done < <(stage "$n")
    echo "$user $workdir" >"$t.user"
}

BUILD_TREE=$WORK/build
RUN_TREE=$WORK/runtime
NSTAGES=$(grep -ci '^FROM ' "$DOCKERFILE")
[ "$NSTAGES" -eq 2 ] || fail "expected 2 stages in $DOCKERFILE, found $NSTAGES"

echo "docker-check: build stage"
play 0 "$BUILD_TREE" ""
umount_in "$BUILD_TREE"

echo "docker-check: runtime stage"
play 1 "$RUN_TREE" "$BUILD_TREE"
read -r user workdir <"$RUN_TREE.user"
[ "$user" != root:root ] || fail "the runtime stage has no USER"

bins=$(stage 1 | sed -n 's/^COPY --from=[^ ]* [^ ]* \(.*\)$/\1/p')
[ "$(echo "$bins" | wc -w)" -eq 3 ] || fail "expected 3 binaries copied, got: $bins"
for b in $bins; do
    libs=$(chroot "$RUN_TREE" ldd "$b") || fail "ldd $b failed"
    if echo "$libs" | grep -q "not found"; then
        echo "$libs" | grep "not found" >&2
        fail "$b: libraries not found in the runtime tree"
    fi
    echo "docker-check: ldd $b: $(echo "$libs" | wc -l) libraries, none missing"
    out=$(chroot --userspec="$user" "$RUN_TREE" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
        HOME="$workdir" /bin/sh -c "cd '$workdir' && $b --help" </dev/null 2>&1) \
        || { echo "$out" >&2; fail "$b --help failed as $user"; }
    echo "docker-check: $b --help as $(stage 1 | sed -n 's/^USER //p' | tail -1) ($user) in $workdir: $(echo "$out" | head -1)"
done
umount_in "$RUN_TREE"
RESULT=PASS
