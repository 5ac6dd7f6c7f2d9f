"""The handoff steps for analysis (``parley export --what handoffs``): one row per step (requested,
claimed, first_reply, handed_back, resolved, rating, reminded), in the same formats as messages.

Redacted like messages: ids (the conversation, the customer, the rep) become the same pseudonyms
an export of messages gives them, so the two files join; reasons go through the text patterns.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, select

from parley.data.export import ExportQuery, stream
from parley.data.redaction import Redactor
from parley.stores.sql import Conversation, HandoffEvent

SCHEMA = pa.schema([
    ("event_id", pa.int64()), ("conversation_id", pa.string()), ("channel", pa.string()),
    ("customer", pa.string()), ("kind", pa.string()), ("reason", pa.string()), ("actor", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])
ID_COLUMNS = ("conversation_id", "customer", "actor")


def handoff_rows(database: Engine, query: ExportQuery, redactor: Redactor | None) -> Iterator[dict[str, Any]]:
    """Every handoff step matching ``query`` (``channel`` is the customer's), oldest first."""
    statement = (
        select(HandoffEvent.id.label("event_id"), HandoffEvent.conversation_id, Conversation.channel,
               Conversation.customer, HandoffEvent.kind, HandoffEvent.reason, HandoffEvent.actor,
               HandoffEvent.created_at)
        .join(Conversation, Conversation.id == HandoffEvent.conversation_id)
        .order_by(HandoffEvent.id)
    )
    statement = query.narrow(statement, HandoffEvent.created_at, Conversation.channel)
    for row in stream(database, statement, query):
        created = row["created_at"]
        row["created_at"] = created if created.tzinfo else created.replace(tzinfo=UTC)
        if redactor is not None:
            row["reason"] = redactor.text(row["reason"])
            for column in ID_COLUMNS:
                if row[column] is not None:
                    row[column] = redactor.pseudonym(row[column])
        yield row
