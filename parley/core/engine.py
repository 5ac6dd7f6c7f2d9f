"""The ``AnswerEngine`` interface and the offline engine that answers from the knowledge base."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parley.core.envelope import Source
from parley.core.knowledge import KnowledgeIndex
from parley.core.sessions import Turn


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """An engine's best answer. The dialogue decides whether its confidence is good enough."""

    text: str
    confidence: float
    engine: str
    sources: tuple[Source, ...] = ()
    model_version: str | None = None
    intent: str | None = None
    handoff_reason: str | None = None


class AnswerEngine(Protocol):
    name: str

    def answer(self, question: str, history: Sequence[Turn]) -> Answer: ...


class RetrievalEngine:
    """Answers with the body of the best-matching knowledge-base article."""

    name = "offline"

    def __init__(self, index: KnowledgeIndex) -> None:
        self.index = index

    def answer(self, question: str, history: Sequence[Turn]) -> Answer:
        hits = self.index.search(question, k=1)
        if not hits:
            return Answer(text="", confidence=0.0, engine=self.name)
        best = hits[0]
        return Answer(
            text=best.article.body,
            confidence=best.confidence,
            engine=self.name,
            sources=(Source(id=best.article.id, title=best.article.title),),
            intent=best.article.id,
        )
