"""A reply's Markdown, parsed once (markdown-it-py), as blocks of lines of styled spans.

Whatever the model writes is CommonMark plus GFM tables and strikethrough; raw HTML is text. The
result is small enough that every channel renders it with a few lines (``channels/formats.py``)
and splits it anywhere between spans or words without cutting a tag or a link in half
(``channels/text.py``):

- a ``Span`` is text with its styles (``b``, ``i``, ``s``, ``code``) and, in a link, its target;
- a ``Block`` is a paragraph, a heading (bold), a list (one line per item, bullet first), a quote,
  a code block or a table (monospace, aligned), with the source lines it came from, so the blank
  lines the writer left between blocks are kept.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

Style = Literal["b", "i", "s", "code"]
BlockKind = Literal["text", "quote", "code"]
_STYLE_OF = {"strong": "b", "em": "i", "s": "s"}


@dataclass(frozen=True, slots=True)
class Span:
    text: str
    styles: frozenset[str] = frozenset()
    href: str | None = None


Line = tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    lines: tuple[Line, ...]
    language: str = ""
    blank_before: bool = False  # the writer left a blank line before it (kept between blocks)


@functools.cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@functools.lru_cache(maxsize=512)
def parse(markdown: str) -> tuple[Block, ...]:
    """The top-level blocks of ``markdown``, in order.

    Remembered for the last few hundred texts: the fixed texts (greeting, handoff notices) and
    cached LLM answers come again and again, and the parse is most of a reply's rendering CPU
    (bench/render.py); the blocks are immutable, so sharing them is safe across threads."""
    root = SyntaxTreeNode(_parser().parse(markdown))
    source = markdown.split("\n")
    blocks = []
    for node in root.children:
        first = (node.map or (0, 0))[0]
        blank = 0 < first <= len(source) and not source[first - 1].strip()
        blocks.append(replace(_block(node), blank_before=blank))
    return tuple(blocks)


def visible_text(blocks: Sequence[Block]) -> str:
    """What a reader sees of the blocks, without any markup: for tests and length checks."""
    return "\n".join("".join(span.text for span in line) for block in blocks for line in block.lines)


def _block(node: SyntaxTreeNode) -> Block:
    if node.type in ("fence", "code_block"):
        code = node.content[:-1] if node.content.endswith("\n") else node.content
        language = node.info.split()[0] if node.type == "fence" and node.info.strip() else ""
        lines = tuple((Span(line),) if line else () for line in code.split("\n"))
        return Block("code", lines, language=language)
    if node.type == "table":
        return Block("code", _table(node))
    if node.type == "blockquote":
        return Block("quote", _lines(node, 0))
    return Block("text", _lines(node, 0))


def _lines(node: SyntaxTreeNode, depth: int) -> tuple[Line, ...]:
    """The lines of any block, flattened (in a quote or a list item everything becomes lines)."""
    kind = node.type
    if kind == "inline":
        return _inline_lines(node)
    if kind == "heading":
        return tuple(_styled(line, "b") for child in node.children for line in _inline_lines(child))
    if kind in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1) or 1) if kind == "ordered_list" else 0
        lines: list[Line] = []
        for number, item in enumerate(node.children, start):
            bullet = f"{number}. " if kind == "ordered_list" else "• "
            lines += _item_lines(item, bullet, depth)
        return tuple(lines)
    if kind in ("fence", "code_block"):
        return tuple((Span(line, frozenset({"code"})),) for line in node.content.rstrip("\n").split("\n"))
    if kind == "table":
        return tuple((Span(line, frozenset({"code"})),) for line in _table_rows(node))
    if kind == "hr":
        return ((Span("———"),),)
    return tuple(line for child in node.children for line in _lines(child, depth))


def _item_lines(item: SyntaxTreeNode, bullet: str, depth: int) -> list[Line]:
    indent = "  " * depth
    lines: list[Line] = []
    for child in item.children:
        nested = child.type in ("bullet_list", "ordered_list")
        for line in _lines(child, depth + 1 if nested else depth):
            if not lines:
                lines.append((Span(indent + bullet), *line))
            elif nested:
                lines.append(line)  # the nested list indents its own lines
            else:
                lines.append((Span(indent + " " * len(bullet)), *line))
    return lines or [(Span(indent + bullet.rstrip()),)]


def _inline_lines(inline: SyntaxTreeNode) -> tuple[Line, ...]:
    lines: list[list[Span]] = [[]]
    _walk(inline, frozenset(), None, lines)
    return tuple(merged(line) for line in lines)


def _walk(node: SyntaxTreeNode, styles: frozenset[str], href: str | None, lines: list[list[Span]]) -> None:
    for child in node.children:
        kind = child.type
        if kind == "text" and child.content:
            lines[-1].append(Span(child.content, styles, href))
        elif kind == "code_inline":
            lines[-1].append(Span(child.content, styles | {"code"}, href))
        elif kind in ("softbreak", "hardbreak"):
            lines.append([])
        elif kind in _STYLE_OF:
            _walk(child, styles | {_STYLE_OF[kind]}, href, lines)
        elif kind == "link":
            _walk(child, styles, str(child.attrs.get("href", "")) or None, lines)
        elif kind == "image":  # a chat shows no inline image: its description, linked
            alt = "".join(grand.content for grand in child.children) or "image"
            lines[-1].append(Span(alt, styles, str(child.attrs.get("src", "")) or None))
        else:
            _walk(child, styles, href, lines)


def merged(spans: list[Span]) -> Line:
    """Neighbouring spans of the same style and link as one, so markup opens and closes once."""
    out: list[Span] = []
    for span in spans:
        if out and (out[-1].styles, out[-1].href) == (span.styles, span.href):
            out[-1] = Span(out[-1].text + span.text, span.styles, span.href)
        else:
            out.append(span)
    return tuple(out)


def _styled(line: Line, style: str) -> Line:
    return tuple(Span(span.text, span.styles | {style}, span.href) for span in line)


def _table(node: SyntaxTreeNode) -> tuple[Line, ...]:
    return tuple((Span(row),) for row in _table_rows(node))


def _table_rows(node: SyntaxTreeNode) -> list[str]:
    """A table as aligned monospace rows, a rule under the header: chats have no table layout."""
    rows: list[list[str]] = []
    for section in node.children:
        for row in section.children:
            rows.append([" ".join("".join(s.text for s in line) for line in _lines(cell, 0))
                         for cell in row.children])
    if not rows:
        return []
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    shown = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return [shown[0], "-+-".join("-" * width for width in widths), *shown[1:]]
