"""The reps' desk as the core sees it: what a post to it says, and the directory of its threads.

The dialogue addresses replies to the desk (``Reply.channel == DESK``) and says in ``Reply.desk``
what each one is; the desk adapter (Slack) decides how it looks. The directory, kept in SQL by the
stores, maps a handoff to its thread and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

# open: the thread's header (a new handoff). customer: a customer's message relayed while a person
# has the conversation. status: a step (claimed, handed back, a rating). error: what a rep did
# that could not be done, or a delivery that failed. header: nothing to post, but the thread's
# header must show a new state (a rep's first reply claimed the conversation).
DeskKind = Literal["open", "customer", "status", "error", "header"]
_KINDS: dict[str, DeskKind] = {kind: kind for kind in get_args(DeskKind)}
# The desk replies' intents (``relay.to_desk``) after which another request waits or one waits no more.
QUEUE_STEPS = frozenset({"desk_open", "desk_claimed", "desk_handed_back", "desk_resolved"})


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskPost:
    """What a reply to the desk is, and which of the conversation's handoffs (one thread each)."""

    kind: DeskKind
    handoff: int = 0
    customer_channel: str = ""

    @classmethod
    def from_route(cls, route: Mapping[str, str]) -> DeskPost:
        """The post a reply made before ``Reply.desk`` existed described in its route's keys.

        Such replies still reach the desk for a while: those logged by a process still on the old code
        during a rolling update. Unknown kinds post as an error, never silently as something else.
        """
        handoff = route.get("handoff", "0")
        return cls(kind=_KINDS.get(route.get("kind", ""), "error"),
                   handoff=int(handoff) if handoff.isdigit() else 0,
                   customer_channel=route.get("customer_channel", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRequest:
    conversation_id: str
    requested_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadState:
    """Where a handoff stands, as its thread's header shows it (read from the handoff log)."""

    state: Literal["waiting", "claimed", "bot", "resolved"] = "waiting"
    actor: str | None = None  # who claimed, handed back or resolved it
    rating: int | None = None  # the customer's 1-5 after a resolve
    requested_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskAnswer:
    """One of the bot's answers in a handed-off conversation, which a rep may mark as wrong."""

    answer_id: str  # the reply's id in the conversation log
    question: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskRequest:
    """A handoff nobody has taken yet, for the reps' App Home."""

    conversation_id: str
    channel: str
    customer: str
    reason: str
    requested_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    """The first open requests nobody has taken, oldest first, and how many there are in all."""

    first: tuple[DeskRequest, ...]
    total: int


class DeskDirectory(Protocol):
    """Which reps' thread belongs to which conversation, shared by every process."""

    def remember(self, *, conversation_id: str, handoff: int, desk_channel: str, thread_ts: str) -> bool:
        """Record a new thread; False when this handoff already has one (a retried post)."""
        ...

    def thread_of(self, conversation_id: str, handoff: int | None = None) -> str | None:
        """The thread of that handoff, or of the conversation's latest one."""
        ...

    def conversation_of(self, desk_channel: str, thread_ts: str) -> str | None: ...

    def touch(self, thread_ts: str, rep_user: str) -> None:
        """Note the rep who last acted in a thread (``/parley label`` labels their conversation)."""
        ...

    def current_conversation(self, rep_user: str) -> str | None: ...

    def open_requests(self, since: float) -> list[OpenRequest]:
        """Conversations whose latest handoff request, made after ``since``, no person has taken yet."""
        ...

    def label_last_answer(self, conversation_id: str, article: str, *, source: str = "slack") -> str | None:
        """Label the customer message behind the bot's latest engine answer; its id, or None."""
        ...

    def label_answer(self, conversation_id: str, answer_id: str, article: str, *,
                     source: str = "slack") -> str | None:
        """Label the customer message behind that one answer of the bot's; its id, or None."""
        ...

    def answers(self, conversation_id: str, limit: int) -> list[DeskAnswer]:
        """The bot's latest engine answers in the conversation, oldest first."""
        ...

    def header_of(self, conversation_id: str, handoff: int) -> str | None:
        """The text of that handoff's thread header, as it was posted."""
        ...

    def thread_state(self, conversation_id: str) -> ThreadState:
        """Where the conversation's latest handoff stands."""
        ...

    def waiting(self, limit: int) -> Waiting:
        """The ``limit`` oldest open requests nobody has taken, and the count of all of them."""
        ...

    def home_opened(self, rep_user: str) -> None:
        """Note that the rep opened the App Home tab, now (it is kept current for them a while).

        Two pods may note the same rep at once (Slack retries an event): both succeed."""
        ...

    def home_viewers(self, since: float, limit: int) -> list[str]:
        """The reps who opened the App Home tab after ``since``, latest first."""
        ...
