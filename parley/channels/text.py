"""A reply's Markdown as each text channel sends it, split at the channel's length limit.

The Markdown is parsed once (``channels/markup.py``) and written by the channel's format
(``channels/formats.py``). A long reply is split between blocks first (keeping the writer's blank
lines), then between lines, then between words, and a word longer than the limit is cut. Every
chunk is rendered on its own from whole spans, so no chunk ends inside a tag, a code block or a
link: a quote or a code block cut in two is closed in one chunk and opened again in the next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from parley.channels.formats import PLAIN, SLACK, TELEGRAM, TERMINAL, Format
from parley.channels.markup import Block, Line, Span, merged, parse
from parley.core.envelope import Reply, Source
from parley.core.markdown import escape
from parley.core.texts import Texts, english

ENGLISH_TEXTS = english()  # the labels when a channel is given no catalogue (tests, the terminal)

SLACK_LIMIT = SLACK.limit
SMS_LIMIT = PLAIN.limit
TELEGRAM_LIMIT = TELEGRAM.limit
_WORDS = re.compile(r"\S+\s*|\s+")
_MARKER = re.compile(r"\[(\d{1,2})\](?!\()")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def with_sources(text: str, sources: Sequence[Source], *, texts: Texts = ENGLISH_TEXTS,
                 language: str | None = None) -> str:
    """The answer plus the articles it came from, linked where they have a URL (text channels
    show no cards). Numbered "[1] ..." as the answer's own markers when it cites by number. The
    label ("Source:", "Fuentes:") is the ``texts:`` catalogue's ``source``/``sources`` in ``language``."""
    if not sources:
        return text
    label = texts.get("source" if len(sources) == 1 else "sources", language)
    if numbered_sources(text, sources):
        return f"{text}\n\n{escape(label)}\n" + "\n".join(source_lines(sources, numbered=True))
    return f"{text}\n\n{escape(label)} {'; '.join(_source(source) for source in sources)}"


def numbered_sources(text: str, sources: Sequence[Source]) -> bool:
    """Whether the answer cites its sources by number ("[1]"), so they are listed numbered."""
    return any(1 <= int(number) <= len(sources) for number in _MARKER.findall(text))


def source_lines(sources: Sequence[Source], *, numbered: bool, texts: Texts = ENGLISH_TEXTS,
                 language: str | None = None) -> list[str]:
    """One Markdown line per source: "[1] Title" or "Source: Title", linked when it has a URL."""
    label = escape(texts.get("source", language))
    return [f"\\[{n}\\] {_source(source)}" if numbered else f"{label} {_source(source)}"
            for n, source in enumerate(sources, 1)]


def _source(source: Source) -> str:
    # "<url>" as the target: any URL the knowledge base allows, brackets and all, stays one link.
    return f"[{escape(source.title)}](<{source.url}>)" if source.url else escape(source.title)


def as_sent(reply: Reply, texts: Texts = ENGLISH_TEXTS) -> str:
    """A reply's text as a text channel sends it: a rep's name first (the widget shows it apart),
    then the answer, then its sources, labelled in the reply's language."""
    text = f"**{escape(reply.author)}:** {reply.text}" if reply.author else reply.text
    return with_sources(text, reply.meta.sources, texts=texts, language=reply.language)


def render(markdown: str, fmt: Format) -> str:
    """The whole text in ``fmt``, however long."""
    return _joined([(gap, fmt.block(block)) for gap, block in _gapped(parse(markdown.strip()))])


def to_mrkdwn(markdown: str) -> str:
    return render(markdown, SLACK)


def to_telegram_html(markdown: str) -> str:
    return render(markdown, TELEGRAM)


def to_plain(markdown: str) -> str:
    return render(markdown, PLAIN)


def to_terminal(markdown: str) -> str:
    """For a terminal: control characters go first, so a text never drives the terminal."""
    return render(_CONTROL.sub("", markdown), TERMINAL)


def render_chunks(markdown: str, fmt: Format, limit: int | None = None) -> list[str]:
    """The rendered text in as few chunks as fit ``limit`` (the format's own by default)."""
    limit = limit or fmt.limit
    chunks: list[list[tuple[int, str]]] = []
    size = 0
    for gap, block in _gapped(parse(markdown.strip())):
        for index, part in enumerate(_fit(block, fmt, limit)):
            text = fmt.block(part)
            cost = fmt.measure(text)
            gap = gap if index == 0 else 1
            if chunks and size + gap + cost <= limit:
                chunks[-1].append((gap, text))
                size += gap + cost
            else:
                chunks.append([(0, text)])
                size = cost
    rendered = (_joined(chunk) for chunk in chunks)
    return [chunk for chunk in rendered if fmt.visible(chunk).strip()]


def _gapped(blocks: Sequence[Block]) -> list[tuple[int, Block]]:
    """Each block with the newlines before it: one when the writer left no blank line."""
    return [(0 if index == 0 else 2 if block.blank_before else 1, block)
            for index, block in enumerate(blocks)]


def _joined(parts: Sequence[tuple[int, str]]) -> str:
    return "".join("\n" * gap + text for gap, text in parts)


def _fit(block: Block, fmt: Format, limit: int) -> list[Block]:
    """``block`` as blocks of its kind that each fit ``limit``: whole lines, else cut lines."""
    if fmt.measure(fmt.block(block)) <= limit:
        return [block]
    base = fmt.measure(fmt.block(Block(block.kind, ((),), block.language)))
    per_line = fmt.measure(fmt.block(Block(block.kind, ((), ()), block.language))) - base
    budget = max(limit - base, 1)
    lines = [piece for line in block.lines for piece in _cut_line(line, block.kind, fmt, budget)]
    parts: list[list[Line]] = []
    size = 0
    for line in lines:
        cost = fmt.measure(fmt.line(block.kind, line))
        if parts and size + per_line + cost <= budget:
            parts[-1].append(line)
            size += per_line + cost
        else:
            parts.append([line])
            size = cost
    return [Block(block.kind, tuple(part), block.language) for part in parts]


def _cut_line(line: Line, kind: str, fmt: Format, budget: int) -> list[Line]:
    """The line as lines that each fit ``budget``, cut between words; a link stays whole if it fits."""
    def cost(span: Span) -> int:
        return fmt.measure(fmt.line(kind, (span,)))

    if fmt.measure(fmt.line(kind, line)) <= budget:
        return [line]
    units = [unit for span in line for unit in _units(span, cost, budget)]
    cut: list[list[Span]] = [[]]
    size = 0
    for unit in units:
        if cut[-1] and size + cost(unit) > budget:
            cut.append([])
            size = 0
        cut[-1].append(unit)
        size += cost(unit)
    return [merged(_trimmed(spans)) for spans in cut]


def _units(span: Span, cost, budget: int) -> list[Span]:
    """What a line may be cut between: a whole link, else words; a unit over budget is cut up."""
    if span.href is not None and cost(span) <= budget:
        return [span]
    if span.href is not None and cost(Span(span.text[:1], span.styles, span.href)) > budget:
        span = Span(f"{span.text} ({span.href})", span.styles)  # a target longer than a message
    words = [span.text] if span.href is not None else _WORDS.findall(span.text)
    units: list[Span] = []
    for word in words:
        piece = Span(word, span.styles, span.href)
        while cost(piece) > budget and len(piece.text) > 1:
            size = _longest_fitting(piece, cost, budget)
            units.append(Span(piece.text[:size], span.styles, span.href))
            piece = Span(piece.text[size:], span.styles, span.href)
        units.append(piece)
    return units


def _longest_fitting(span: Span, cost, budget: int) -> int:
    low, high = 1, len(span.text)
    while low < high:  # the largest prefix length whose rendering fits
        middle = (low + high + 1) // 2
        if cost(Span(span.text[:middle], span.styles, span.href)) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _trimmed(spans: list[Span]) -> list[Span]:
    """No white space left dangling where a line was cut."""
    if spans:
        last = spans[-1]
        spans[-1] = Span(last.text.rstrip() or last.text, last.styles, last.href)
    return spans
