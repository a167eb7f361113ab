#!/bin/sh
# Build the raftlog base image without a container registry (docs/architecture.md §10):
# debootstrap a minimal Debian with Python 3 into a temp dir and `docker import` it
# under a fixed tag. Skipped while that tag exists, so this runs once per machine.
#
#   deploy/base/build.sh            build raftlog-base:<suite>-py311-v1 if missing
#   FORCE=1 deploy/base/build.sh    rebuild even if the tag exists
#   deploy/base/build.sh --print-tag   print the tag and exit
#
# Must run as root (debootstrap chroots). Installs debootstrap when it is missing.
# Variables: SUITE (default: the host's release, so host-built wheels match the image's
# glibc and CPython), MIRROR (default: the host's Debian mirror), CACHE_DIR (downloaded
# .debs kept between builds), BASE_VERSION (bump to force a new tag).
set -eu

HOST_SUITE=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
SUITE=${SUITE:-${HOST_SUITE:-bookworm}}
PY_MINOR=${PY_MINOR:-3.11}
BASE_VERSION=${BASE_VERSION:-v1}
TAG=${BASE_TAG:-raftlog-base:${SUITE}-py$(echo "$PY_MINOR" | tr -d .)-${BASE_VERSION}}
CACHE_DIR=${CACHE_DIR:-/var/cache/raftlog-debootstrap/${SUITE}}
# Only what the node needs: Python (with venv + its bundled pip wheel, to install our
# wheels offline) and tini (PID 1 that forwards SIGTERM and reaps zombies).
INCLUDE=${INCLUDE:-python3,python3-venv,tini}

if [ "${1:-}" = "--print-tag" ]; then
    echo "$TAG"
    exit 0
fi

log() { echo "build.sh: $*" >&2; }

if [ -z "${FORCE:-}" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG exists; reusing it (FORCE=1 to rebuild)"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    log "must run as root (debootstrap needs it); try: sudo $0"
    exit 1
fi

if [ -n "$HOST_SUITE" ] && [ "$HOST_SUITE" != "$SUITE" ]; then
    log "warning: host is $HOST_SUITE but the image will be $SUITE;" \
        "wheels built on the host may not match the image's glibc/CPython"
fi

if [ -z "${MIRROR:-}" ]; then
    # The mirror the host already uses (deb822 first, then the one-line format).
    MIRROR=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*debian\/*\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    [ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $2 !~ /^\[/ && $3 == "'"$SUITE"'" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

start=$(date +%s)
OLD_ID=$(docker image inspect -f '{{.Id}}' "$TAG" 2>/dev/null || true)
ROOT=$(mktemp -d /var/tmp/raftlog-base.XXXXXX)

unmount_all() {
    # debootstrap mounts proc/sys (and may bind /dev) inside the target: unmount them
    # all, deepest first, before anything is deleted.
    awk -v root="$ROOT" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mnt; do umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; done
}

cleanup() {
    unmount_all
    rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE_DIR"
log "debootstrap $SUITE (minbase + $INCLUDE) from $MIRROR into $ROOT"
debootstrap --variant=minbase --include="$INCLUDE" --components=main \
    --cache-dir="$CACHE_DIR" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
    tail -n 40 "$ROOT.log" >&2
    [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 40 "$ROOT/debootstrap/debootstrap.log" >&2
    rm -f "$ROOT.log"
    exit 1
}
rm -f "$ROOT.log"
unmount_all

chroot "$ROOT" python3 -c "import sys, venv, ensurepip; assert sys.version_info[:2] == tuple(map(int, '$PY_MINOR'.split('.'))), sys.version" || {
    log "the image's python3 is not $PY_MINOR"
    exit 1
}

# Trim what a server never reads (docs, man pages, locales, apt lists and caches).
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
    "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
    "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log "$ROOT"/debootstrap
find "$ROOT"/var/log -type f -exec truncate -s 0 {} +
: >"$ROOT"/etc/hostname 2>/dev/null || true

log "importing as $TAG"
tar --numeric-owner -C "$ROOT" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["/bin/bash"]' \
    --message "raftlog base: debootstrap $SUITE minbase + $INCLUDE" \
    - "$TAG" >/dev/null

# A forced rebuild leaves the previous image untagged: remove it unless still in use.
[ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(docker image inspect -f '{{.Id}}' "$TAG")" ] &&
    docker rmi "$OLD_ID" >/dev/null 2>&1 || true

log "built $TAG in $(( $(date +%s) - start ))s ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
