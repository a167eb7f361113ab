"""The hardening tests use the broker tests' in-process harness and its log fixture."""

from tests.broker.conftest import log_factory

__all__ = ["log_factory"]
