"""Structured logs: one JSON object a line in production, readable key=value lines in development.

Request- and conversation-scoped fields (``request_id``, ``channel``, ``conversation_id``) are bound
with ``structlog.contextvars`` so every line a request or a worker writes carries them. Message bodies
are logged only at DEBUG. Fields whose name says they hold a secret are masked before rendering,
whoever logged them. The standard library's loggers (gunicorn, werkzeug, alembic) go through the
same renderer, so a production pod writes nothing but JSON lines.

Key names are not enough: a library may put a secret in a message (httpx logs every request URL,
and the Telegram bot token is part of that URL; the Twilio SDK logs its URLs with the account SID).
So every rendered line is also scrubbed of each configured secret's value, and the chatty HTTP
clients speak only from WARNING up.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

import structlog
from structlog.typing import Processor

# Key names (whole or as a suffix) that hold credentials: never rendered, whatever the log level.
_SECRET_KEY = re.compile(r"(^|_)(token|secret|password|api_key|auth|authorization|cookie|signature)s?$",
                         re.IGNORECASE)
MASK = "[redacted]"
# Their INFO lines are one per HTTP call, with the URL: noise at best, a token (Telegram) at worst.
_QUIET_LOGGERS = ("httpx", "httpcore", "twilio", "urllib3")
# Alembic 1.18+ announces each of its plugins at INFO whenever it migrates: noise, every start.
_QUIET_LOGGERS += ("alembic.runtime.plugins",)
_SHORTEST_SECRET = 6  # scrubbing shorter strings would mangle lines; no real credential is that short


def mask_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask the value of every field named like a credential (``bot_token``, ``authorization``...).

    Numbers stay: ``prompt_tokens=812`` is a count, and no credential is a number.
    """
    for key in list(event):
        value = event[key]
        if _SECRET_KEY.search(key) and value is not None and not isinstance(value, int | float):
            event[key] = MASK
    return event


class Scrub:
    """A processor after the renderer: each secret's value, however written, becomes the mask."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets if len(secret) >= _SHORTEST_SECRET
                 for form in (secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1])}
        # Longest first, so a secret that contains another is masked whole.
        self._pattern = re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))) \
            if forms else None

    def __call__(self, _logger: Any, _method: str, line: Any) -> Any:
        if self._pattern is None or not isinstance(line, str):
            return line
        return self._pattern.sub(MASK, line)


def _shared_processors(json_format: bool) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
        structlog.processors.format_exc_info if json_format else structlog.dev.set_exc_info,
    ]


def _renderer(json_format: bool) -> Processor:
    # A plain traceback: structlog's default (rich, with every frame's locals) took over 2 s to
    # render a database error, so each crashed attempt of a message stalled the whole process.
    return (structlog.processors.JSONRenderer() if json_format
            else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))


def configure(*, level: str = "INFO", json_format: bool = False, secrets: Iterable[str] = ()) -> None:
    """Configure structlog and the standard library alike; ``secrets`` never appear in a line."""
    scrub = Scrub(secrets)
    structlog.configure(
        processors=[*_shared_processors(json_format), _renderer(json_format), scrub],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        # One write() per line (message and newline together): PrintLogger writes them apart, and a
        # gunicorn or library line written in between broke the one-JSON-object-a-line contract.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(json_format=json_format, scrub=scrub))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(getattr(logging, level), logging.INFO))  # third-party DEBUG is noise, and may leak
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def stdlib_formatter(*, json_format: bool, scrub: Scrub | None = None,
                     secrets: Iterable[str] = ()) -> logging.Formatter:
    """A formatter that renders standard-library records exactly like structlog's own lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors(json_format)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(json_format),
                    scrub or Scrub(secrets)],
    )


def gunicorn_logconfig(*, json_format: bool, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its master and worker lines in the same format as ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"parley": {"()": stdlib_formatter, "json_format": json_format,
                                  "secrets": list(secrets)}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "parley",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # One line per request is the app's own ("envelope_stored"...); no access log on top.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
    }
