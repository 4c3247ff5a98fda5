"""Log configuration: structlog JSON lines, with thread_id and node on every line from inside the graph."""

from __future__ import annotations

import logging
import os
from typing import TextIO

import structlog

LEVEL_ENV = "COSTGUARD_LOG_LEVEL"


def configure_logging(level: int, file: TextIO) -> None:
    """JSON lines at `level` to `file` (the CLI: stderr; the benchmarks: /dev/null)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=file),
    )


def level_from_env() -> int:
    """COSTGUARD_LOG_LEVEL (default warning; `info`: a line per alert, `debug`: a line per node run)."""
    name = os.environ.get(LEVEL_ENV, "warning").upper()
    return logging.getLevelNamesMapping().get(name, logging.WARNING)
