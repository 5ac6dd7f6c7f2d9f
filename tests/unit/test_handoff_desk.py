"""What a rep types in Slack, as the customer receives it."""

from __future__ import annotations

import pytest

from parley.channels.slack_desk import from_mrkdwn


@pytest.mark.parametrize(("slack", "neutral"), [
    ("<https://acme.example/returns|our returns page>", "[our returns page](https://acme.example/returns)"),
    ("see <https://x.example>", "see https://x.example"),
    ("<@U0BO> can you check?", "can you check?"),
    ("fish &amp; chips &lt;3", "fish & chips <3"),
    ("<mailto:help@acme.example|help@acme.example>", "[help@acme.example](mailto:help@acme.example)"),
])
def test_slack_markup_becomes_neutral_text(slack: str, neutral: str) -> None:
    assert from_mrkdwn(slack) == neutral
