"""The desk's Block Kit within Slack's documented limits, whatever the texts and counts."""

from __future__ import annotations

from parley.channels.slack_views import (article_options, header_blocks, home_view, label_modal, note_modal,
                                         send_modal, state_line, wait)
from parley.core.desk import DeskAnswer, DeskRequest, ThreadState, Waiting
from parley.core.knowledge import Article
from tests.stubs import slack_rules

LONG = "<@U123> *bold* & <!channel> " * 400


def test_headers_fit_slack_and_show_only_the_buttons_that_still_apply() -> None:
    answers = [DeskAnswer(answer_id=f"a{i}" * 40, question=LONG, text=LONG) for i in range(12)]
    for state, buttons in [("waiting", 4), ("claimed", 3), ("bot", 0), ("resolved", 0)]:
        blocks = header_blocks("*Customer on sms* needs a person", "sms:+15551234567",
                               ThreadState(state=state, actor="Ana <@U1>", rating=4, requested_at=0.0),
                               answers, now=3600.0)
        slack_rules.check_blocks(blocks)
        assert sum(len(b["elements"]) for b in blocks if b["type"] == "actions") == buttons
        assert len([b for b in blocks if b.get("accessory")]) == 5  # the latest five answers
    assert state_line(ThreadState(requested_at=0.0), now=3900.0) == (
        ":hourglass_flowing_sand: **Waiting for a person** (requested 1 h 05 min ago)")


def test_modals_options_and_home_fit_slack() -> None:
    answer = DeskAnswer(answer_id="r1", question=LONG, text=LONG)
    for view in (label_modal(answer, {"c": "c" * 200, "a": "a" * 200}), send_modal({"c": "c", "t": "1.2"}),
                 note_modal("A title far longer than Slack's twenty-four", LONG)):
        slack_rules.check_view(view)
    articles = [Article(id=f"article-{i}", title=LONG[:200], body="b") for i in range(150)]
    slack_rules.check_options(article_options(articles, with_none=True))
    requests = tuple(DeskRequest(conversation_id=f"c{i}", channel="sms", customer="+15551234567", reason=LONG,
                                 requested_at=float(i)) for i in range(100))
    home = home_view(Waiting(first=requests, total=250), now=90_000.0)
    slack_rules.check_view(home)
    assert "••••4567" in home["blocks"][2]["text"]["text"] and "1 d 1 h" in home["blocks"][2]["text"]["text"]
    assert "210 more" in str(home["blocks"][-2])
    assert [wait(s) for s in (5, 600, 7260, 200_000)] == ["under a minute", "10 min", "2 h 01 min", "2 d 7 h"]
