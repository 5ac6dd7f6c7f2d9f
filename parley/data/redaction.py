"""Removing personal data from exported text: emails, phone numbers, card numbers, and patterns
the admin configures (``data.redact_patterns``). Pure functions over strings.

Card numbers are checked with the Luhn sum so that long order or tracking numbers survive, unless
they look like a phone number. Identifiers (customer, conversation) are not masked but replaced by
a keyed hash, so one customer's conversations still group together without revealing who it was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13 to 19 digits, optionally grouped by spaces or dashes (how people type card numbers).
CARD = re.compile(r"(?<![\w+])(?:\d[ -]?){12,18}\d(?!\w)")
# An international (+...) or a long national number, with the usual separators.
PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d ().-]{5,}\d|\(?\d[\d ().-]{7,}\d)(?!\w)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces each match with ``[NAME]``: built-ins first, then the configured patterns."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    key: bytes = b""

    @classmethod
    def build(cls, patterns: Mapping[str, str], key: bytes) -> Redactor:
        return cls(tuple((name.upper(), re.compile(regex)) for name, regex in patterns.items()), key)

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        value = CARD.sub(_card, value)
        value = EMAIL.sub("[EMAIL]", value)
        value = PHONE.sub(_phone, value)
        for name, pattern in self.patterns:
            value = pattern.sub(f"[{name}]", value)
        return value

    def pseudonym(self, value: str) -> str:
        """A stable stand-in for an identifier; without the key it cannot be turned back."""
        return hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if luhn_valid(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    # Dates and short order numbers look alike; a national number has 9 digits or more.
    text = match.group()
    digits = re.sub(r"\D", "", text)
    return "[PHONE]" if len(digits) >= (7 if text.startswith("+") else 9) else text
