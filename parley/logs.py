"""Structured logs: one JSON object a line in production, readable key=value lines in development.

Request- and conversation-scoped fields (``request_id``, ``channel``, ``conversation_id``) are bound
with ``structlog.contextvars`` so every line a request or a worker writes carries them. Message bodies
are logged only at DEBUG. Fields whose name says they hold a secret are masked before rendering,
whoever logged them. The standard library's loggers (gunicorn, werkzeug, alembic) go through the
same renderer, so a production pod writes nothing but JSON lines.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from structlog.typing import Processor

# Key names (whole or as a suffix) that hold credentials: never rendered, whatever the log level.
_SECRET_KEY = re.compile(r"(^|_)(token|secret|password|api_key|auth|authorization|cookie|signature)s?$",
                         re.IGNORECASE)
MASK = "[redacted]"


def mask_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask the value of every field named like a credential (``bot_token``, ``authorization``...)."""
    for key in list(event):
        if _SECRET_KEY.search(key) and event[key] is not None:
            event[key] = MASK
    return event


def _shared_processors(json_format: bool) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
        structlog.processors.format_exc_info if json_format else structlog.dev.set_exc_info,
    ]


def _renderer(json_format: bool) -> Processor:
    return (structlog.processors.JSONRenderer() if json_format
            else structlog.dev.ConsoleRenderer(colors=False))


def configure(*, level: str = "INFO", json_format: bool = False) -> None:
    structlog.configure(
        processors=[*_shared_processors(json_format), _renderer(json_format)],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        # One write() per line (message and newline together): PrintLogger writes them apart, and a
        # gunicorn or library line written in between broke the one-JSON-object-a-line contract.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(json_format=json_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(getattr(logging, level), logging.INFO))  # third-party DEBUG is noise, and may leak


def stdlib_formatter(*, json_format: bool) -> logging.Formatter:
    """A formatter that renders standard-library records exactly like structlog's own lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors(json_format)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(json_format)],
    )


def gunicorn_logconfig(*, json_format: bool) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its master and worker lines in the same format as ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"parley": {"()": stdlib_formatter, "json_format": json_format}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "parley",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # One line per request is the app's own ("envelope_stored"...); no access log on top.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
