"""Guessing a message's language, offline: py3langid (langid.py's maintained fork, Naive Bayes over
byte n-grams, its model inside the wheel) restricted to the configured languages.

The model takes a few seconds to unpickle and ~0.5 ms per message (``bench/language.py``), so it is
read once per process, at start, and shared read-only by every worker.
"""

from __future__ import annotations

from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier


@cache
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = [code for code in languages if code in identifier.nb_classes]
    identifier.set_languages(known or None)
    return identifier


class LangidDetector:
    """``parley.core.texts.LanguageDetector``: the likeliest of ``languages`` and its probability."""

    def __init__(self, languages: tuple[str, ...]) -> None:
        self.languages = tuple(sorted(set(languages)))

    def load(self) -> LangidDetector:
        """Read the model now (at start), so that no customer's first answer waits for it."""
        if len(self.languages) > 1:
            _identifier(self.languages)
        return self

    def __call__(self, text: str) -> tuple[str, float] | None:
        if len(self.languages) < 2:  # one language: nothing to choose between
            return None
        language, probability = _identifier(self.languages).classify(text)
        return str(language), float(probability)
