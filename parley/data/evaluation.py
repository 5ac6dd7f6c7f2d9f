"""Evaluating the offline engine on a question set, the way customers' messages are answered.

Each question is asked as a customer's message in a fresh conversation, through whatever ``ask``
runs it (``parley eval``: the pipeline, with greeting, handoff and confidence rules included). A question whose ``expected`` is empty should not be answered: the bot
should fall back or hand off, and counts as right when it does.
"""

from __future__ import annotations

import csv
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np
from sklearn.metrics import accuracy_score, recall_score

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
    # Only when some questions should not be answered (empty ``expected``): the share of those
    # the bot refused, and its accuracy on the others.
    out_of_scope: int = 0
    oos_recall: float | None = None
    in_scope_accuracy: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"questions": self.questions, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "refusal_rate": self.refusal_rate, "out_of_scope": self.out_of_scope,
                "oos_recall": self.oos_recall, "in_scope_accuracy": self.in_scope_accuracy,
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "confused": [list(pair) for pair in self.confused], "answered_by": self.answered_by}


def read_questions(source: TextIO) -> list[Question]:
    """Rows of text,expected; an empty ``expected`` (or no such column) marks a question the bot
    should not answer (out of scope)."""
    reader = csv.DictReader(source)
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise ValueError("the questions CSV needs the column text (and expected: an article id, "
                         "or empty for a question the bot should refuse)")
    return [Question(row["text"], (row.get("expected") or "").strip() or NO_ANSWER)
            for row in reader if (row["text"] or "").strip()]


CHANNEL = "eval"  # the channel the questions are asked on
# The replies a customer on the evaluation's channel gets to one message.
Ask = Callable[[Envelope], Sequence[Reply]]


def run(ask: Ask, questions: Iterable[Question], clock: Callable[[], float] = time.perf_counter, *,
        progress: Callable[[int], None] | None = None) -> list[Outcome]:
    outcomes = []
    for number, question in enumerate(questions, start=1):
        if progress is not None:
            progress(number)
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
    refused = [p == NO_ANSWER for p in predicted]
    out_of_scope = [e == NO_ANSWER for e in expected]
    oos_recall = in_scope_accuracy = None
    if any(out_of_scope):
        # Recall of the "refuse" class, and accuracy over the rest (scikit-learn's own measures).
        oos_recall = round(float(recall_score(out_of_scope, refused, zero_division=0)), 4)
        answerable = [(e, p) for e, p in zip(expected, predicted, strict=True) if e != NO_ANSWER]
        if answerable:
            with warnings.catch_warnings():  # many intents, few questions each: not a regression
                warnings.simplefilter("ignore", UserWarning)
                in_scope_accuracy = round(float(accuracy_score(*zip(*answerable, strict=True))), 4)
    return Report(
        questions=len(outcomes), accuracy=metrics.accuracy, macro_f1=metrics.macro_f1,
        refusal_rate=round(sum(refused) / len(outcomes), 4),
        out_of_scope=sum(out_of_scope), oos_recall=oos_recall, in_scope_accuracy=in_scope_accuracy,
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
        *([f"out of scope   {report.out_of_scope} questions: {report.oos_recall:.1%} refused (OOS recall), "
           f"in-scope accuracy {report.in_scope_accuracy or 0:.1%}"] if report.oos_recall is not None else []),
        f"latency        p50 {report.p50_ms:.2f} ms, p99 {report.p99_ms:.2f} ms",
        "answered by    " + ", ".join(f"{name} ({count})" for name, count in sorted(report.answered_by.items())),
    ]
    if report.confused:
        lines.append("most confused (expected -> answered):")
        lines += [f"  {e} -> {p}  x{n}" for e, p, n in report.confused]
    return "\n".join(lines)
