"""The dense half of retrieval: sentence vectors of every article's passages, compared by cosine.

An article is embedded as several passages (its title, each example question, each paragraph of
its body) and scores as its best passage: a question usually resembles one of them closely rather
than the article as a whole. Pure computation: the ``Embedder`` comes in (``parley.stores.embeddings``
runs the ONNX model), and so may vectors computed before (the on-disk cache), so a start with
10,000 articles embeds only what changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

_PARAGRAPH = re.compile(r"\n\s*\n")
MAX_PASSAGE_CHARS = 600  # the model reads 128 tokens at most; longer paragraphs are split


class Article(Protocol):
    """What of a knowledge-base article is embedded (``core.knowledge.Article``)."""

    @property
    def title(self) -> str: ...
    @property
    def questions(self) -> tuple[str, ...]: ...
    @property
    def body(self) -> str: ...


class Embedder(Protocol):
    version: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text (float32 rows)."""
        ...


def passages(article: Article) -> list[str]:
    """What of an article is embedded, one vector each."""
    texts = [article.title, *article.questions]
    for paragraph in _PARAGRAPH.split(article.body):
        paragraph = " ".join(paragraph.split())
        while paragraph:
            cut = paragraph.rfind(" ", 0, MAX_PASSAGE_CHARS) if len(paragraph) > MAX_PASSAGE_CHARS else -1
            piece, paragraph = (paragraph[:cut], paragraph[cut + 1:]) if cut > 0 else (paragraph, "")
            texts.append(piece)
    return [text for text in texts if text.strip()]


def passage_key(text: str) -> str:
    """The cache key of one passage's vector (with the model's version beside it, in the cache)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class DenseIndex:
    """Per article, the best cosine between the question and any of its passages."""

    def __init__(self, articles: Sequence[Article], embedder: Embedder,
                 known: dict[str, np.ndarray] | None = None) -> None:
        self.embedder = embedder
        texts, owners = [], []
        for number, article in enumerate(articles):
            found = passages(article)
            texts += found
            owners += [number] * len(found)
        known = dict(known or {})
        keys = [passage_key(text) for text in texts]
        missing = sorted({key: text for key, text in zip(keys, texts, strict=True) if key not in known}.items())
        if missing:
            vectors = embedder.embed([text for _, text in missing])
            known.update(zip([key for key, _ in missing], vectors, strict=True))
        self.vectors = {key: known[key] for key in keys}  # what a cache should keep
        self.texts = texts
        self._matrix = np.vstack([known[key] for key in keys]).astype(np.float32)
        # Passages are grouped by article, in order: reduceat takes each group's maximum.
        self._starts = np.flatnonzero(np.r_[True, np.diff(owners) != 0])
        self.embedded = len(missing)

    def scores(self, question: str) -> np.ndarray:
        """Cosine of each article's best passage with the question, in article order."""
        return np.maximum.reduceat(self._matrix @ self.embedder.embed([question])[0], self._starts)
