"""The SDK's loggers: structlog bound loggers on top of stdlib ``logging``.

A library must not print on its own: these go wherever the application's logging
configuration sends ``raftlog.client.*`` (nowhere below WARNING by default, and
warnings to stderr through logging's last-resort handler), never to stdout.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


def get_logger(name: str) -> Any:
    """A structlog logger for ``name`` that renders ``event key=value ...`` into the
    stdlib logger of the same name (level filtering happens before rendering)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        wrapper_class=structlog.stdlib.BoundLogger,
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
    )
