"""How the bot does, from the conversation log (``parley report``, ``/admin/report``).

A conversation counts once in a window if its customer wrote in it (once per day and channel in
those slices); it is *contained* when no handoff was requested in it within the window. Times to
the first rep reply and to resolution pair each handoff request with the steps that follow it in
the same window. Thumbs are the customers' verdicts on answers (+1/-1); CSAT is the 1-5 rating
asked after a handoff, as the share of 4s and 5s (the usual definition) and the mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, Select, and_, func, select
from sqlalchemy.orm import aliased

from parley.core.handoff import DESK
from parley.data.export import ExportQuery
from parley.data.redaction import Redactor
from parley.stores.sql import Conversation, Feedback, HandoffEvent, Message

FALLBACK = "fallback"  # the intent of the dialogue's "not sure" reply: the question went unanswered


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Seconds from a handoff request to a step, over the handoffs that reached it."""

    count: int = 0
    p50: float | None = None
    p90: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Slice:
    """The figures of one channel or one day."""

    key: str
    conversations: int = 0
    handed_off: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0

    @property
    def containment_rate(self) -> float | None:
        return None if not self.conversations else 1 - self.handed_off / self.conversations


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    text: str  # redacted; questions equal but for case are counted together
    count: int
    kind: str  # "unanswered" (the bot said it was not sure) or "low_confidence"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    since: datetime | None
    until: datetime | None
    channel: str | None
    total: Slice
    handoff_reasons: dict[str, int]
    ratings: dict[int, int]  # 1-5 -> how many
    first_response: Timing
    resolution: Timing
    questions: tuple[Question, ...]
    by_channel: tuple[Slice, ...]
    by_day: tuple[Slice, ...]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def csat(self) -> float | None:
        rated = sum(self.ratings.values())
        return None if not rated else sum(n for score, n in self.ratings.items() if score >= 4) / rated

    @property
    def mean_rating(self) -> float | None:
        rated = sum(self.ratings.values())
        return None if not rated else sum(score * n for score, n in self.ratings.items()) / rated

    def as_json(self) -> dict[str, Any]:
        def figures(part: Slice) -> dict[str, Any]:
            handoff_rate = None if not part.conversations else part.handed_off / part.conversations
            return {**asdict(part), "containment_rate": part.containment_rate, "handoff_rate": handoff_rate}

        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "since": moment(self.since), "until": moment(self.until), "channel": self.channel,
            "generated_at": self.generated_at.isoformat(), **figures(self.total),
            "handoff_reasons": self.handoff_reasons,
            "csat": {"ratings": sum(self.ratings.values()), "satisfied_share": self.csat,
                     "mean": self.mean_rating, "by_score": {str(k): v for k, v in sorted(self.ratings.items())}},
            "time_to_first_rep_response_seconds": asdict(self.first_response),
            "time_to_resolution_seconds": asdict(self.resolution),
            "top_questions": [asdict(question) for question in self.questions],
            "by_channel": [figures(part) for part in self.by_channel],
            "by_day": [figures(part) for part in self.by_day],
        }


def build_report(database: Engine, query: ExportQuery, redactor: Redactor | None, *,
                 low_confidence: float = 0.5, top: int = 10) -> Report:
    """The report over ``query``'s window and channel; question texts go through ``redactor``."""
    with database.connect() as connection:
        def run(statement: Select[Any]) -> list[Any]:
            return list(connection.execute(statement).all())

        slices = {by: _slices(run(_conversations(query, by)), run(_handed_off(query, by)),
                              run(_thumbs(query, by))) for by in (None, "channel", "day")}
        reasons = run(_window(select(HandoffEvent.reason, func.count()), HandoffEvent, query)
                      .where(HandoffEvent.kind == "requested").group_by(HandoffEvent.reason))
        ratings = run(_window(select(Feedback.score, func.count()), Feedback, query)
                      .where(Feedback.kind == "handoff").group_by(Feedback.score))
        steps = run(_window(select(HandoffEvent.conversation_id, HandoffEvent.kind, HandoffEvent.created_at),
                            HandoffEvent, query)
                    .where(HandoffEvent.kind.in_(("requested", "first_reply", "resolved", "handed_back")))
                    .order_by(HandoffEvent.conversation_id, HandoffEvent.id))
        questions = [*_questions(run, query, unanswered=True, below=low_confidence, top=top),
                     *_questions(run, query, unanswered=False, below=low_confidence, top=top)]
    first_response, resolution = _timings(steps)
    total = slices[None][0] if slices[None] else Slice(key="all")
    return Report(
        since=query.since, until=query.until, channel=query.channel, total=replace(total, key="all"),
        handoff_reasons=dict(sorted(((reason or "unspecified", count) for reason, count in reasons),
                                    key=lambda item: (-item[1], item[0]))),
        ratings={int(score): count for score, count in ratings if 1 <= score <= 5},
        first_response=first_response, resolution=resolution,
        questions=tuple(Question(text=(redactor.text(text) if redactor else text) or "", count=count, kind=kind)
                        for text, count, kind in questions),
        by_channel=tuple(slices["channel"]), by_day=tuple(slices["day"]))


def _window(statement: Select[Any], table: Any, query: ExportQuery) -> Select[Any]:
    """``statement`` over ``table`` (which has a conversation_id and a created_at), within the
    window and the channel (the customer's: the conversation's)."""
    statement = statement.join(Conversation, Conversation.id == table.conversation_id)
    return query.narrow(statement, table.created_at, Conversation.channel)


def _key(table: Any, by: str | None) -> tuple[Any, ...]:
    if by is None:
        return ()
    return (Conversation.channel,) if by == "channel" else (func.date(table.created_at),)


def _grouped(columns: tuple[Any, ...], table: Any, by: str | None, query: ExportQuery,
             *extra: Any) -> Select[Any]:
    key = _key(table, by)
    statement = _window(select(*key, *columns).select_from(table), table, query)
    return statement.group_by(*key, *extra) if key or extra else statement


def _conversations(query: ExportQuery, by: str | None) -> Select[Any]:
    count = func.count(func.distinct(Message.conversation_id))
    return _grouped((count,), Message, by, query).where(Message.direction == "in", Message.channel != DESK)


def _handed_off(query: ExportQuery, by: str | None) -> Select[Any]:
    count = func.count(func.distinct(HandoffEvent.conversation_id))
    return _grouped((count,), HandoffEvent, by, query).where(HandoffEvent.kind == "requested")


def _thumbs(query: ExportQuery, by: str | None) -> Select[Any]:
    return (_grouped((Feedback.score, func.count()), Feedback, by, query, Feedback.score)
            .where(Feedback.kind == "answer"))


def _slices(conversations: list[Any], handed_off: list[Any], thumbs: list[Any]) -> list[Slice]:
    """Rows ``(key..., figures...)`` of the three queries, merged into one slice per key."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for *key, count in conversations:
        figures[_name(key)]["conversations"] += count
    for *key, count in handed_off:
        figures[_name(key)]["handed_off"] += count
    for *key, score, count in thumbs:
        figures[_name(key)]["thumbs_up" if score > 0 else "thumbs_down"] += count
    return [Slice(key=key, **values) for key, values in sorted(figures.items())]


def _name(key: list[Any]) -> str:
    # SQLite's date() gives text, PostgreSQL's a date: both read as 2026-01-31.
    return str(key[0]) if key else "all"


def _questions(run: Any, query: ExportQuery, *, unanswered: bool, below: float, top: int) -> list[tuple[str, int, str]]:
    """The questions asked most often that the bot could not answer, or answered unsure of itself."""
    reply = aliased(Message)
    # Asked alike when equal but for case; shown as one of them (min), which is then redacted as
    # written: lower-casing first would hide it from case-sensitive patterns such as an order id's.
    text = func.lower(Message.text)
    judged = reply.intent == FALLBACK if unanswered else and_(
        func.coalesce(reply.intent, "") != FALLBACK, reply.confidence < below)
    statement = (_window(select(func.min(Message.text), func.count()).select_from(Message), Message, query)
                 .join(reply, reply.in_reply_to == Message.public_id)
                 .where(Message.direction == "in", Message.channel != DESK, reply.engine != "person", judged)
                 .group_by(text).order_by(func.count().desc(), text).limit(top))
    kind = "unanswered" if unanswered else "low_confidence"
    return [(question, count, kind) for question, count in run(statement)]


def _timings(steps: Iterable[Any]) -> tuple[Timing, Timing]:
    """Pair each request with the first rep reply and the resolution that follow it."""
    first, resolved = [], []
    by_conversation: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for conversation_id, kind, at in steps:
        by_conversation[conversation_id].append((kind, at))
    for events in by_conversation.values():
        opened: datetime | None = None
        replied = False
        for kind, at in events:
            if kind == "requested":
                opened, replied = at, False
            elif opened is None:
                continue
            elif kind == "first_reply" and not replied:
                first.append((at - opened).total_seconds())
                replied = True
            elif kind in ("resolved", "handed_back"):
                if kind == "resolved":
                    resolved.append((at - opened).total_seconds())
                opened = None
    return _timing(first), _timing(resolved)


def _timing(seconds: list[float]) -> Timing:
    if not seconds:
        return Timing()
    p50, p90 = np.percentile(seconds, [50, 90])
    return Timing(count=len(seconds), p50=round(float(p50), 1), p90=round(float(p90), 1))
