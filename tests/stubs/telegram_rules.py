"""What the Bot API accepts as a ``sendMessage`` text, checked as Telegram checks it.

From https://core.telegram.org/bots/api#formatting-options (HTML style) and #sendmessage:

1. Only these tags: ``b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre
   blockquote``; any other start tag is "Unsupported start tag".
2. Every tag is closed, in order ("Can't find end tag corresponding to start tag",
   "Unmatched end tag").
3. ``a`` needs an ``href`` that is an http(s) or tg URL; ``span`` only with ``class="tg-spoiler"``;
   ``tg-emoji`` needs ``emoji-id``; ``blockquote`` takes only ``expandable``; ``code`` takes
   ``class="language-…"`` only as the one child of ``pre``.
4. ``pre`` and ``code`` contain no other entity (but ``pre > code`` for the language); links and
   quotes do not nest in themselves.
5. Every ``<``, ``>`` and ``&`` that is not markup is an entity; the only named entities are
   ``&lt; &gt; &amp; &quot;``, numeric ones are all accepted.
6. 1-4096 characters after entity parsing, leading and trailing white space aside (counted here
   in UTF-16 code units, as Telegram counts entity offsets).
Without ``parse_mode`` only rule 6 applies, to the raw text.

An inline keyboard (``reply_markup``, #inlinekeyboardmarkup): rows of buttons, each with a
non-empty ``text`` and exactly one action; a ``callback_data`` of 1-64 bytes ("BUTTON_DATA_INVALID");
``answerCallbackQuery`` text at most 200 characters.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urlsplit

TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji",
        "code", "pre", "blockquote"}
MAX_CHARS = 4096
_VALUE = r"(?:\"[^\"<]*\"|'[^'<]*'|[^\s\"'<>=]+)"
_TAG = re.compile(rf"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*{_VALUE})?)*)\s*>")
_ATTR = re.compile(r"([A-Za-z-]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'<>=]+)))?")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")


class Refused(ValueError):
    """Telegram's 400 description ("Bad Request: ...")."""


def check_message(text: str, parse_mode: str | None) -> str:
    """The text a user would see; ``Refused`` with Telegram's description when it would not send."""
    visible = _parse_html(text) if (parse_mode or "").upper() == "HTML" else text
    stripped = visible.strip()
    if not stripped:
        raise Refused("Bad Request: message text is empty")
    if len(stripped.encode("utf-16-le")) // 2 > MAX_CHARS:
        raise Refused("Bad Request: message is too long")
    return visible


def _parse_html(text: str) -> str:
    stack: list[str] = []
    seen: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char == "<":
            match = _TAG.match(text, at)
            if match is None:
                raise _entities(f"Unclosed start tag at byte offset {_offset(text, at)}")
            _tag(match, stack, text, at)
            at = match.end()
        elif char == "&":
            match = _ENTITY.match(text, at)
            if match is None:
                raise _entities(f"Can't find end of the entity starting at byte offset {_offset(text, at)}")
            seen.append(html.unescape(match[0]))
            at = match.end()
        elif char == ">":
            raise _entities(f"Character '>' is reserved and must be escaped at byte offset "
                            f"{_offset(text, at)}")
        else:
            seen.append(char)
            at += 1
    if stack:
        raise _entities(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(seen)


def _tag(match: re.Match[str], stack: list[str], text: str, at: int) -> None:
    closing, name = match[1] == "/", match[2].lower()
    if name not in TAGS:
        raise _entities(f'Unsupported start tag "{name}" at byte offset {_offset(text, at)}')
    if closing:
        if not stack or stack[-1] != name:
            expected = f'"</{stack[-1]}>"' if stack else "nothing"
            raise _entities(f"Unmatched end tag at byte offset {_offset(text, at)}, expected {expected}, "
                            f'found "</{name}>"')
        stack.pop()
        return
    attrs = {m[1].lower(): _value(m, text, at) for m in _ATTR.finditer(match[3])}
    _check_attrs(name, attrs, stack, text, at)
    if stack and stack[-1] in ("code", "pre") and not (name == "code" and stack[-1] == "pre"):
        raise _entities(f'Entity "{name}" can\'t be inside "{stack[-1]}" at byte offset {_offset(text, at)}')
    if name in ("a", "blockquote") and name in stack:
        raise _entities(f'Entity "{name}" can\'t be nested at byte offset {_offset(text, at)}')
    stack.append(name)


def _check_attrs(name: str, attrs: dict[str, str], stack: list[str], text: str, at: int) -> None:
    where = f"at byte offset {_offset(text, at)}"
    if name == "a":
        href = attrs.get("href", "")
        parts = urlsplit(href)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "tg") or (scheme != "tg" and not parts.netloc):
            raise _entities(f"Wrong URL {href!r} in the tag \"a\" {where}")
    elif name == "span" and attrs.get("class") != "tg-spoiler":
        raise _entities(f'Tag "span" must have class "tg-spoiler" {where}')
    elif name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise _entities(f'Tag "tg-emoji" must have attribute "emoji-id" {where}')
    elif name == "code" and "class" in attrs:
        if not (stack and stack[-1] == "pre" and attrs["class"].startswith("language-")):
            raise _entities(f'Tag "code" may have class "language-..." only inside "pre" {where}')
    elif name == "blockquote" and set(attrs) - {"expandable"}:
        raise _entities(f'Tag "blockquote" takes no attribute but "expandable" {where}')


def _value(match: re.Match[str], text: str, at: int) -> str:
    raw = next((group for group in match.groups()[1:] if group is not None), "")
    for position, char in enumerate(raw):
        if char == "&" and _ENTITY.match(raw, position) is None:
            raise _entities(f"Can't find end of the entity in an attribute at byte offset "
                            f"{_offset(text, at)}")
    return html.unescape(raw)


def _offset(text: str, at: int) -> int:
    return len(text[:at].encode("utf-8"))


def _entities(detail: str) -> Refused:
    return Refused(f"Bad Request: can't parse entities: {detail}")


def check_keyboard(markup: object) -> dict[str, object] | None:
    """The inline keyboard as Telegram reads it (a JSON field in a form post), or ``Refused``."""
    if markup is None:
        return None
    keyboard = json.loads(markup) if isinstance(markup, str) else markup
    rows = keyboard.get("inline_keyboard") if isinstance(keyboard, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise Refused("Bad Request: can't parse inline keyboard button: InlineKeyboardButton expected")
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not str(button.get("text") or "").strip():
            raise Refused("Bad Request: inline keyboard button text is empty")
        actions = set(button) - {"text"}
        if len(actions) != 1:
            raise Refused("Bad Request: can't parse inline keyboard button: exactly one of the optional "
                          "fields must be used")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
            raise Refused("Bad Request: BUTTON_DATA_INVALID")
    return keyboard


def check_callback_answer(text: object) -> None:
    if text is not None and len(str(text)) > 200:
        raise Refused("Bad Request: MESSAGE_TOO_LONG")
