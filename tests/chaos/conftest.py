"""Chaos tests: the checker on synthetic histories, the bite test, short process runs."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a chaos run against real node processes (tests/chaos)")
