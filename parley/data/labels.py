"""Labels: people say which article (or ``handoff``) a customer message needed.

``import_labels`` reads ``message_id,intent`` rows (the ids are the exported ``message_id``);
``suggest`` ranks unlabelled customer messages so the most useful get labelled first: the ones
whose answer got bad feedback, then the least confident answers.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy import Engine, and_, case, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from parley.core.classifier import NO_ANSWER
from parley.core.handoff import DESK
from parley.data.training import Example
from parley.stores.sql import Feedback, Label, Message


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    stored: int = 0
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class Suggestion:
    message_id: str
    text: str
    answered_intent: str | None
    confidence: float | None
    feedback: int | None


def import_labels(database: Engine, source: Iterable[str], *, intents: Collection[str]) -> ImportReport:
    """Store (or replace) each row's label; rows naming unknown messages or intents are reported."""
    reader = csv.DictReader(source)
    if not reader.fieldnames or not {"message_id", "intent"} <= set(reader.fieldnames):
        return ImportReport(problems=("the CSV needs the columns message_id and intent",))
    known = set(intents) | {NO_ANSWER}
    problems: list[str] = []
    stored = 0
    with Session(database) as session:
        for line, row in enumerate(reader, start=2):
            message_id, intent = (row["message_id"] or "").strip(), (row["intent"] or "").strip()
            if not intent:  # a suggestion the labeller left blank
                continue
            if intent not in known:
                problems.append(f"line {line}: unknown intent {intent!r} (an article id or {NO_ANSWER!r})")
                continue
            message = session.scalars(select(Message).where(Message.public_id == message_id)).first()
            if message is None or message.direction != "in":
                problems.append(f"line {line}: no customer message {message_id!r}")
                continue
            label = session.get(Label, message_id) or Label(message_id=message_id, intent=intent)
            label.intent, label.source = intent, "import"
            session.add(label)
            stored += 1
        session.commit()
    return ImportReport(stored=stored, problems=tuple(problems))


def suggest(database: Engine, *, limit: int = 50) -> list[Suggestion]:
    answer = aliased(Message)
    bad_first = case((Feedback.score < 0, 0), else_=1)
    statement = (
        select(Message.public_id, Message.text, answer.intent, answer.confidence, Feedback.score)
        .join(answer, and_(answer.in_reply_to == Message.public_id, answer.direction == "out",
                           answer.channel != DESK))
        .outerjoin(Feedback, Feedback.message_id == answer.public_id)
        .outerjoin(Label, Label.message_id == Message.public_id)
        .where(Message.direction == "in", Label.message_id.is_(None))
        .order_by(bad_first, answer.confidence.asc().nulls_first(), Message.id)
        .limit(limit)
    )
    with Session(database) as session:
        return [Suggestion(message_id=row[0], text=row[1], answered_intent=row[2], confidence=row[3],
                           feedback=row[4]) for row in session.execute(statement)]


def write_suggestions(suggestions: Iterable[Suggestion], out: TextIO) -> None:
    """A CSV to fill in: the ``intent`` column is left empty for the labeller."""
    writer = csv.writer(out)
    writer.writerow(["message_id", "intent", "text", "answered_intent", "confidence", "feedback"])
    for item in suggestions:
        writer.writerow([item.message_id, "", item.text, item.answered_intent or "",
                         "" if item.confidence is None else item.confidence,
                         "" if item.feedback is None else item.feedback])


def labelled_examples(database: Engine, *, since: datetime | None = None,
                      until: datetime | None = None) -> tuple[list[Example], datetime | None, datetime | None]:
    """Every labelled customer message (in the range), with the range it actually covers."""
    statement = (select(Message.text, Label.intent, Message.created_at)
                 .join(Label, Label.message_id == Message.public_id).order_by(Message.id))
    if since is not None:
        statement = statement.where(Message.created_at >= since)
    if until is not None:
        statement = statement.where(Message.created_at < until)
    with Session(database) as session:
        rows = session.execute(statement).all()
    moments = [row[2] for row in rows]
    return ([Example(row[0], row[1]) for row in rows], min(moments, default=None),
            max(moments, default=None))
