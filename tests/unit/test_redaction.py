"""Redaction finds real phone numbers, cards and IBANs, and leaves dates, times, IP addresses and
order numbers as they were written."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.data.redaction import Redactor
from parley.errors import ConfigError
from parley.settings import load_settings

US = Redactor.build({}, b"key")
US_AND_GB = Redactor.build({}, b"key", ["US", "GB"])


@pytest.mark.parametrize("text", [
    "ordered on 2026-01-31, delivered 31/01/2026 at 14:30",
    "the log says 2026-01-31 14:30:00 and 2026-01-31T14:30:00Z",
    "the server at 192.168.100.200 (and 10.0.0.1, 172.16.254.1) is down",
    "app version 1.2.3.4 on build 20260131",
    "order 12345678, 3 items at 12.50, tracking 1Z999AA10123456784",
    "not a card: 1234 5678 9012 3456",
    "amount 1,234,567.89 EUR",
])
def test_dates_addresses_and_numbers_that_are_no_phone_stay(text: str) -> None:
    assert US_AND_GB.text(text) == text


@pytest.mark.parametrize(("text", "redacted"), [
    ("call +1 (212) 736-5000", "call [PHONE]"),
    ("or (212) 736-5000, or 415-867-5309", "or [PHONE], or [PHONE]"),
    ("London: +44 20 7946 0958", "London: [PHONE]"),
    ("Berlin +49 30 901820, Paris +33 1 42 68 53 00", "Berlin [PHONE], Paris [PHONE]"),
    ("Mumbai +91 98765 43210; Tokyo +81 3-3224-9999", "Mumbai [PHONE]; Tokyo [PHONE]"),
    ("Sydney +61 2 9374 4000 / São Paulo +55 11 3003-1234", "Sydney [PHONE] / São Paulo [PHONE]"),
])
def test_real_international_numbers_are_phones(text: str, redacted: str) -> None:
    assert US.text(text) == redacted


def test_national_numbers_are_read_in_the_configured_regions() -> None:
    assert US.text("ring 020 7946 0958") == "ring 020 7946 0958"  # a London number, written the UK way
    assert US_AND_GB.text("ring 020 7946 0958") == "ring [PHONE]"
    assert US_AND_GB.text("ring (212) 736-5000") == "ring [PHONE]"


@pytest.mark.parametrize(("text", "redacted"), [
    ("card 4111 1111 1111 1111, exp 12/29", "card [CARD], exp 12/29"),
    ("amex 3782-822463-10005", "amex [CARD]"),
    ("pay to DE89 3704 0044 0532 0130 00 please", "pay to [IBAN] please"),
    ("iban gb82west12345698765432.", "iban [IBAN]."),
    ("not a card: 4111 1111 1111 1112", "not a card: 4111 1111 1111 1112"),
])
def test_cards_pass_luhn_and_ibans_their_check(text: str, redacted: str) -> None:
    assert US.text(text) == redacted


def test_a_mistyped_iban_is_no_iban() -> None:
    assert "[IBAN]" not in US.text("DE89 3704 0044 0532 0130 01")


def test_custom_patterns_and_emails_are_kept() -> None:
    redactor = Redactor.build({"order": r"\bA-\d{6}\b"}, b"key")
    assert redactor.text("order A-123456 for jane.doe@example.com, call +44 20 7946 0958") == \
        "order [ORDER] for [EMAIL], call [PHONE]"


def test_phone_regions_are_validated_at_start(tmp_path: Path) -> None:
    path = tmp_path / "parley.yaml"
    path.write_text("data:\n  phone_regions: [us, XX]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.phone_regions: Value error, XX: not a region phonenumbers knows"):
        load_settings(path, environ={})
    path.write_text("data:\n  phone_regions: [gb]\n", encoding="utf-8")
    assert load_settings(path, environ={}).data.phone_regions == ("GB",)
