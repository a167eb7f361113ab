# The two commands of the README: `make up` and `make test`. Both create .venv when it
# is missing and install the project with everything it needs, so a fresh clone works.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.installed-test-stamp
PYTEST_ARGS ?=

.PHONY: up test install install-test proto typecheck clean

# `make up` needs only what running a cluster needs; `make test` adds the test extra.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(TEST_STAMP)

install: $(STAMP)
install-test: $(TEST_STAMP)

## Start a local three-node cluster on 127.0.0.1:9091-9093 (Ctrl-C stops it cleanly).
up: $(STAMP)
	$(VENV)/bin/raftlog cluster up

## Run the whole suite: type check, the container image when Docker is here (the
## container tests skip without it), then every test (pytest's "no tests" fails too).
test: $(TEST_STAMP)
	$(VENV)/bin/mypy
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; \
	else echo "docker not available: container cluster tests will be skipped"; fi
	$(PY) -m pytest $(PYTEST_ARGS)

## Regenerate raftlog/v1 from proto/ (a test fails when it is stale).
proto: $(TEST_STAMP)
	$(PY) scripts/gen_proto.py

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache

# ---- Container images (deploy/; docs/architecture.md §10) -------------------------------------------
# No registry: the base is debootstrapped and `docker import`ed once per tag, the app
# image installs the host-built wheels offline. `make image` is what tests/containers use.
.PHONY: image image-base test-containers

## Build the base image (debootstrap + docker import) unless its tag exists. Needs root.
image-base:
	sh deploy/base/build.sh

## Build raftlog:dev (and raftlog:<version>): base if missing, wheels, docker build.
image: $(STAMP) image-base
	PY=$(abspath $(PY)) SKIP_BASE=1 sh deploy/image.sh

## The container tests (compose/k8s manifests always; the cluster only with Docker).
test-containers: $(TEST_STAMP)
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; \
	else echo "docker not available: container cluster tests will be skipped"; fi
	$(PY) -m pytest tests/containers $(PYTEST_ARGS)
