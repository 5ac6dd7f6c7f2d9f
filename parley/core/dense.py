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
# A scan of every passage vector reads the whole matrix per question (85 MB at 10,000 articles):
# above this many passages it scans a reduced copy instead (``_reduce``), then scores the best
# ``EXACT_HEAD`` articles exactly. Below it (the sample knowledge base), every score is exact.
REDUCE_ABOVE = 20_000
REDUCED_DIMENSIONS = 128
EXACT_HEAD = 64


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
                 known: dict[str, np.ndarray] | None = None, *, reduce_above: int = REDUCE_ABOVE,
                 exact_head: int = EXACT_HEAD) -> None:
        self.embedder = embedder
        self._exact_head = exact_head
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
        self._ends = np.r_[self._starts[1:], len(keys)]
        self._basis, self._reduced = _reduce(self._matrix, reduce_above)
        self.embedded = len(missing)

    def scores(self, question: str) -> np.ndarray:
        """Cosine of each article's best passage with the question, in article order.

        A large index is scanned in its reduced form (a third of the memory to read: the scan is
        bound by memory, not arithmetic), then the best articles' passages are scored exactly, so
        the ranking's head and every confidence shown are exact cosines.
        """
        vector = self.embedder.embed([question])[0]
        if self._basis is None:
            return np.maximum.reduceat(self._matrix @ vector, self._starts)
        scores = np.maximum.reduceat(self._reduced @ (vector @ self._basis), self._starts)
        head = np.argpartition(-scores, min(self._exact_head, len(scores)) - 1)[:self._exact_head]
        for number in head:
            scores[number] = float(np.max(self._matrix[self._starts[number]:self._ends[number]] @ vector))
        return scores


def _reduce(matrix: np.ndarray, above: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Above ``above`` passages, the matrix's principal axes and its rows on them.

    Sentence vectors of one knowledge base share most of their variance in few directions, so the
    rows' dot products on ``REDUCED_DIMENSIONS`` principal axes order articles almost as the full
    cosines do; ``scores`` then re-scores the head exactly.
    """
    if len(matrix) <= above or matrix.shape[1] <= REDUCED_DIMENSIONS:
        return None, matrix
    # The axes from a sample of rows: as good as from all of them, and a start does not wait.
    sample = matrix[np.linspace(0, len(matrix) - 1, min(len(matrix), 8192)).astype(int)]
    _, _, axes = np.linalg.svd(sample, full_matrices=False)
    basis = np.ascontiguousarray(axes[:REDUCED_DIMENSIONS].T, dtype=np.float32)
    return basis, np.ascontiguousarray(matrix @ basis)
