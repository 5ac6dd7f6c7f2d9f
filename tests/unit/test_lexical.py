"""The fast query vectors are the fitted vectorizer's own: same features, same weights."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from parley.core.knowledge import make_vectorizer
from parley.core.lexical import QueryVectors

CORPUS = ["How do I reset my password?", "Refunds take five to seven business days.",
          "Shipping to Canada costs extra; orders over $50 ship free.", "Cancel or pause a subscription",
          "¿Cómo cambio mi contraseña?", "password password reset reset reset"]
VIEWS = [view.fit(CORPUS) for _, view in make_vectorizer().transformer_list]
# Words of the corpus, so generated questions share features with it (and some that do not).
WORDS = sorted({word for text in CORPUS for word in text.split()}) + ["zebra", "pwd", "", "!!"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=12).map(" ".join))
def test_a_query_vector_equals_the_vectorizers_transform(question: str) -> None:
    for view in VIEWS:
        expected = view.transform([question]).toarray()
        actual = QueryVectors(view)(question).toarray()
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


def test_a_question_sharing_nothing_with_the_articles_is_an_empty_row() -> None:
    for view in VIEWS:
        row = QueryVectors(view)("qqqq")
        assert row.shape == (1, len(view.vocabulary_)) and row.nnz == 0
