"""Removing personal data from exported text: emails, phone numbers, card numbers, IBANs, and
patterns the admin configures (``data.redact_patterns``). Pure functions over strings.

Phone numbers are found by ``phonenumbers`` (Google's libphonenumber): a number is redacted when
it is a valid number of its country, written internationally (+44 20 7946 0958) or nationally in
one of ``data.phone_regions`` ((212) 736-5000 for US). Its matcher knows what dates, times, IP
addresses and order numbers look like, which a regular expression did not. Card numbers are
digit runs of card length that pass the Luhn check, and IBANs pass their ISO 7064 check (both
with ``python-stdnum``), so long order or tracking numbers survive.

Identifiers (customer, conversation) are not masked but replaced by a keyed hash, so one
customer's conversations still group together without revealing who it was.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 13 to 19 digits, optionally grouped by spaces or dashes (how people type card numbers).
CARD = re.compile(r"(?<![\w+])(?:\d[ -]?){12,18}\d(?!\w)")
# A country code, two check digits, then up to 30 letters or digits, in groups of four or not.
IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Z0-9])", re.IGNORECASE)
# Below five digits close together nothing can be a phone number: the matcher is not even asked.
_MAYBE_PHONE = re.compile(r"\d(?:\D{0,3}\d){4}")
DEFAULT_PHONE_REGIONS = ("US",)


@dataclass(frozen=True, slots=True)
class Redactor:
    """Replaces each match with ``[NAME]``: built-ins first, then the configured patterns."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    key: bytes = b""
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS

    @classmethod
    def build(cls, patterns: Mapping[str, str], key: bytes,
              phone_regions: Iterable[str] = DEFAULT_PHONE_REGIONS) -> Redactor:
        return cls(tuple((name.upper(), re.compile(regex)) for name, regex in patterns.items()), key,
                   tuple(phone_regions))

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        # IBANs first: the digits of one may pass the Luhn check and read as a card.
        value = IBAN.sub(_iban, value)
        value = CARD.sub(_card, value)
        value = EMAIL.sub("[EMAIL]", value)
        value = _phones(value, self.phone_regions)
        for name, pattern in self.patterns:
            value = pattern.sub(f"[{name}]", value)
        return value

    def pseudonym(self, value: str) -> str:
        """A stable stand-in for an identifier; without the key it cannot be turned back."""
        return hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _card(match: re.Match[str]) -> str:
    return "[CARD]" if luhn.is_valid(re.sub(r"\D", "", match.group())) else match.group()


def _iban(match: re.Match[str]) -> str:
    # The pattern may run on into the next word ("... 0130 00 please"): the longest valid prefix,
    # cut at a group boundary, is the IBAN, and the rest stays as written.
    text = match.group()
    cuts = [m.start() for m in re.finditer(" ", text)] + [len(text)]
    for cut in reversed(cuts):
        if iban.is_valid(text[:cut]):
            return "[IBAN]" + text[cut:]
    return text


def _phones(text: str, regions: tuple[str, ...]) -> str:
    if not _MAYBE_PHONE.search(text):
        return text
    spans: set[tuple[int, int]] = set()
    for region in regions:  # international numbers are found under any region; national ones in theirs
        spans.update((found.start, found.end) for found in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.VALID))
    for start, end in sorted(_outermost(spans), reverse=True):
        text = f"{text[:start]}[PHONE]{text[end:]}"
    return text


def _outermost(spans: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans not inside another (two regions may read one number with different extents)."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end))
    return kept
