"""Streaming the conversation log out for analysis: one row per message, as JSON Lines, CSV or
Parquet, with the conversation, what produced each answer, its feedback and its label (the
handoff steps come out the same way, from ``export_events``).

Nothing of an erased conversation is exported (``parley forget`` leaves a tombstone that holds a
digest of its id): not even what was logged after the erasure.

Rows are read with a server-side cursor in batches and written as they come, so memory stays flat
whatever the size of the log. Redaction is on unless the caller turns it off explicitly.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, Select, select

from parley.core.handoff import DESK
from parley.data.redaction import Redactor
from parley.settings import Settings
from parley.stores.sql import Conversation, Feedback, Label, Message
from parley.stores.sql_erase import erased_subjects, subject_of

Format = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "parquet")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv",
               "parquet": "application/vnd.apache.parquet"}

SCHEMA = pa.schema([
    ("message_id", pa.string()), ("conversation_id", pa.string()), ("channel", pa.string()),
    ("customer", pa.string()), ("direction", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("text", pa.string()), ("in_reply_to", pa.string()), ("author", pa.string()),
    ("engine", pa.string()), ("intent", pa.string()), ("confidence", pa.float64()),
    ("sources", pa.string()), ("latency_ms", pa.float64()), ("cached", pa.bool_()),
    ("model_version", pa.string()), ("feedback_kind", pa.string()), ("feedback_score", pa.int64()),
    ("feedback_comment", pa.string()), ("label", pa.string()),
])
COLUMNS = tuple(SCHEMA.names)
ID_COLUMNS = ("message_id", "conversation_id", "customer", "in_reply_to", "author")


def redactor_of(settings: Settings) -> Redactor:
    """The configured patterns, keyed by ``data.pseudonym_key`` or a fresh key for this export."""
    key = settings.data.pseudonym_key
    return Redactor.build(settings.data.redact_patterns,
                          key.get_secret_value().encode("utf-8") if key else os.urandom(32),
                          settings.data.phone_regions)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportQuery:
    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    batch_size: int = 5000

    def narrow(self, statement: Select[Any], created_at: Any, channel: Any) -> Select[Any]:
        """``statement`` within this window (``created_at`` in [since, until)) and channel."""
        if self.since is not None:
            statement = statement.where(created_at >= naive_utc(self.since))
        if self.until is not None:
            statement = statement.where(created_at < naive_utc(self.until))
        if self.channel is not None:
            statement = statement.where(channel == self.channel)
        return statement


_SELECTED = (
    Message.public_id.label("message_id"), Message.conversation_id, Message.channel,
    Conversation.customer, Message.direction, Message.created_at, Message.text, Message.in_reply_to,
    Message.author, Message.engine, Message.intent, Message.confidence, Message.sources,
    Message.latency_ms, Message.cached, Message.model_version, Feedback.kind.label("feedback_kind"),
    Feedback.score.label("feedback_score"), Feedback.comment.label("feedback_comment"),
    Label.intent.label("label"),
)


def rows(database: Engine, query: ExportQuery, redactor: Redactor | None) -> Iterator[dict[str, Any]]:
    """Every message matching ``query`` in log order; ``redactor`` None exports the raw text."""
    statement = (
        select(*_SELECTED)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(Feedback, Feedback.message_id == Message.public_id)
        .outerjoin(Label, Label.message_id == Message.public_id)
        .where(Message.channel != DESK)  # posts to the reps' thread: logged for retries only
        .order_by(Message.id)
    )
    statement = query.narrow(statement, Message.created_at, Message.channel)
    yield from (_row(record, redactor) for record in stream(database, statement, query))


def stream(database: Engine, statement: Select[Any], query: ExportQuery) -> Iterator[dict[str, Any]]:
    """``statement``'s rows (each with a ``conversation_id``) within ``query``'s reach, batch by
    batch, less those of erased conversations."""
    erased = erased_subjects(database)
    with database.connect() as connection:
        # A server-side cursor on PostgreSQL: rows arrive batch by batch, never all at once.
        result = connection.execution_options(stream_results=True, yield_per=query.batch_size)
        for record in result.execute(statement).mappings():
            if not erased or subject_of(record["conversation_id"]) not in erased:
                yield dict(record)


def _row(row: dict[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    created = row["created_at"]
    row["created_at"] = created if created.tzinfo else created.replace(tzinfo=UTC)
    row["sources"] = ",".join(source["id"] for source in json.loads(row["sources"]))
    if redactor is not None:
        row["text"] = redactor.text(row["text"])
        row["feedback_comment"] = redactor.text(row["feedback_comment"])
        # Every id names its conversation (phone channels' ids are phone numbers; a widget message's
        # is "widget:<conversation>:..."): each becomes a stable pseudonym, so rows still join
        # (in_reply_to to message_id) and group, and none gives the conversation away.
        for column in ID_COLUMNS:
            if row[column] is not None:
                row[column] = redactor.pseudonym(row[column])
    return row


def encode(records: Iterable[dict[str, Any]], fmt: Format, *, batch_size: int = 5000,
           schema: pa.Schema = SCHEMA) -> Iterator[bytes]:
    """The export file (rows of ``schema``), piece by piece, for a file or an HTTP response."""
    if fmt == "jsonl":
        return _jsonl(records)
    if fmt == "csv":
        return _csv(records, tuple(schema.names))
    return _parquet(records, batch_size, schema)


def _jsonl(records: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for record in records:
        yield (json.dumps({**record, "created_at": record["created_at"].isoformat()},
                          ensure_ascii=False) + "\n").encode("utf-8")


def _csv(records: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for number, record in enumerate(records, 1):
        writer.writerow({**record, "created_at": record["created_at"].isoformat()})
        if number % 1000 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


class _Sink(io.RawIOBase):
    """A write-only file that hands what Arrow wrote to the generator between row groups."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.pieces.append(piece)
        self.position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.pieces = b"".join(self.pieces), []
        return data


def _parquet(records: Iterable[dict[str, Any]], batch_size: int, schema: pa.Schema) -> Iterator[bytes]:
    sink = _Sink()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(record)
            if len(batch) == batch_size:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
                batch = []
                yield sink.take()
        if batch:
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
    yield sink.take()


def naive_utc(moment: datetime) -> datetime:
    # Stored datetimes are UTC without a zone (SQLite keeps none); compare like with like.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
