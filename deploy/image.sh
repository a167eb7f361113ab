#!/bin/sh
# Build the raftlog image (raftlog:dev and raftlog:<version>) with no registry and no
# network inside the build (docs/architecture.md §10):
#   1. the base image (deploy/base/build.sh: debootstrap + docker import, once per tag);
#   2. the dependencies' wheels, built on the host with the host's CPython (same minor
#      and glibc as the base), kept in build/image/deps/ and rebuilt only when the
#      dependency list or the versions pinned by .venv change;
#   3. the raftlog wheel from the work tree (every time: it is the fast part);
#   4. `docker build` from build/image/ (deps and app in separate layers, so a code-only
#      change reuses the dependency layer).
#
# Variables: PY (host python with pip, default .venv/bin/python), IMAGE (default raftlog),
# SKIP_BASE=1 (do not call the base build; fail if the base is missing).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
IMAGE=${IMAGE:-raftlog}
CTX=$ROOT/build/image
log() { echo "image.sh: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
t0=$(now)

BASE_TAG=$(sh deploy/base/build.sh --print-tag)
if [ -z "${SKIP_BASE:-}" ]; then
    sh deploy/base/build.sh
elif ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "base image $BASE_TAG is missing: run make image-base"
    exit 1
fi

# The image's CPython must be the host's minor version: the wheels are the host's.
host_py=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$BASE_TAG" in
    *-py$(echo "$host_py" | tr -d .)-*) ;;
    *) log "host python is $host_py but the base image is $BASE_TAG"; exit 1 ;;
esac

mkdir -p "$CTX/deps" "$CTX/app"
# One build at a time on this work tree (others may run `make image` too).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/build/.image.lock"
    flock 9
fi

# --- 2. dependency wheels -------------------------------------------------------------
# requirements.txt: the project's runtime dependencies, each pinned to the version the
# host's .venv runs (what the tests ran against); falls back to the spec when absent.
"$PY" - "$CTX/requirements.new" <<'EOF'
import re, sys, tomllib
from importlib import metadata
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
wanted, seen = [], set()

def name_of(req):
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]

def norm(n):
    return re.sub(r"[-_.]+", "-", n).lower()

# The whole runtime closure, pinned as installed here.
stack = [name_of(d) for d in deps]
while stack:
    n = stack.pop()
    if norm(n) in seen:
        continue
    seen.add(norm(n))
    try:
        dist = metadata.distribution(n)
    except metadata.PackageNotFoundError:
        wanted.append(next(d for d in deps if norm(name_of(d)) == norm(n)))
        continue
    wanted.append(f"{dist.metadata['Name']}=={dist.version}")
    for r in dist.requires or []:
        if "extra ==" in r:
            continue
        if ";" in r:
            try:
                from packaging.markers import Marker
            except ImportError:
                from pip._vendor.packaging.markers import Marker
            if not Marker(r.split(";", 1)[1]).evaluate():
                continue
        stack.append(name_of(r))
open(sys.argv[1], "w").write("\n".join(sorted(wanted, key=str.lower)) + "\n")
EOF
if [ -f "$CTX/deps/requirements.txt" ] && cmp -s "$CTX/requirements.new" "$CTX/deps/requirements.txt" \
    && [ -f "$CTX/deps/.complete" ]; then
    rm -f "$CTX/requirements.new"
    log "dependency wheels up to date ($(ls "$CTX"/deps/*.whl | wc -l) wheels)"
else
    t=$(now)
    rm -rf "$CTX/deps"
    mkdir -p "$CTX/deps"
    mv "$CTX/requirements.new" "$CTX/deps/requirements.txt"
    "$PY" -m pip wheel --quiet --disable-pip-version-check --only-binary=:all: \
        -w "$CTX/deps" -r "$CTX/deps/requirements.txt" \
        || "$PY" -m pip wheel --quiet --disable-pip-version-check -w "$CTX/deps" -r "$CTX/deps/requirements.txt"
    touch "$CTX/deps/.complete"
    log "dependency wheels built in $(since "$t")"
fi

# --- 3. the raftlog wheel, from a clean copy of the work tree ---------------------------
# (an in-tree setuptools build keeps build/lib between runs and would ship deleted files)
t=$(now)
SRC=$CTX/src
rm -rf "$SRC" "$CTX/app"
mkdir -p "$SRC" "$CTX/app"
tar -c --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
    pyproject.toml README.md raftlog node cli | tar -x -C "$SRC"
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    -w "$CTX/app" "$SRC" 2>/dev/null \
    || "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$CTX/app" "$SRC"
rm -rf "$SRC"
log "raftlog wheel built in $(since "$t"): $(cd "$CTX/app" && ls *.whl)"

cp deploy/healthcheck.py "$CTX/healthcheck.py"
chmod 0755 "$CTX/healthcheck.py"
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

# --- 4. docker build (no pull, no network) ----------------------------------------------
t=$(now)
docker build --pull=false --network=none \
    --build-arg "BASE_IMAGE=$BASE_TAG" \
    --label "org.opencontainers.image.version=$VERSION" --label org.raftlog.image=app \
    -t "$IMAGE:dev" -t "$IMAGE:$VERSION" \
    -f deploy/Dockerfile "$CTX" >"$CTX/docker-build.log" 2>&1 || {
    cat "$CTX/docker-build.log" >&2
    exit 1
}
log "docker build in $(since "$t"): $IMAGE:dev $IMAGE:$VERSION" \
    "($(grep -c 'Using cache' "$CTX/docker-build.log" || true) cached steps)"
log "done in $(since "$t0")"
# The image this build replaced is left untagged: drop it (ours only, by label).
docker image prune -f --filter label=org.raftlog.image=app >/dev/null 2>&1 || true
