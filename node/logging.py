"""structlog setup for a node process: JSON lines by default, readable on a terminal.

Loggers are bound explicitly (``get_logger(...).bind(node_id=...)``) rather than
through context variables, so several nodes can share one process in tests and
every line still says which node wrote it. Lines go to stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import FilteringBoundLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    """Configure structlog process-wide. Call once, before a node starts."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if log_format == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    else:
        processors.append(structlog.processors.dict_tracebacks)
        processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(component: str, node_id: int) -> FilteringBoundLogger:
    """A logger bound with the component name and ``node_id``."""
    logger: FilteringBoundLogger = structlog.get_logger(component).bind(node_id=node_id)
    return logger
