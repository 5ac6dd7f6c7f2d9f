"""Every fixed text the customer reads, per language, and which language a conversation speaks.

The admin writes the texts in the YAML's ``texts:`` section (``parley.settings.texts`` validates
them against ``KEYS``); the core only looks them up. A text missing in a language falls back to the
default language's, so a half-translated file still answers (``parley check-config`` warns).

The language of a conversation (``choose``) is decided per message from, strongest first: a
message long enough for the detector to be sure of; the language the conversation already speaks
(so "ok" or "gracias" never flips it); the channel's hint (Telegram's ``language_code``, Slack's
user locale, the browser's language); a greeting or thanks whose words give it away ("hola"); the
detector's weaker guess on a conversation's first message; the default language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from babel import Locale, UnknownLocaleError
from babel.dates import get_day_names

from parley.core import phrases

# Each text and the placeholders it may use ({name} in the text, filled by the core).
KEYS: Mapping[str, frozenset[str]] = {
    "greeting": frozenset(),
    "not_sure": frozenset(),
    "not_sure_without_people": frozenset(),
    "thanks": frozenset(),
    "media_only": frozenset(),
    "flood_notice": frozenset(),
    "talk_to_person": frozenset(),  # the quick-reply button that asks for a person
    "handoff_requested": frozenset(),
    "handoff_unavailable": frozenset(),
    "handoff_already_requested": frozenset(),
    "outside_hours": frozenset({"day", "time", "zone"}),
    "reminder": frozenset({"minutes"}),
    "joined": frozenset({"name"}),
    "joined_anonymous": frozenset(),
    "handed_back": frozenset(),
    "rating_prompt": frozenset(),
    "rated": frozenset(),
    "engine_failed": frozenset(),
    "message_failed": frozenset(),
    "team": frozenset(),  # the author shown on reps' replies when their names are hidden
    # Text channels (Slack, Telegram, SMS, WhatsApp): the label before an answer's sources, the
    # line before numbered options on SMS, and the feedback buttons under a grounded answer.
    "source": frozenset(),
    "sources": frozenset(),
    "reply_with_number": frozenset(),
    "helpful": frozenset(),
    "not_helpful": frozenset(),
    # The web widget's own interface.
    "ui_open": frozenset(),
    "ui_close": frozenset(),
    "ui_input": frozenset(),
    "ui_send": frozenset(),
    "ui_typing": frozenset(),
    "ui_you": frozenset(),
    "ui_assistant": frozenset(),
    "ui_support": frozenset({"name"}),
    "ui_source": frozenset(),
    "ui_helpful": frozenset(),
    "ui_not_helpful": frozenset(),
    "ui_feedback_thanks": frozenset(),
    "ui_feedback_failed": frozenset(),
    "ui_too_fast": frozenset(),
    "ui_too_long": frozenset({"max"}),  # {max}: limits.max_text_chars
    "ui_reconnecting": frozenset(),
    "ui_offline": frozenset(),
    "ui_error": frozenset(),
    "ui_not_sent": frozenset(),
    "ui_attach": frozenset(),
    "ui_file_too_big": frozenset({"max"}),  # {max}: handoff.files.max_mb
    "ui_file_refused": frozenset(),
}
UI_KEYS = tuple(key for key in KEYS if key.startswith("ui_"))
# A message needs this many words, and the detector this probability, to change a conversation's
# language once it has one; a first message takes the detector's word at the lower bar.
SURE_WORDS = 3
SURE = 0.9
GUESS = 0.75


class LanguageDetector(Protocol):
    """The most likely of the configured languages for a text, with its probability; None if unsure."""

    def __call__(self, text: str) -> tuple[str, float] | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Texts:
    """The texts of every configured language; ``default`` is complete, the others may have gaps."""

    default: str
    texts: Mapping[str, Mapping[str, str]]  # language -> key -> text
    quick_replies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return (self.default, *sorted(set(self.texts) - {self.default}))

    def get(self, key: str, language: str | None = None) -> str:
        chosen = self.texts.get(language or self.default, {})
        return chosen.get(key) or self.texts[self.default][key]

    def replies(self, language: str | None = None) -> tuple[str, ...]:
        found = self.quick_replies.get(language or self.default)
        return found if found is not None else self.quick_replies.get(self.default, ())

    def supported(self, hint: str | None) -> str | None:
        """A configured language for a channel's hint: "es-MX" and "es_419" are Spanish; else None."""
        if not hint:
            return None
        code = hint.strip().replace("_", "-").casefold()
        for candidate in (code, code.split("-")[0]):
            if candidate in self.texts:
                return candidate
        return None

    def choose(self, *, current: str | None, hint: str | None, text: str,
               detect: LanguageDetector | None) -> str:
        """The language of a conversation after this message (see the module's docstring)."""
        guess = detect(text) if detect is not None and any(ch.isalpha() for ch in text) else None
        guessed = self.supported(guess[0]) if guess else None
        if guessed and guess[1] >= SURE and len(text.split()) >= SURE_WORDS:
            return guessed
        if current in self.texts:
            return current
        return (self.supported(hint) or self.supported(phrases.language_of(text))
                or (guessed if guessed and guess[1] >= GUESS else None) or self.default)


def back_at(template: str, moment: datetime, language: str | None) -> str:
    """When people are back, for the customer: the weekday in their language (CLDR, via Babel)."""
    try:
        days = get_day_names("wide", locale=Locale.parse(language or "en"))
    except (ValueError, UnknownLocaleError):  # a code CLDR does not know: settings warn of it
        days = get_day_names("wide", locale="en")
    return template.format(day=days[moment.weekday()], time=f"{moment:%H:%M}", zone=moment.tzname())


def english() -> Texts:
    """The built-in English texts, for a configuration without a ``texts:`` section and for tests."""
    return Texts(default="en", texts={"en": dict(ENGLISH)})


ENGLISH: Mapping[str, str] = {
    "greeting": "Hi! I'm the Acme assistant. Ask me anything about orders, billing or your account.",
    "not_sure": ("I'm not sure I can answer that. Could you rephrase it, "
                 "or would you like to talk to a person?"),
    "not_sure_without_people": "I'm not sure I can answer that. Could you rephrase it?",
    "thanks": "You're welcome! Is there anything else I can help with?",
    "media_only": "Sorry, I can only read text for now. Could you type your question?",
    "flood_notice": ("You're sending messages faster than I can answer them, so I'll skip the next few. "
                     "Please wait a minute, then send your question again."),
    "talk_to_person": "Talk to a person",
    "handoff_requested": ("I've let our support team know you'd like to talk to a person. "
                          "Someone will reply here as soon as they can."),
    "handoff_unavailable": ("Sorry, I can't put you through to a person from this chat: our support "
                            "team doesn't answer here. I've noted that you asked, and I'm happy to "
                            "keep helping with your question."),
    "handoff_already_requested": "Your request is already with our support team; a person will reply here.",
    "outside_hours": ("Our support team is away right now and back on {day} at {time} ({zone}). Your "
                      "request stays open, and a person will reply here then."),
    "reminder": ("Thanks for waiting. Our support team usually replies within about {minutes} minutes; "
                 "your request is still open."),
    "joined": "{name} from our support team has joined the conversation.",
    "joined_anonymous": "A member of our support team has joined the conversation.",
    "handed_back": "You're back with the assistant. Ask me anything, or ask for a person again at any time.",
    "rating_prompt": ("Our support team marked your request as solved. How would you rate the help you got, "
                      "from 1 (poor) to 5 (excellent)?"),
    "rated": "Thank you for your rating!",
    "engine_failed": "Sorry, I'm having trouble answering right now. Please try again in a moment.",
    "message_failed": ("Sorry, something went wrong on our side with your last message. "
                       "Please send it again, or ask for a person."),
    "team": "Support team",
    "source": "Source:",
    "sources": "Sources:",
    "reply_with_number": "Reply with a number:",
    "helpful": "👍 Helpful",
    "not_helpful": "👎 Not helpful",
    "ui_open": "Open chat",
    "ui_close": "Close chat",
    "ui_input": "Type your message",
    "ui_send": "Send",
    "ui_typing": "Assistant is typing",
    "ui_you": "You:",
    "ui_assistant": "Assistant:",
    "ui_support": "{name} (support)",
    "ui_source": "Source:",
    "ui_helpful": "Helpful",
    "ui_not_helpful": "Not helpful",
    "ui_feedback_thanks": "Thanks for your feedback",
    "ui_feedback_failed": "Couldn't send feedback",
    "ui_too_fast": "You're sending messages too fast, please wait a moment",
    "ui_too_long": "Your message is too long (max {max} characters)",
    "ui_reconnecting": "Connection lost, retrying…",
    "ui_offline": "Connection lost. Please check your connection and try again.",
    "ui_error": "Something went wrong. Please try again.",
    "ui_not_sent": "Not sent",
    "ui_attach": "Attach a file",
    "ui_file_too_big": "That file is too big (max {max} MB)",
    "ui_file_refused": "That kind of file can't be sent here",
}
