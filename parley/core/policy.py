"""What the admin configures about the conversation (``Policy``), with the customer-facing texts."""

from __future__ import annotations

from dataclasses import dataclass, replace

from parley.core.handoff import HandoffRules
from parley.core.relay import HandoffTexts
from parley.core.texts import ENGLISH, Texts

TALK_TO_PERSON = ENGLISH["talk_to_person"]
# Envelope.action of the one message of a flood that gets a notice instead of an answer; the
# webhook side decides which (``parley.webhooks.throttle``), the dialogue what to say (nothing while a
# person has the conversation: the message is relayed to them like any other).
THROTTLED = "throttled"
FLOOD_NOTICE = ENGLISH["flood_notice"]
# HandoffTexts' fields and the ``texts:`` keys they are read from.
_HANDOFF_KEYS = {"already_requested": "handoff_already_requested", "outside_hours": "outside_hours",
                 "reminder": "reminder", "joined": "joined", "joined_anonymous": "joined_anonymous",
                 "handed_back": "handed_back", "rate": "rating_prompt", "rated": "rated",
                 "engine_failed": "engine_failed", "message_failed": "message_failed", "team": "team"}
_POLICY_KEYS = ("greeting", "not_sure", "not_sure_without_people", "handoff_requested", "handoff_unavailable",
                "thanks", "media_only", "flood_notice", "talk_to_person")


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What the admin configures about the conversation, with the customer-facing texts.

    The text fields hold one language's texts; with ``texts`` (every configured language),
    ``in_language`` gives the same policy speaking another one.
    """

    greeting: str
    min_confidence: float = 0.14
    history_turns: int = 20
    history_chars: int = 8000
    quick_replies: tuple[str, ...] = ()
    not_sure: str = ENGLISH["not_sure"]
    # The same without a reps' channel: no person is offered who would never come.
    not_sure_without_people: str = ENGLISH["not_sure_without_people"]
    handoff_requested: str = ENGLISH["handoff_requested"]
    # Without a reps' channel nobody can reply in the chat: say so, rather than promise a person.
    handoff_unavailable: str = ENGLISH["handoff_unavailable"]
    thanks: str = ENGLISH["thanks"]
    media_only: str = ENGLISH["media_only"]
    flood_notice: str = FLOOD_NOTICE
    talk_to_person: str = TALK_TO_PERSON
    handoff: HandoffRules = HandoffRules()
    handoff_texts: HandoffTexts = HandoffTexts()
    texts: Texts | None = None
    language: str | None = None  # the language of the text fields, when ``texts`` is set

    @classmethod
    def speaking(cls, texts: Texts, **settings: object) -> Policy:
        """A policy whose texts come from the catalog, in its default language."""
        return cls(greeting="", texts=texts, **settings).in_language(texts.default)  # type: ignore[arg-type]

    def in_language(self, language: str | None) -> Policy:
        """This policy with every customer-facing text in ``language`` (itself without a catalog)."""
        if self.texts is None or language is None or language == self.language:
            return self
        texts = self.texts
        handoff_texts = HandoffTexts(desk=self.handoff_texts.desk, **{name: texts.get(key, language)
                                                                     for name, key in _HANDOFF_KEYS.items()})
        return replace(self, language=language, quick_replies=texts.replies(language),
                       handoff_texts=handoff_texts,
                       **{key: texts.get(key, language) for key in _POLICY_KEYS})

    def talk_buttons(self) -> tuple[str, ...]:
        """Every language's "talk to a person" button: a press in any of them asks for a person."""
        if self.texts is None:
            return (self.talk_to_person,)
        return tuple(dict.fromkeys(self.texts.get("talk_to_person", lang) for lang in self.texts.languages))
