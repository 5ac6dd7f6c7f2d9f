"""The widget's acknowledgement returns the customer's own replies, never the reps' thread posts."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from parley.channels.web import WidgetAdapter
from parley.channels.web_secrets import ConversationKeys
from parley.core.desk import DeskPost
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import DESK
from parley.stores.memory import MemoryMailbox
from parley.stores.ratelimit import LimitsRateLimiter
from parley.stores.sql import SqlConversationLog, open_database


def test_a_message_answered_before_the_ack_shows_only_the_customers_reply(tmp_path: Path) -> None:
    # During a handoff a worker can finish before the webhook's request gets to read the log: the
    # log then holds the relay into the reps' Slack thread, which the customer must never see.
    log = SqlConversationLog(open_database(f"sqlite:///{tmp_path / 'parley.db'}"))
    log.create_schema()
    envelope = Envelope(channel="widget", conversation_id="w1234567890", message_id="w1234567890:m1",
                        sender="w1234567890", text="is anyone there?")
    log.record_inbound(envelope)
    to_desk = Reply(conversation_id=envelope.conversation_id, channel=DESK, desk=DeskPost(kind="customer"),
                    text="*Customer:* is anyone there? (internal thread post)", reply_id="r-desk")
    to_customer = Reply(conversation_id=envelope.conversation_id, channel="widget", text="Ana is on it.",
                        reply_id="r-customer")
    adapter = WidgetAdapter(mailbox=MemoryMailbox(), log=log, max_text_chars=2000, reply_timeout=0.1,
                            rate_limiter=LimitsRateLimiter(), keys=ConversationKeys(b"test-key"))

    with Flask(__name__).test_request_context("/widget/api/messages", method="POST") as context:
        log.record_replies(envelope, [to_desk])
        relayed_only = adapter.ack(context.request, [envelope]).get_json()
        log.record_replies(envelope, [to_customer])
        both = adapter.ack(context.request, [envelope]).get_json()

    assert relayed_only == {"conversation_id": "w1234567890", "replies": [], "with_person": True}
    assert [reply["text"] for reply in both["replies"]] == ["Ana is on it."]
