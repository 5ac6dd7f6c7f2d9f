"""Sources with links: an article's ``url:``, the LLM's [n] markers renumbered to match the sources shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from parley.channels.terminal import to_screen
from parley.channels.text import to_mrkdwn, to_plain, to_telegram_html, with_sources
from parley.core.envelope import AnswerMeta, Reply, Source
from parley.core.knowledge import Article, Hit
from parley.engines.prompt import numbered
from parley.errors import ConfigError
from parley.stores.knowledge import load_articles

HITS = [Hit(article=Article(id=name, title=name.title(), body="..."), confidence=0.5)
        for name in ("alpha", "beta", "gamma")]
RESET = Source(id="reset", title="Reset *your* password", url="https://help.acme.example/reset_(pw)")


def test_markers_are_renumbered_in_the_order_the_answer_cites_them() -> None:
    text, used = numbered("Do this [3]. Then that [1], as said [3]. Invented [7].", HITS)
    assert text == "Do this [1]. Then that [2], as said [1]. Invented."
    assert [hit.article.id for hit in used] == ["gamma", "alpha"]


def test_an_answer_without_markers_keeps_its_text_and_every_passage() -> None:
    assert numbered("No citation, see [the page](https://x.example/1).", HITS) == (
        "No citation, see [the page](https://x.example/1).", HITS)
    assert numbered("Only an invented one [9].", HITS) == ("Only an invented one.", HITS)


def test_numbered_sources_follow_numbered_markers_and_link_on_every_channel() -> None:
    text = with_sources("Reset it [1]. Or ask us [2].", (RESET, Source(id="b", title="Contact")))
    assert to_telegram_html(text).endswith(
        'Sources:\n[1] <a href="https://help.acme.example/reset_(pw)">Reset *your* password</a>\n[2] Contact')
    assert to_mrkdwn(text).endswith(
        "Sources:\n[1] <https://help.acme.example/reset_(pw)|Reset *your* password>\n[2] Contact")
    assert to_plain(text).endswith(
        "Sources:\n[1] Reset *your* password (https://help.acme.example/reset_(pw))\n[2] Contact")


def test_sources_without_markers_stay_one_line() -> None:
    assert to_plain(with_sources("Answer.", (RESET,))) == (
        "Answer.\n\nSource: Reset *your* password (https://help.acme.example/reset_(pw))")
    shown = to_screen(Reply(conversation_id="t", channel="terminal", text="A",
                            meta=AnswerMeta(sources=(RESET,))))
    assert shown.endswith("(source: Reset *your* password [reset] https://help.acme.example/reset_(pw))")


def write(directory: Path, url: str) -> Path:
    (directory / "a.md").write_text(f"---\nid: a\ntitle: A\nurl: {url}\n---\nBody.\n", encoding="utf-8")
    return directory


def test_an_article_url_is_read_from_its_front_matter(tmp_path: Path) -> None:
    [article] = load_articles(write(tmp_path, "https://help.acme.example/a"))
    assert article.url == "https://help.acme.example/a"


@pytest.mark.parametrize("url", ["help.acme.example/a", "javascript:alert(1)", "'https://a.example/x y'",
                                 "[1, 2]"])
def test_an_article_url_that_is_not_a_web_address_stops_the_start(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"a\.md: front matter 'url' must be an absolute http\(s\) URL"):
        load_articles(write(tmp_path, url))
