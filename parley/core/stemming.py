"""Which Snowball stemmer reads a knowledge base: light, so settings can check it at start."""

from __future__ import annotations

import Stemmer
from babel import Locale, UnknownLocaleError

ENGLISH = "english"


def snowball_language(language: str) -> str:
    """The Snowball stemmer's name for ``language``, a code ("es") or a stemmer's name ("spanish");
    ValueError naming the languages there are."""
    value = language.strip().casefold()
    if value in Stemmer.algorithms():
        return value
    try:
        name = Locale(Locale.parse(value.replace("-", "_")).language).english_name  # pt-BR: Portuguese
    except (ValueError, UnknownLocaleError):
        name = None
    named = (name or "").casefold()
    if named in Stemmer.algorithms():
        return named
    raise ValueError(f"{language!r} has no Snowball stemmer; use one of: {', '.join(Stemmer.algorithms())} "
                     "(or its two-letter code, such as es, fr, de)")
