"""What a reply to the reps' desk is travels typed (``DeskPost``), and survives its JSON form."""

from __future__ import annotations

import json

from parley.core.desk import DeskPost
from parley.core.envelope import AnswerMeta, Reply, Source, reply_from_json, reply_to_json
from parley.core.handoff import DESK
from parley.core.relay import to_desk
from parley.core.sessions import Session


def test_a_post_to_the_desk_says_what_it_is_and_has_no_route() -> None:
    session = Session(conversation_id="c1", channel="sms", route={"to": "+15551234567"}, handoffs=2)
    post = to_desk(session, "Claimed by Ana.", kind="status")
    assert (post.channel, dict(post.route)) == (DESK, {})
    assert post.desk == DeskPost(kind="status", handoff=2, customer_channel="sms")


def test_replies_survive_their_json_form_with_and_without_a_desk_post() -> None:
    to_customer = Reply(conversation_id="c1", channel="sms", text="Hi", route={"to": "+1"},
                        quick_replies=("Yes",), meta=AnswerMeta(sources=(Source(id="a", title="A"),)))
    to_reps = Reply(conversation_id="c1", channel=DESK, text="**Customer:** hi",
                    desk=DeskPost(kind="customer", handoff=1, customer_channel="sms"))
    assert [reply_from_json(reply_to_json(reply)) for reply in (to_customer, to_reps)] == [to_customer, to_reps]


def test_a_reply_stored_before_desk_posts_existed_still_loads() -> None:
    stored = json.loads(reply_to_json(Reply(conversation_id="c1", channel="widget", text="Hi", reply_id="r1")))
    del stored["desk"]
    assert reply_from_json(json.dumps(stored)) == Reply(conversation_id="c1", channel="widget", text="Hi",
                                                        reply_id="r1")


def test_a_reply_made_with_the_old_route_keys_is_read_as_the_post_it_meant() -> None:
    assert DeskPost.from_route({"handoff": "3", "kind": "open", "customer_channel": "telegram"}) == DeskPost(
        kind="open", handoff=3, customer_channel="telegram")
    assert DeskPost.from_route({"kind": "error"}) == DeskPost(kind="error")
    assert DeskPost.from_route({"kind": "relay"}).kind == "error"  # never guessed into another kind
