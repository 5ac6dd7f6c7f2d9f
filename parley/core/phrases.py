"""Recognising the few things the dialogue handles itself: greetings, thanks, asking for a person.

Patterns match accent-folded, lower-cased text, so "parler à un humain" and "parler a un humain"
are the same request.
"""

from __future__ import annotations

import re
import unicodedata

_PERSON = re.compile(
    r"""
    \b(human|real\ person|live\ (agent|person|chat)|(customer\ )?(service|support)\ (agent|rep|representative)
       |representative|operator|someone\ real|an?\ agent)\b
    | ^(an?\ )?(agent|person)(\ please|\ pls)?[\s!.?]*$
    | \b(talk|speak|chat)\ (to|with)\ (a|an|some|your)?\ ?(person|people|someone|somebody|agent|staff|team)\b
    # Spanish
    | \b(hablar|habla)\ con\ (una\ persona|un\ agente|alguien|un\ humano|un\ asesor)\b
    | \b(persona\ real|agente\ humano|un\ humano)\b
    # French
    | \bparler\ (a|avec)\ (un|une|quelqu'?un)\b | \b(un\ humain|conseiller|une\ vraie\ personne|vraie\ personne)\b
    # German
    | \b(mit\ )?(einem|einer)\ (menschen|mitarbeiter(in)?|berater(in)?)\b | \b(echten\ menschen|kundenberater)\b
    """,
    re.VERBOSE,
)

_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|good\ (morning|afternoon|evening)|hola|buenos\ dias|buenas|bonjour|bonsoir"
    r"|salut|hallo|guten\ (tag|morgen|abend)|moin|servus)"
    r"(\ there)?[\s!.,]*$",
    re.VERBOSE,
)

_THANKS = re.compile(
    r"^(thanks?(\ you)?(\ so\ much)?|thx|ty|cheers|great,?\ thanks|gracias|muchas\ gracias"
    r"|merci(\ beaucoup)?|danke(\ schon|\ sehr)?)[\s!.,]*$"
)


def fold(text: str) -> str:
    """Lower-case, strip accents and collapse white space, for matching only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.split())


def asks_for_person(text: str) -> bool:
    return _PERSON.search(fold(text)) is not None


def is_greeting(text: str) -> bool:
    return _GREETING.match(fold(text)) is not None


def is_thanks(text: str) -> bool:
    return _THANKS.match(fold(text)) is not None


# Greetings and thanks give their language away even in one word, where a detector cannot.
_LANGUAGE_WORDS = (
    ("es", re.compile(r"^(hola|buenos\ dias|buenas(\ tardes|\ noches)?|gracias|muchas\ gracias)[\s!.,]*$")),
    ("fr", re.compile(r"^(bonjour|bonsoir|salut|merci(\ beaucoup)?)[\s!.,]*$")),
    ("de", re.compile(r"^(hallo|guten\ (tag|morgen|abend)|servus|moin|danke(\ schon|\ sehr)?)[\s!.,]*$")),
    ("en", re.compile(r"^(hi|hello|hey|good\ (morning|afternoon|evening)|thanks?(\ you)?|thx)[\s!.,]*$")),
)


def language_of(text: str) -> str | None:
    """The language of a greeting or thanks ("hola": es), else None."""
    folded = fold(text)
    return next((language for language, words in _LANGUAGE_WORDS if words.match(folded)), None)
