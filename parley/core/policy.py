"""What the admin configures about the conversation (``Policy``), with the customer-facing texts."""

from __future__ import annotations

from dataclasses import dataclass

from parley.core.handoff import HandoffRules
from parley.core.relay import HandoffTexts

TALK_TO_PERSON = "Talk to a person"
# Envelope.action of the one message of a flood that gets a notice instead of an answer; the
# webhook side decides which (``parley.webhooks.throttle``), the dialogue what to say (nothing while a
# person has the conversation: the message is relayed to them like any other).
THROTTLED = "throttled"
FLOOD_NOTICE = ("You're sending messages faster than I can answer them, so I'll skip the next few. "
                "Please wait a minute, then send your question again.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What the admin configures about the conversation, with the customer-facing texts."""

    greeting: str
    min_confidence: float = 0.14
    history_turns: int = 20
    history_chars: int = 8000
    quick_replies: tuple[str, ...] = ()
    not_sure: str = ("I'm not sure I can answer that. Could you rephrase it, "
                     "or would you like to talk to a person?")
    # The same without a reps' channel: no person is offered who would never come.
    not_sure_without_people: str = "I'm not sure I can answer that. Could you rephrase it?"
    handoff_requested: str = ("I've let our support team know you'd like to talk to a person. "
                              "Someone will reply here as soon as they can.")
    # Without a reps' channel nobody can reply in the chat: say so, rather than promise a person.
    handoff_unavailable: str = ("Sorry, I can't put you through to a person from this chat: our support "
                                "team doesn't answer here. I've noted that you asked, and I'm happy to "
                                "keep helping with your question.")
    thanks: str = "You're welcome! Is there anything else I can help with?"
    media_only: str = "Sorry, I can only read text for now. Could you type your question?"
    flood_notice: str = FLOOD_NOTICE
    handoff: HandoffRules = HandoffRules()
    handoff_texts: HandoffTexts = HandoffTexts()
