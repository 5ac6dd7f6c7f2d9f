"""What Slack accepts in a ``chat.postMessage`` text, and what Parley promises never to post there.

From https://api.slack.com/methods/chat.postMessage and
https://api.slack.com/reference/surfaces/formatting#escaping:

1. ``text`` is at most 40,000 characters (``msg_too_long``) and not empty without blocks
   (``no_text``).
2. ``&``, ``<`` and ``>`` are written ``&amp;``, ``&lt;``, ``&gt;`` unless they are a control
   sequence ``<...>`` or a ``> `` opening a quoted line; ``&`` starts only those three entities.
3. House rule (Slack would accept it, and ping or mislead people): the only control sequences are
   web and mail links, ``<http(s)://...|label>`` or ``<mailto:...|label>``; never ``<!channel>``,
   ``<!here>``, ``<@U…>`` or ``<#C…>``.
A violation of 2 or 3 is refused as ``invalid_arguments`` so a test sees it.

Blocks (https://api.slack.com/reference/block-kit/blocks, .../block-elements,
.../composition-objects), refused as ``invalid_blocks``:

4. At most 50 blocks; each ``block_id`` at most 255 characters and unique in the message.
5. ``section``: a text of at most 3,000 characters (or up to 10 ``fields`` of 2,000).
   ``context``: 1-10 elements. ``actions``: 1-25 elements. ``header``: plain text of 150.
6. A text object is ``plain_text`` or ``mrkdwn`` with 1+ characters; its mrkdwn obeys 2 and 3.
7. A ``button``: ``plain_text`` of at most 75 characters, an ``action_id`` of at most 255 unique in
   the message, a ``value`` of at most 2,000. A section's ``accessory`` is such an element.
8. ``input`` (modals only): a ``label`` of plain text up to 2,000 and one ``element``; an
   ``external_select`` has a ``placeholder`` of plain text up to 150 and ``min_query_length`` >= 0.

Views (https://api.slack.com/reference/surfaces/views), refused as ``invalid_arguments``:

9. A ``modal`` has a plain-text ``title`` of at most 24 characters (``submit`` and ``close`` too)
   and at most 100 blocks; a ``home`` at most 100 blocks; ``private_metadata`` at most 3,000
   characters and ``callback_id`` at most 255. ``submit`` is required when an ``input`` is present.
10. Options answering a ``block_suggestion``: at most 100, each a plain-text ``text`` of at most 75
    characters and a ``value`` of at most 150.
"""

from __future__ import annotations

import re

MAX_TEXT = 40_000
_LINK = re.compile(r"<(?:https?://[^\s|<>]+|mailto:[^\s|<>]+@[^\s|<>]+)(?:\|[^<>]*)?>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


class Refused(ValueError):
    """Slack's ``error`` code."""


def check_text(text: str | None, *, has_blocks: bool = False) -> None:
    if not text:
        if has_blocks:
            return
        raise Refused("no_text")
    if len(text) > MAX_TEXT:
        raise Refused("msg_too_long")
    at = 0
    while at < len(text):
        char = text[at]
        if char == "<":
            match = _LINK.match(text, at)
            if match is None:
                raise Refused("invalid_arguments")  # a mention, a broadcast or a stray "<"
            at = match.end()
            continue
        if char == ">" and (at == 0 or text[at - 1] == "\n") and text[at + 1:at + 2] in (" ", "\n", ""):
            at += 1  # "> " opening a line is a quote
            continue
        if char == ">" or (char == "&" and _ENTITY.match(text, at) is None):
            raise Refused("invalid_arguments")
        at += 1


MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
_BLOCK_TYPES = {"section", "context", "actions", "header", "divider", "image", "rich_text", "markdown"}


def check_blocks(blocks: object) -> None:
    """``Refused("invalid_blocks")`` unless every block is one Slack accepts."""
    try:
        _blocks(blocks)
    except (AssertionError, TypeError, KeyError, AttributeError) as problem:
        raise Refused("invalid_blocks") from problem


def check_view(view: object) -> None:
    """``Refused("invalid_arguments")`` unless ``view`` is a modal or home tab Slack would show."""
    try:
        assert isinstance(view, dict) and view["type"] in ("modal", "home"), "view type"
        blocks = view["blocks"]
        assert isinstance(blocks, list) and len(blocks) <= MAX_VIEW_BLOCKS, "1-100 blocks"
        if view["type"] == "modal":
            for key in ("title", "submit", "close"):
                if key in view or key == "title":
                    assert view[key]["type"] == "plain_text", key
                    _text(view[key], 24)
            inputs = [block for block in blocks if block["type"] == "input"]
            assert not inputs or "submit" in view, "an input needs a submit button"
        assert len(view.get("private_metadata", "")) <= 3000, "private_metadata"
        assert len(view.get("callback_id", "")) <= 255, "callback_id"
        _blocks(blocks, view=True)
    except (AssertionError, TypeError, KeyError, AttributeError) as problem:
        raise Refused("invalid_arguments") from problem


def check_options(options: object) -> None:
    """``Refused("invalid_arguments")`` unless ``options`` answer a ``block_suggestion`` as Slack takes them."""
    try:
        assert isinstance(options, list) and len(options) <= 100, "at most 100 options"
        for option in options:
            assert option["text"]["type"] == "plain_text", "option text"
            _text(option["text"], 75)
            assert 1 <= len(option["value"]) <= 150, "option value"
    except (AssertionError, TypeError, KeyError, AttributeError) as problem:
        raise Refused("invalid_arguments") from problem


def _blocks(blocks: object, *, view: bool = False) -> None:
    limit = MAX_VIEW_BLOCKS if view else MAX_BLOCKS
    assert isinstance(blocks, list) and len(blocks) <= limit, f"1-{limit} blocks"
    block_ids, action_ids = set(), set()
    for block in blocks:
        kind = block["type"]
        assert kind in _BLOCK_TYPES or (view and kind == "input"), f"unknown block {kind}"
        if "block_id" in block:
            assert len(block["block_id"]) <= 255 and block["block_id"] not in block_ids, "block_id"
            block_ids.add(block["block_id"])
        if kind == "section":
            assert "text" in block or "fields" in block, "section without text"
            if "text" in block:
                _text(block["text"], 3000)
            for field in block.get("fields", []):
                _text(field, 2000)
            assert len(block.get("fields", [])) <= 10, "fields"
            if "accessory" in block:
                _element(block["accessory"], action_ids)
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10, "context elements"
            for element in block["elements"]:
                if element["type"] != "image":
                    _text(element, 3000)
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= 25, "actions elements"
            for element in block["elements"]:
                _element(element, action_ids)
        elif kind == "header":
            assert block["text"]["type"] == "plain_text", "header text"
            _text(block["text"], 150)
        elif kind == "input":
            assert block["label"]["type"] == "plain_text", "input label"
            _text(block["label"], 2000)
            _element(block["element"], action_ids)


def _text(text: dict, limit: int) -> None:
    assert text["type"] in ("plain_text", "mrkdwn"), "text type"
    assert 1 <= len(text["text"]) <= limit, f"text of {len(text['text'])} characters (max {limit})"
    if text["type"] == "mrkdwn":
        try:
            check_text(text["text"])
        except Refused as refused:
            raise AssertionError(str(refused)) from None


def _element(element: dict, action_ids: set[str]) -> None:
    if element["type"] == "button":
        assert element["text"]["type"] == "plain_text", "button text type"
        _text(element["text"], 75)
        assert len(element.get("value", "")) <= 2000, "button value"
    elif element["type"] == "external_select":
        assert element["placeholder"]["type"] == "plain_text", "placeholder type"
        _text(element["placeholder"], 150)
        assert int(element.get("min_query_length", 3)) >= 0, "min_query_length"
    else:
        raise AssertionError(f"element {element['type']} is not one Parley uses")
    action_id = element.get("action_id")
    if action_id is not None:
        assert len(action_id) <= 255 and action_id not in action_ids, "action_id"
        action_ids.add(action_id)
