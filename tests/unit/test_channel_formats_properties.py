"""Whatever Markdown the model writes, each platform accepts what we send and no text is lost.

The inputs mix every construct an LLM answer uses (emphasis of any depth, links with brackets in
the URL, code spans and fences, strikethrough, quotes, lists, tables, headings) with the characters
that break naive renderers (``<``, ``&``, ``|``, stray markers, emoji outside the BMP), at sizes
on both sides of each limit. The checks are the platforms' documented rules, as the test stubs
enforce them (``tests/stubs/telegram_rules.py``, ``tests/stubs/slack_rules.py``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parley.channels.formats import PLAIN, SLACK, TELEGRAM
from parley.channels.markup import parse, visible_text
from parley.channels.slack_blocks import to_slack_messages
from parley.channels.text import render_chunks
from parley.core.envelope import AnswerMeta, Reply, Source
from tests.stubs import slack_rules, telegram_rules

EXAMPLES = settings(max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

WORD = st.sampled_from(["reset", "Settings", "x", "2", "you're", "snake_case", "a|b", "<b>", "&amp;", "&",
                        "<", ">", "\"q\"", "é", "😀", "🇫🇷", "*", "**", "_", "~~", "`", "\\", "[", "]", "(",
                        ")", "!", "#", "<!here>", "<@U1>", "https://acme.example/a_(b)?x=1&y=2"])
URL = st.sampled_from(["https://acme.example/help", "https://en.wikipedia.org/wiki/Mercury_(planet)",
                       "https://acme.example/q?a=1&b=<2>", "mailto:help@acme.example", "/relative",
                       "javascript:alert(1)", "https://acme.example/" + "p" * 300, "tel:+15551234"])
SPACE = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  \n"])


@st.composite
def inline(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORD, min_size=1, max_size=6))
    text = " ".join(words)
    wrap = draw(st.sampled_from(["", "**", "*", "***", "_", "__", "___", "~~", "`"]))
    if draw(st.booleans()):
        text = f"[{text}]({draw(URL)})" if draw(st.booleans()) else f"{wrap}{text}{wrap}"
    return text


@st.composite
def block(draw: st.DrawFn) -> str:
    line = " ".join(draw(st.lists(inline(), min_size=1, max_size=5)))
    kind = draw(st.sampled_from(["para", "para", "heading", "bullets", "numbers", "quote", "fence", "table",
                                 "long", "rule"]))
    if kind == "heading":
        return f"{'#' * draw(st.integers(1, 6))} {line}"
    if kind in ("bullets", "numbers"):
        items = draw(st.lists(inline(), min_size=1, max_size=4))
        marker = "-" if kind == "bullets" else "1."
        nested = "\n  - nested " + items[0] if draw(st.booleans()) else ""
        return "\n".join(f"{marker} {item}" for item in items) + nested
    if kind == "quote":
        return "> " + line.replace("\n", "\n> ")
    if kind == "fence":
        language = draw(st.sampled_from(["", "python", "bash", "a b", "<x>"]))
        return f"```{language}\n{line}\n<tag> & done\n```"
    if kind == "table":
        return f"| {line} | b |\n|---|---|\n| 1 | {draw(inline())} |"
    if kind == "long":  # past Telegram's and SMS's limits in one paragraph
        return " ".join([line] * draw(st.integers(40, 160)))
    if kind == "rule":
        return "---"
    return line


MARKDOWN = st.lists(block(), min_size=1, max_size=6).flatmap(
    lambda blocks: st.lists(SPACE, min_size=len(blocks), max_size=len(blocks)).map(
        lambda spaces: "".join(b + ("\n\n" if s == " " else s) for b, s in zip(blocks, spaces))))


def _squeezed(text: str) -> str:
    return "".join(text.split())


@EXAMPLES
@given(MARKDOWN)
@example("***x***")
@example("[Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) ~~old~~ `code` > not a quote")
@example("```\n" + "<a> & b\n" * 1200 + "```")
def test_telegram_accepts_every_chunk_and_the_reader_loses_nothing(markdown: str) -> None:
    chunks = render_chunks(markdown, TELEGRAM)
    seen = [telegram_rules.check_message(chunk, "HTML") for chunk in chunks]  # raises as a 400 would
    assert _squeezed("".join(seen)) == _squeezed(TELEGRAM.visible(_telegram_whole(markdown)))


@EXAMPLES
@given(MARKDOWN)
@example("***x*** <!channel> <@U1> & [a](https://acme.example/a|b>c)")
def test_slack_accepts_every_chunk_of_its_text_and_of_a_section(markdown: str) -> None:
    for limit in (None, 3000):
        for chunk in render_chunks(markdown, SLACK, limit):
            slack_rules.check_text(chunk)
            assert len(chunk) <= (limit or slack_rules.MAX_TEXT)


@EXAMPLES
@given(MARKDOWN)
def test_sms_chunks_fit_twilio_and_keep_every_word(markdown: str) -> None:
    chunks = render_chunks(markdown, PLAIN)
    assert all(0 < len(chunk) <= 1600 for chunk in chunks)
    words = _squeezed(visible_text(parse(markdown.strip()))).replace("•", "-").replace("———", "---")
    # Links add their spelled-out targets; everything the reader wrote is still there, in order.
    assert _in_order(words, _squeezed("".join(chunks)))


SOURCES = st.lists(st.builds(Source, id=st.text(min_size=1, max_size=8),
                             title=st.text(min_size=1, max_size=300), url=st.none() | URL.filter(lambda url: url.startswith("http"))), max_size=12)
LABELS = st.lists(st.text(min_size=1, max_size=120), max_size=30)


@EXAMPLES
@given(MARKDOWN, SOURCES, LABELS, st.none() | st.text(min_size=1, max_size=40))
@example("x" * 100_000, [], [], None)
def test_slack_accepts_every_block_kit_message(markdown: str, sources: list[Source], labels: list[str],
                                               author: str | None) -> None:
    reply = Reply(conversation_id="slack:T:D", channel="slack", text=markdown, quick_replies=tuple(labels),
                  author=author, meta=AnswerMeta(sources=tuple(sources)))
    for message in to_slack_messages(reply):
        slack_rules.check_text(message.text, has_blocks=True)
        slack_rules.check_blocks(message.blocks)


def _telegram_whole(markdown: str) -> str:
    return "".join(render_chunks(markdown, TELEGRAM, limit=10**9))


def _in_order(needle: str, haystack: str) -> bool:
    found = iter(haystack)
    return all(char in found for char in needle)
