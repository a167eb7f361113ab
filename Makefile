# The two commands of the README: `make up` and `make test`. Both create .venv when it
# is missing and install the project with everything it needs, so a fresh clone works.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: up test install proto typecheck clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Start a local three-node cluster on 127.0.0.1:9091-9093 (Ctrl-C stops it cleanly).
up: $(STAMP)
	$(VENV)/bin/raftlog cluster up

## Run the whole suite: type check, then every test (pytest's "no tests" counts as failure).
test: $(STAMP)
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

## Regenerate raftlog/v1 from proto/ (a test fails when it is stale).
proto: $(STAMP)
	$(PY) scripts/gen_proto.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
