"""The hybrid kind's calibration: one temperature over the SVM's scores."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from parley.core.knowledge import KnowledgeIndex
from parley.data.temperature import TemperatureScaledSVM
from parley.data.training import fingerprint, knowledge_examples, train

TEXTS = {
    "hours": ["when are you open", "opening hours", "are you open on sunday", "what time do you close",
              "hours on saturday", "open late tonight"],
    "parking": ["where can i park", "is there parking", "car park nearby", "parking for bikes",
                "where do i leave my car", "free parking"],
    "refunds": ["can i get a refund", "money back please", "refund my order", "how long do refunds take",
                "refund to my card", "i want my money back"],
}


def fitted() -> tuple[TfidfVectorizer, TemperatureScaledSVM]:
    texts = [text for group in TEXTS.values() for text in group]
    labels = [intent for intent, group in TEXTS.items() for _ in group]
    words = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    return words, TemperatureScaledSVM(C=1.0, random_state=0).fit(words.fit_transform(texts), labels)


def test_probabilities_keep_the_svms_ranking_and_sum_to_one() -> None:
    words, model = fitted()
    questions = words.transform(["is the car park free", "refund please", "open on monday?", "hello"])
    probabilities = model.predict_proba(questions)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    scores = model.svm_.decision_function(questions)
    assert np.array_equal(probabilities.argmax(axis=1), scores.argmax(axis=1))
    assert list(model.predict(questions[:3])) == ["parking", "refunds", "hours"]


def test_a_clear_question_is_more_confident_than_an_unrelated_one() -> None:
    words, model = fitted()
    questions = words.transform(["when are you open", "xylophone quartz"])
    clear, unrelated = model.predict_proba(questions).max(axis=1)
    assert clear > unrelated and 0 < model.temperature_


def test_two_intents_get_two_probabilities() -> None:
    texts = TEXTS["hours"] + TEXTS["parking"]
    words = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    labels = ["hours"] * 6 + ["parking"] * 6
    model = TemperatureScaledSVM(random_state=0).fit(words.fit_transform(texts), labels)
    question = words.transform(["where do i park my car"])
    assert model.predict_proba(question).shape == (1, 2) and model.predict(question)[0] == "parking"


def test_parley_trains_the_temperature_kind_on_the_knowledge_base(hybrid_index: KnowledgeIndex) -> None:
    model, metrics = train(knowledge_examples(hybrid_index.articles), kind="hybrid-svm-temperature", seed=3)
    assert isinstance(model.pipeline.named_steps["classifier"], TemperatureScaledSVM)
    assert metrics.accuracy > 0.7  # held-out example questions of the sample's articles: measured 73.9%
    again, _ = train(knowledge_examples(hybrid_index.articles), kind="hybrid-svm-temperature", seed=3)
    assert fingerprint(again) == fingerprint(model)  # same data and seed: the same registered version
    assert model.predict("I forgot my password").intent == "reset-password"
