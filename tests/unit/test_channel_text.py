"""Neutral Markdown rendered for Slack, Telegram, SMS and the terminal, and split at each channel's limit."""

from __future__ import annotations

import pytest

from parley.channels.formats import PLAIN, SLACK, TELEGRAM
from parley.channels.terminal import to_screen
from parley.channels.text import render_chunks, to_mrkdwn, to_plain, to_telegram_html, to_terminal, with_sources
from tests.stubs import slack_rules, telegram_rules
from parley.core.envelope import AnswerMeta, Reply, Source

ANSWER = ("Open **Sign in**, choose *Forgot password?* and check `spam`. "
          "See [the help centre](https://acme.example/help?a=1&b=2) or **Settings > Security**.")


@pytest.mark.parametrize(("render", "expected"), [
    (to_mrkdwn, "Open *Sign in*, choose _Forgot password?_ and check `spam`. See "
                "<https://acme.example/help?a=1&amp;b=2|the help centre> or *Settings &gt; Security*."),
    (to_telegram_html, "Open <b>Sign in</b>, choose <i>Forgot password?</i> and check <code>spam</code>. "
                       'See <a href="https://acme.example/help?a=1&amp;b=2">the help centre</a> or '
                       "<b>Settings &gt; Security</b>."),
    (to_plain, "Open Sign in, choose Forgot password? and check spam. "
               "See the help centre (https://acme.example/help?a=1&b=2) or Settings > Security."),
])
def test_each_channel_gets_its_own_markup(render, expected: str) -> None:
    assert render(ANSWER) == expected


def test_headings_and_bullets() -> None:
    markdown = "## Returns\n- keep the receipt\n* pack it well"
    assert to_mrkdwn(markdown) == "*Returns*\n• keep the receipt\n• pack it well"
    assert to_telegram_html(markdown) == "<b>Returns</b>\n• keep the receipt\n• pack it well"
    assert to_plain(markdown) == "Returns\n- keep the receipt\n- pack it well"


def test_markup_a_customer_might_type_is_escaped_not_obeyed() -> None:
    text = "<script>alert(1)</script> & <b>not bold</b> <!here> snake_case_name 2 * 3 * 4"
    assert "<script>" not in to_telegram_html(text) and "&lt;b&gt;not bold" in to_telegram_html(text)
    assert to_mrkdwn(text).startswith("&lt;script&gt;") and "&lt;!here&gt;" in to_mrkdwn(text)
    assert "snake_case_name 2 * 3 * 4" in to_telegram_html(text)


def test_sources_line() -> None:
    assert with_sources("Answer.", ()) == "Answer."
    assert with_sources("Answer.", (Source(id="a", title="Refunds"),)) == "Answer.\n\nSource: Refunds"
    assert with_sources("A", (Source(id="a", title="X"), Source(id="b", title="Y"))) == "A\n\nSources: X; Y"


def test_short_text_is_one_chunk() -> None:
    assert render_chunks("  Hello **there**  ", TELEGRAM) == ["Hello <b>there</b>"]


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    paragraphs = "first paragraph here\n\nsecond paragraph here"
    assert render_chunks(paragraphs, PLAIN, 25) == ["first paragraph here", "second paragraph here"]
    lines = "line one is here\nline two is here\nline three"
    assert render_chunks(lines, PLAIN, 35) == ["line one is here\nline two is here", "line three"]
    assert render_chunks("one two three four five", PLAIN, 9) == ["one two", "three", "four five"]


def test_split_measures_the_text_as_the_platform_counts_it() -> None:
    # Telegram counts the text after entity parsing ("&amp;" is one character), Slack the mrkdwn.
    chunks = render_chunks("& " * 3000, TELEGRAM)
    assert len(chunks) == 2 and all(TELEGRAM.measure(chunk) <= 4096 for chunk in chunks)
    assert sum(chunk.count("&amp;") for chunk in chunks) == 3000
    chunks = render_chunks("& " * 10_000, SLACK)
    assert len(chunks) == 2 and all(len(chunk) <= 40_000 for chunk in chunks)


def test_a_word_longer_than_the_limit_is_cut() -> None:
    url = "https://acme.example/" + "&x" * 3000
    chunks = render_chunks(url, TELEGRAM)
    assert len(chunks) > 1 and all(TELEGRAM.measure(chunk) <= 4096 for chunk in chunks)
    assert "".join(chunks) == to_telegram_html(url)


def test_sms_split_keeps_every_word() -> None:
    text = " ".join(f"word{i}" for i in range(1000))
    chunks = render_chunks(text, PLAIN)
    assert all(len(chunk) <= 1600 for chunk in chunks)
    assert " ".join(chunks) == text


def test_the_terminal_shows_bold_and_italics_and_spells_links_out() -> None:
    assert to_terminal(ANSWER) == (
        "Open \x1b[1mSign in\x1b[22m, choose \x1b[3mForgot password?\x1b[23m and check spam. "
        "See the help centre (https://acme.example/help?a=1&b=2) or \x1b[1mSettings > Security\x1b[22m.")
    assert to_terminal("- one\n- two\x1b[2J") == "• one\n• two[2J"  # no escape reaches the terminal


def test_a_reply_on_screen_names_who_wrote_it_its_sources_and_the_quick_replies() -> None:
    answer = Reply(conversation_id="t", channel="terminal", text="First line\nsecond line",
                   quick_replies=("Yes", "Talk to a person"),
                   meta=AnswerMeta(sources=(Source(id="reset-password", title="Reset"),)))
    assert to_screen(answer).splitlines() == [
        "bot> First line", "     second line", "     (source: Reset [reset-password])",
        "     (reply with: Yes | Talk to a person)"]
    assert to_screen(Reply(conversation_id="t", channel="terminal", text="On it.", author="Ana")) == "Ana> On it."


def test_a_slack_link_is_only_ever_a_web_or_mail_link() -> None:
    # "<!channel|x>" would ping a whole channel and "<@U1|x>" mention someone: spelled out instead.
    text = "[x](!channel) [y](@U0REP0001) [help](https://acme.example/help) [mail](mailto:help@acme.example)"
    assert to_mrkdwn(text) == ("x (!channel) y (@U0REP0001) <https://acme.example/help|help> "
                               "<mailto:help@acme.example|mail>")


def test_bold_italics_nest_properly_the_regression_telegram_refused() -> None:
    # The regex renderer wrote "<b><i>x</b></i>", which Telegram refuses for good.
    assert to_telegram_html("***x*** and ___y___") == "<b><i>x</i></b> and <b><i>y</i></b>"
    assert to_mrkdwn("***x***") == "*_x_*"
    telegram_rules.check_message(to_telegram_html("***x*** **a *b* c**"), "HTML")


def test_a_link_with_brackets_in_its_url_stays_one_link() -> None:
    text = "See [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) today."
    assert to_telegram_html(text) == ('See <a href="https://en.wikipedia.org/wiki/Mercury_(planet)">Mercury</a>'
                                      " today.")
    assert to_mrkdwn(text) == "See <https://en.wikipedia.org/wiki/Mercury_(planet)|Mercury> today."
    assert to_plain(text) == "See Mercury (https://en.wikipedia.org/wiki/Mercury_(planet)) today."


def test_code_fences_strikethrough_quotes_and_tables() -> None:
    text = ("Run:\n\n```bash\nparley chat --a <b> & c\n```\n\n~~old~~ new\n\n> quoted **line**\n\n"
            "| Plan | Price |\n|---|---|\n| Plus | 5 € |")
    assert to_telegram_html(text) == (
        'Run:\n\n<pre><code class="language-bash">parley chat --a &lt;b&gt; &amp; c</code></pre>\n\n'
        "<s>old</s> new\n\n<blockquote>quoted <b>line</b></blockquote>\n\n"
        "<pre>Plan | Price\n-----+------\nPlus | 5 €</pre>")
    assert to_mrkdwn(text) == ("Run:\n\n```\nparley chat --a &lt;b&gt; &amp; c\n```\n\n~old~ new\n\n"
                               "> quoted *line*\n\n```\nPlan | Price\n-----+------\nPlus | 5 €\n```")
    assert to_plain(text) == ("Run:\n\nparley chat --a <b> & c\n\nold new\n\n> quoted line\n\n"
                              "Plan | Price\n-----+------\nPlus | 5 €")


def test_links_the_platform_would_refuse_are_spelled_out() -> None:
    text = "[js](javascript:alert(1)) [rel](/help) [mail](mailto:help@acme.example)"
    html = to_telegram_html(text)
    assert html == "[js](javascript:alert(1)) rel (/help) mail (help@acme.example)"
    telegram_rules.check_message(html, "HTML")


def test_a_long_code_block_is_closed_and_reopened_at_the_cut() -> None:
    code = "```\n" + "\n".join(f"line {i} <&>" for i in range(600)) + "\n```"
    chunks = render_chunks(code, TELEGRAM)
    assert len(chunks) == 2
    for chunk in chunks:
        assert chunk.startswith("<pre>") and chunk.endswith("</pre>")
        telegram_rules.check_message(chunk, "HTML")
    slack = render_chunks(code, SLACK, 3000)
    assert len(slack) > 1 and all(c.startswith("```\n") and c.endswith("\n```") for c in slack)
    for chunk in slack:
        slack_rules.check_text(chunk)


def test_a_link_is_never_cut_in_half() -> None:
    text = " ".join(f"[page {i}](https://acme.example/{'p' * 40}/{i})" for i in range(200))
    for chunk in render_chunks(text, SLACK, 1000):
        slack_rules.check_text(chunk)
        assert chunk.count("<") == chunk.count(">") == chunk.count("|")
    assert all(chunk.count("(") == chunk.count(")") for chunk in render_chunks(text, PLAIN))
