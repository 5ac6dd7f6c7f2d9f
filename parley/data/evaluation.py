"""Evaluating the offline engine on a question set, the way customers' messages are answered.

Each question is asked as a customer's message in a fresh conversation, through whatever ``ask``
runs it (``parley eval``: the pipeline, with greeting, handoff and confidence rules included). A question whose ``expected`` is empty should not be answered: the bot
should fall back or hand off, and counts as right when it does.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from parley.core.classifier import NO_ANSWER
from parley.core.envelope import Envelope, Reply
from parley.data.training import evaluate


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    expected: str  # an article id, or NO_ANSWER


@dataclass(frozen=True, slots=True)
class Outcome:
    question: Question
    predicted: str  # the article the reply was grounded on, or NO_ANSWER
    latency_ms: float
    model_version: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    questions: int
    accuracy: float
    macro_f1: float
    refusal_rate: float
    p50_ms: float
    p99_ms: float
    confused: tuple[tuple[str, str, int], ...]
    answered_by: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {"questions": self.questions, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "refusal_rate": self.refusal_rate, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "confused": [list(pair) for pair in self.confused], "answered_by": self.answered_by}


def read_questions(source: TextIO) -> list[Question]:
    reader = csv.DictReader(source)
    if not reader.fieldnames or not {"text", "expected"} <= set(reader.fieldnames):
        raise ValueError("the questions CSV needs the columns text and expected")
    return [Question(row["text"], (row["expected"] or "").strip() or NO_ANSWER)
            for row in reader if (row["text"] or "").strip()]


CHANNEL = "eval"  # the channel the questions are asked on
# The replies a customer on the evaluation's channel gets to one message.
Ask = Callable[[Envelope], Sequence[Reply]]


def run(ask: Ask, questions: Iterable[Question], clock: Callable[[], float] = time.perf_counter) -> list[Outcome]:
    outcomes = []
    for question in questions:
        envelope = Envelope(channel=CHANNEL, conversation_id=f"eval-{uuid.uuid4().hex}",
                            message_id=uuid.uuid4().hex, sender="eval", text=question.text)
        started = clock()
        reply = ask(envelope)[0]
        latency_ms = (clock() - started) * 1000
        sources = reply.meta.sources
        outcomes.append(Outcome(question, sources[0].id if sources else NO_ANSWER, latency_ms,
                                reply.meta.model_version))
    return outcomes


def summarise(outcomes: Sequence[Outcome]) -> Report:
    if not outcomes:
        raise ValueError("no questions to evaluate")
    expected = [outcome.question.expected for outcome in outcomes]
    predicted = [outcome.predicted for outcome in outcomes]
    metrics = evaluate(expected, predicted)
    latencies = np.array([outcome.latency_ms for outcome in outcomes])
    answered_by: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome.model_version or "none"
        answered_by[key] = answered_by.get(key, 0) + 1
    return Report(
        questions=len(outcomes), accuracy=metrics.accuracy, macro_f1=metrics.macro_f1,
        refusal_rate=round(predicted.count(NO_ANSWER) / len(outcomes), 4),
        p50_ms=round(float(np.percentile(latencies, 50)), 3),
        p99_ms=round(float(np.percentile(latencies, 99)), 3),
        confused=metrics.confused, answered_by=answered_by,
    )


def format_report(report: Report) -> str:
    lines = [
        f"questions      {report.questions}",
        f"top-1 accuracy {report.accuracy:.1%}",
        f"macro-F1       {report.macro_f1:.3f}",
        f"refusal rate   {report.refusal_rate:.1%}  (fallback or handoff)",
        f"latency        p50 {report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms",
        "answered by    " + ", ".join(f"{name} ({count})" for name, count in sorted(report.answered_by.items())),
    ]
    if report.confused:
        lines.append("most confused (expected -> answered):")
        lines += [f"  {e} -> {p}  x{n}" for e, p, n in report.confused]
    return "\n".join(lines)
