"""One question's TF-IDF vector, fast: the arithmetic of ``TfidfVectorizer.transform`` for one text.

A search transforms one short question per view. scikit-learn's ``transform`` is written for
batches: for one question it spends ~270 us per view on its checks and matrix plumbing and ~10 us
on the analysis itself (bench/answer.py; 0.55 ms of every LLM answer's 8 ms on the hub, with two
views). ``QueryVectors`` keeps the fitted vectorizer's own analyzer, vocabulary and idf weights and
does only the arithmetic (counts, sublinear tf, idf, l2 norm), so its vectors are the vectorizer's
(tests/unit/test_lexical.py compares them on generated text).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer


class QueryVectors:
    def __init__(self, view: TfidfVectorizer) -> None:
        if view.binary or view.norm not in ("l2", None) or not view.use_idf:
            raise ValueError("QueryVectors follows TfidfVectorizer(norm='l2' or None, use_idf=True, binary=False)")
        self._analyze = view.build_analyzer()
        self._vocabulary: dict[str, int] = view.vocabulary_
        self._idf = np.asarray(view.idf_, dtype=np.float64)
        self._sublinear = view.sublinear_tf
        self._normalise = view.norm == "l2"

    def __call__(self, text: str) -> sp.csr_array:
        """The 1 x features row ``view.transform([text])`` gives."""
        vocabulary = self._vocabulary
        counts = Counter(vocabulary[feature] for feature in self._analyze(text) if feature in vocabulary)
        indices = np.fromiter(sorted(counts), dtype=np.int32, count=len(counts))
        data = np.fromiter((counts[i] for i in indices), dtype=np.float64, count=len(indices))
        if self._sublinear:
            data = np.log(data) + 1.0
        data *= self._idf[indices]
        if self._normalise and len(data):
            data /= np.sqrt(np.dot(data, data))
        return sp.csr_array((data, indices, np.array([0, len(indices)], dtype=np.int32)),
                            shape=(1, len(self._idf)))
