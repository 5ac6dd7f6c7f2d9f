"""GDPR erasure: ``parley forget`` and ``POST /admin/forget`` (retention is ``data.retention``).

Forgetting a customer deletes every conversation of theirs from the log (messages, feedback,
labels, handoff steps, desk threads), drops their sessions and live widget events from the state
stores, and leaves a tombstone per conversation that holds no personal data: a digest that export
honours (nothing of that conversation is exported again) and the conversation's pseudonym in
redacted exports, for whoever holds an earlier export file to find its rows (those files left us).

The audit line names the request and the counts, never the customer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import Engine

from parley.data.redaction import Redactor
from parley.settings import Settings
from parley.stores import sql_erase

logger = structlog.get_logger("parley.gdpr")

# What holds a conversation's state outside SQL: each drops one conversation's (session, mailbox).
Forgetter = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Erasure:
    request: str
    conversations: int
    messages: int
    # Each conversation's pseudonym in redacted exports (None without ``data.pseudonym_key``).
    pseudonyms: tuple[str, ...]
    sessions_erased: bool

    def as_dict(self) -> dict[str, object]:
        return {"request": self.request, "conversations": self.conversations, "messages": self.messages,
                "export_pseudonyms": list(self.pseudonyms), "sessions_erased": self.sessions_erased}


def forget(database: Engine, settings: Settings, customer: str, *,
           state: Sequence[Forgetter] = (), requested_by: str = "cli") -> Erasure:
    """Erase ``customer`` (an id on their channel, or a conversation id) everywhere we keep them."""
    request = uuid.uuid4().hex[:12]
    ids = sql_erase.conversations_of(database, customer)
    pseudonym = _pseudonym_of(settings)
    deleted = sql_erase.erase(database, ids, request=request, pseudonym=pseudonym)
    for conversation_id in ids:
        for drop in state:
            drop(conversation_id)
    erasure = Erasure(request=request, conversations=deleted.conversations, messages=deleted.messages,
                      pseudonyms=tuple(pseudonym(i) for i in ids) if pseudonym else (),
                      sessions_erased=bool(state))
    logger.warning("customer_erased", request=request, requested_by=requested_by,
                   conversations=deleted.conversations, messages=deleted.messages,
                   sessions_erased=bool(state))
    return erasure


def _pseudonym_of(settings: Settings) -> Callable[[str], str] | None:
    # Only a configured key makes pseudonyms that match across exports; a random one matches nothing.
    key = settings.data.pseudonym_key
    return None if key is None else Redactor(key=key.get_secret_value().encode("utf-8")).pseudonym
