"""Knowledge-base articles and the lexical index over them (scikit-learn TF-IDF).

Two TF-IDF views of each article are compared with the question by cosine similarity: stemmed
words and word pairs (meaning), and character n-grams inside words (typos, plurals, "pwd" vs
"password" style variants). The confidence is the mean of the two cosines, in [0, 1]. On the sample
knowledge base this beat BM25 on paraphrases and, unlike a BM25 score, separates "no article
answers this" from a weak match (figures in ``bench/answer.py`` and the retrieval tests).

Pure computation: articles come in as values (``parley.stores.knowledge`` reads the files); the index is built
once and only read afterwards, so one index serves every worker thread.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sklearn
import Stemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.pipeline import FeatureUnion

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
    """Lower-case and stem every word; picklable, so a trained model can reuse it."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")

    def __call__(self, text: str) -> str:
        return " ".join(self._stemmer.stemWords(_WORD.findall(text.lower())))

    def __getstate__(self) -> dict[str, object]:
        return {}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()


def make_vectorizer() -> FeatureUnion:
    """The text features shared by retrieval and the trained classifier."""
    stem = _Stem()
    # Stop words are compared after stemming, so they are stemmed too (and stemmed twice, because
    # scikit-learn checks the list by preprocessing it again and Snowball is not idempotent).
    once = {stem(word) for word in ENGLISH_STOP_WORDS}
    stop_words = sorted(once | {stem(word) for word in once})
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

    def __init__(self, articles: Iterable[Article]) -> None:
        self.articles: tuple[Article, ...] = tuple(articles)
        if not self.articles:
            raise ValueError("the knowledge base has no articles")
        union = make_vectorizer()
        union.fit([article_text(a) for a in self.articles])
        # One inverted index (feature-major) per view: a question touches only the articles
        # sharing its n-grams, which keeps a search under a millisecond at 10,000 articles
        # (bench/answer.py). Searching view by view skips the union's per-call machinery
        # (joblib dispatch, stacking), half of a search's time on the sample knowledge base.
        texts = [article_text(a) for a in self.articles]
        self._views = tuple((view, view.transform(texts).T.tocsr()) for _, view in union.transformer_list)
        self._by_id = {article.id: article for article in self.articles}
        self.version = _content_hash(self.articles)

    def __len__(self) -> int:
        return len(self.articles)

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def search(self, question: str, k: int = 3) -> list[Hit]:
        """Best articles first; empty when nothing in the question resembles any article."""
        # The vectorizers were validated when fitted; re-validating every question costs a third.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            hits = [view.transform([question]) @ postings for view, postings in self._views]
        scores = sum(hit.toarray().ravel() for hit in hits) / len(self._views)
        k = min(k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        ranked = best[np.argsort(-scores[best])]
        return [Hit(self.articles[i], round(float(scores[i]), 4)) for i in ranked if scores[i] > 0]


def _content_hash(articles: Sequence[Article]) -> str:
    digest = hashlib.sha256()
    for article in sorted(articles, key=lambda a: a.id):
        for part in (article.id, article.title, article.body, *article.questions):
            digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()[:12]
