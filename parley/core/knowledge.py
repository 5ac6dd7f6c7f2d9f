"""Knowledge-base articles and the hybrid index over them: lexical (scikit-learn TF-IDF) and dense.

Two TF-IDF views of each article are compared with the question by cosine similarity: stemmed
words and word pairs (meaning), and character n-grams inside words (typos, plurals, "pwd" vs
"password" style variants). The confidence is the mean of the two cosines, in [0, 1]. On the sample
knowledge base this beat BM25 on paraphrases and, unlike a BM25 score, separates "no article
answers this" from a weak match (figures in ``bench/answer.py`` and the retrieval tests).

With an embedder (the default install has one: ``parley.stores.embeddings``), the articles'
passages are also compared with the question as sentence vectors (``core.dense``), and the two
rankings are fused by reciprocal rank (RRF, k=60): an article either view ranks high comes first.
Its confidence is then the cosine of its best passage with the question, a score that means the
same on any knowledge base; the threshold below which the bot says it is not sure
(``knowledge.min_confidence``) was chosen on data by ``bench/threshold.py``.

Pure computation: articles come in as values (``parley.stores.knowledge`` reads the files); the index is built
once and only read afterwards, so one index serves every worker thread.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import Stemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from parley.core.dense import DenseIndex, Embedder
from parley.core.lexical import QueryVectors
from parley.core.stemming import ENGLISH, snowball_language

RRF_K = 60  # the constant of Cormack et al. (2009): ranks past the first few count little

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Article:
    id: str
    title: str
    body: str
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    category: str = ""
    url: str | None = None  # the article on the public help centre, cited with the answer


@dataclass(frozen=True, slots=True)
class Hit:
    article: Article
    confidence: float


class _Stem:
    """Lower-case and stem every word in one language (English by default); picklable, so a
    trained model can reuse it."""

    def __init__(self, language: str = ENGLISH) -> None:
        self.language = snowball_language(language)
        self._stemmer = Stemmer.Stemmer(self.language)

    def __call__(self, text: str) -> str:
        return " ".join(self._stemmer.stemWords(_WORD.findall(text.lower())))

    def __getstate__(self) -> dict[str, object]:
        # English keeps the empty state artefacts pickled before languages were stored with.
        return {} if self.language == ENGLISH else {"language": self.language}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(str(state.get("language", ENGLISH)))

    def __repr__(self) -> str:  # the same in every process (not an address): cache keys compare it
        return f"Stem({self.language!r})"


# The public name; artefacts pickled before name the class itself.
Stem = _Stem


def make_vectorizer(language: str = ENGLISH) -> FeatureUnion:
    """The text features shared by retrieval and the trained classifier, stemmed in ``language``."""
    stem = _Stem(language)
    # Stop words are compared after stemming, so they are stemmed too (and stemmed twice, because
    # scikit-learn checks the list by preprocessing it again and Snowball is not idempotent).
    # Only English has a list here: another language keeps every word (its TF-IDF weights still
    # discount the common ones), rather than losing English words that mean something in it.
    once = {stem(word) for word in ENGLISH_STOP_WORDS} if stem.language == ENGLISH else set()
    stop_words = sorted(once | {stem(word) for word in once}) or None
    return FeatureUnion([
        ("words", TfidfVectorizer(preprocessor=stem, ngram_range=(1, 2), sublinear_tf=True,
                                  stop_words=stop_words, token_pattern=r"(?u)\b\w+\b")),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                  lowercase=True)),
    ])


def article_text(article: Article) -> str:
    return " ".join([article.title, *article.questions, " ".join(article.tags), article.body])


class KnowledgeIndex:
    """Top-k articles for a question, each with a confidence in [0, 1]."""

    def __init__(self, articles: Iterable[Article], *, embedder: Embedder | None = None,
                 vectors: dict[str, np.ndarray] | None = None, language: str = ENGLISH) -> None:
        """``vectors``: passage vectors computed before by the same ``embedder`` (a cache);
        ``language``: the articles' (``knowledge.language``), whose stemmer the index and its
        questions use."""
        self.articles: tuple[Article, ...] = tuple(articles)
        if not self.articles:
            raise ValueError("the knowledge base has no articles")
        # One inverted index (feature-major) per view: a question touches only the articles
        # sharing its n-grams, which keeps a search under a millisecond at 10,000 articles
        # (bench/answer.py). Searching view by view skips the union's per-call machinery
        # (joblib dispatch, stacking), half of a search's time on the sample knowledge base.
        # fit_transform analyses each text once (fit, then transform, analysed it twice: a
        # quarter of a 10,000-article start).
        texts = [article_text(a) for a in self.articles]
        self._views = tuple((QueryVectors(view), matrix.T.tocsr()) for view, matrix in
                            ((view, view.fit_transform(texts)) for _, view in make_vectorizer(language).transformer_list))
        self._by_id = {article.id: article for article in self.articles}
        self._numbers = {article.id: number for number, article in enumerate(self.articles)}
        self.language = snowball_language(language)
        # Another stemmer ranks differently: answer caches keyed on the version must not mix them.
        suffix = "" if self.language == ENGLISH else f"-{self.language}"
        self.version = _content_hash(self.articles) + suffix
        self.dense = DenseIndex(self.articles, embedder, vectors) if embedder is not None else None
        if embedder is not None:
            self.version = f"{self.version}-{embedder.version[:6]}"

    def __len__(self) -> int:
        return len(self.articles)

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def search(self, question: str, k: int = 3) -> list[Hit]:
        """Best articles first; empty when nothing in the question resembles any article."""
        lexical = self.lexical_scores(question)
        if self.dense is None:
            return _top(self.articles, lexical, lexical, k)
        dense = self.dense.scores(question)
        fused = _rrf(lexical) + _rrf(dense)
        return _top(self.articles, fused, np.clip(dense, 0.0, 1.0), k)

    def relevance(self, question: str, article_id: str) -> float:
        """How near ``question`` is to the article, on the scale of ``search``'s confidences."""
        number = self._numbers[article_id]
        scores = self.dense.scores(question) if self.dense is not None else self.lexical_scores(question)
        return round(float(np.clip(scores[number], 0.0, 1.0)), 4)

    def lexical_scores(self, question: str) -> np.ndarray:
        """The mean of the two TF-IDF cosines, per article."""
        hits = [vector(question) @ postings for vector, postings in self._views]
        return sum(hit.toarray().ravel() for hit in hits) / len(self._views)


def _rrf(scores: np.ndarray) -> np.ndarray:
    """Reciprocal-rank scores: 1 / (k + rank), rank 1 for the best; nothing for a score of 0."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return np.where(scores > 0, 1.0 / (RRF_K + ranks), 0.0)


def _top(articles: Sequence[Article], order: np.ndarray, confidence: np.ndarray, k: int) -> list[Hit]:
    k = min(k, len(order))
    best = np.argpartition(-order, k - 1)[:k]
    ranked = best[np.argsort(-order[best], kind="stable")]
    return [Hit(articles[i], round(float(confidence[i]), 4)) for i in ranked if order[i] > 0]


def _content_hash(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.id):
        for part in (article.id, article.title, article.body, *article.questions):
            digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:12]
