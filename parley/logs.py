"""Structured logs: one JSON object a line in production, readable key=value lines in development.

Request- and conversation-scoped fields are bound with ``structlog.contextvars`` so every line a
request or a worker writes carries them. Message bodies are logged only at DEBUG.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(*, level: str = "INFO", json_format: bool = False) -> None:
    renderer = (structlog.processors.JSONRenderer() if json_format
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if json_format else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
