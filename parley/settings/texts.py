"""The ``texts:`` section: every fixed text the customer reads, with a variant per language.

Written key first, so a text's translations sit together and a missing one shows::

    texts:
      default_language: en
      languages: [en, es]
      greeting:
        en: Hi! How can I help?
        es: ¡Hola! ¿En qué puedo ayudarte?

The keys and the placeholders each may use are ``parley.core.texts.KEYS``; a key or placeholder
it does not know, or a language not listed in ``languages``, fails at start with file, key and
reason. A text missing in a language falls back to the default language's (``gaps`` lists them
for ``parley check-config``); one missing in the default language falls back to the built-in
English when that is the default, and is an error otherwise (its customers would read English).
"""

from __future__ import annotations

import re
from typing import Any

from babel import Locale, UnknownLocaleError
from pydantic import Field, create_model, field_validator, model_validator

from parley.core import desk_texts
from parley.core.texts import ENGLISH, KEYS, Texts
from parley.settings.sections import Model

_CODE = re.compile(r"^[a-z]{2,3}$")


def _check_placeholders(where: str, text: str, allowed: set[str] | frozenset[str]) -> None:
    if not text.strip():
        raise ValueError(f"{where}: empty (leave the key out to keep the default)")
    try:
        used = desk_texts.placeholders(text)
    except ValueError as exc:  # a lone { or }
        raise ValueError(f"{where}: {exc} (write {{{{ and }}}} for literal braces)") from None
    unknown = sorted(used - allowed)
    if unknown:
        may = ", ".join(f"{{{name}}}" for name in sorted(allowed)) or "none"
        raise ValueError(f"{where}: unknown placeholder {{{unknown[0]}}} (this text may use: {may})")


def _check_variants(cls: type, value: Any, info: Any) -> Any:
    for language, text in (value or {}).items():
        _check_placeholders(language, text, KEYS[info.field_name])
    return value


_Variants = create_model(  # one optional field per key: an unknown key is refused by name
    "_Variants", __base__=Model,
    __validators__={"placeholders": field_validator(*KEYS)(_check_variants)},
    **{key: (dict[str, str], Field(default_factory=dict)) for key in KEYS},  # type: ignore[call-overload]
)


class TextsSettings(_Variants):  # type: ignore[misc, valid-type]
    default_language: str = "en"
    languages: tuple[str, ...] = ()  # default: the default language alone
    # Guess the language from the customer's words when the channel does not say (py3langid,
    # restricted to ``languages``); off: the channel's hint, else the default language.
    detect_language: bool = True
    quick_replies: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # What the reps read in the desk (``parley.core.desk_texts``: key -> text), in one language, the
    # reps' own: ``desk_language``, else the default language (it names the weekdays in {day}).
    desk: dict[str, str] = Field(default_factory=dict)
    desk_language: str | None = None

    @field_validator("desk")
    @classmethod
    def _desk_texts(cls, texts: dict[str, str]) -> dict[str, str]:
        for key, text in texts.items():
            if key not in desk_texts.ALLOWED:
                raise ValueError(f"{key}: not a desk text (the keys are DeskTexts' fields, "
                                 "parley/core/desk_texts.py, listed in the README)")
            _check_placeholders(key, text, desk_texts.ALLOWED[key])
        return texts

    @field_validator("desk_language")
    @classmethod
    def _known_desk_language(cls, code: str | None) -> str | None:
        return None if code is None else cls._known_code(code)

    @field_validator("default_language")
    @classmethod
    def _known_code(cls, code: str) -> str:
        if not _CODE.match(code):
            raise ValueError(f"{code!r} is not a two- or three-letter language code like en, es, de")
        try:
            Locale.parse(code)
        except (ValueError, UnknownLocaleError):
            raise ValueError(f"{code!r} is not a language CLDR knows") from None
        return code

    @model_validator(mode="after")
    def _known_languages(self) -> TextsSettings:
        for code in self.languages:
            self._known_code(code)
        listed = set(self.all_languages)
        for key in (*KEYS, "quick_replies"):
            strays = sorted(set(getattr(self, key)) - listed)
            if strays:
                raise ValueError(f"{key}.{strays[0]}: language not in texts.languages "
                                 f"({', '.join(self.all_languages)})")
        if self.default_language != "en":
            missing = [key for key in KEYS if self.default_language not in getattr(self, key)]
            if missing:
                raise ValueError(f"{missing[0]}: no {self.default_language} text, and "
                                 f"{self.default_language} is the default language (every text needs one)")
        return self

    @property
    def all_languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.default_language, *self.languages)))

    def gaps(self) -> list[str]:
        """The texts a language lacks, each read in the default language instead."""
        default = self.default_language
        return [f"texts.{key}.{language}: not written, {default} is used"
                for language in self.all_languages if language != default
                for key in (*KEYS, "quick_replies") if language not in getattr(self, key)
                and (key != "quick_replies" or default in self.quick_replies)]

    def desk_texts(self) -> desk_texts.DeskTexts:
        """The reps' texts: English, with this section's ``desk`` texts in their place."""
        # A text without placeholders is shown as written, so its {{ and }} are read here.
        texts = {key: text if desk_texts.ALLOWED[key] else text.format() for key, text in self.desk.items()}
        # The desk's language: as said, else the customer's default when the desk's texts are
        # written here (in it, presumably), else English, the built-in texts' own.
        language = self.desk_language or (self.default_language if self.desk else "en")
        return desk_texts.DeskTexts(language=language, **texts)

    def catalog(self, *, greeting: str | None = None, quick_replies: tuple[str, ...] = ()) -> Texts:
        """The core's ``Texts``; ``bot.greeting`` and ``bot.quick_replies`` (the older place for
        them) fill the default language's when this section does not give them."""
        default = self.default_language
        texts: dict[str, dict[str, str]] = {language: {} for language in self.all_languages}
        for key in KEYS:
            for language, text in getattr(self, key).items():
                texts[language][key] = text
        fallback = {**ENGLISH, **({"greeting": greeting} if greeting else {})}
        for key, text in fallback.items():
            texts[default].setdefault(key, text)
        replies = dict(self.quick_replies)
        if quick_replies:
            replies.setdefault(default, tuple(quick_replies))
        return Texts(default=default, texts=texts, quick_replies=replies)
