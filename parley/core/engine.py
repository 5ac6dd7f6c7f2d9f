"""The ``AnswerEngine`` interface and the offline engine that answers from the knowledge base."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from parley.core.envelope import AnswerMeta, Source
from parley.core.classifier import NO_ANSWER, IntentClassifier
from parley.core.knowledge import Article, KnowledgeIndex
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
    # Set when the engine decided the customer needs a person (an LLM's handoff tool call).
    handoff_reason: str | None = None
    cached: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def meta(self) -> AnswerMeta:
        """What a reply built from this answer records about where it came from."""
        return AnswerMeta(engine=self.engine, confidence=self.confidence, sources=self.sources,
                          model_version=self.model_version, intent=self.intent, cached=self.cached,
                          model=self.model, prompt_tokens=self.prompt_tokens,
                          completion_tokens=self.completion_tokens)


# Receives each piece of an answer's text as the engine produces it (for live display).
TokenSink = Callable[[str], None]


class AnswerEngine(Protocol):
    name: str

    def answer(self, question: str, history: Sequence[Turn], *,
               on_token: TokenSink | None = None) -> Answer:
        """The answer to ``question``; an engine that streams calls ``on_token`` with each piece."""
        ...


class RetrievalEngine:
    """Answers with the body of the best-matching knowledge-base article.

    With a trained ``classifier`` (``parley models activate``), its prediction comes first when it
    is confident enough; retrieval answers the rest. ``model_version`` says which one answered.
    """

    name = "offline"

    def __init__(self, index: KnowledgeIndex, classifier: IntentClassifier | None = None, *,
                 min_model_confidence: float = 0.25) -> None:
        self.index = index
        self.classifier = classifier
        self.min_model_confidence = min_model_confidence
        self.retrieval_version = f"retrieval-{index.version}"

    def answer(self, question: str, history: Sequence[Turn], *,
               on_token: TokenSink | None = None) -> Answer:
        if self.classifier is not None:
            answer = self._predict(self.classifier, question)
            if answer is not None:
                return answer
        hits = self.index.search(question, k=1)
        if not hits:
            return Answer(text="", confidence=0.0, engine=self.name, model_version=self.retrieval_version)
        return self._article_answer(hits[0].article, hits[0].confidence, self.retrieval_version)

    def _predict(self, classifier: IntentClassifier, question: str) -> Answer | None:
        prediction = classifier.predict(question)
        if prediction.confidence < self.min_model_confidence:
            return None
        if prediction.intent == NO_ANSWER:
            # Questions like this were labelled for a person: answer nothing, so the dialogue
            # falls back and offers one.
            return Answer(text="", confidence=0.0, engine=self.name, intent=NO_ANSWER,
                          model_version=prediction.version or classifier.version)
        article = self.index.get(prediction.intent)
        if article is None:  # trained on an article the knowledge base no longer has
            return None
        if self.index.dense is None:
            return self._article_answer(article, prediction.confidence, prediction.version or classifier.version)
        # The model picks among the articles it knows, even for a question none of them answers
        # ("write me a poem"); how near the question is to the article it picked says whether it
        # answers it. That relevance is the answer's confidence, on the same scale as retrieval's.
        relevance = self.index.relevance(question, article.id)
        return self._article_answer(article, relevance, prediction.version or classifier.version)

    def _article_answer(self, article: Article, confidence: float, version: str) -> Answer:
        return Answer(text=article.body, confidence=confidence, engine=self.name,
                      sources=(Source(id=article.id, title=article.title, url=article.url),),
                      intent=article.id,
                      model_version=version)
