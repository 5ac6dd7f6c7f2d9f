"""CPU to turn one answer's Markdown into what each channel sends (parse, render, split).

Answers of three sizes, written like an LLM's (emphasis, a link with brackets in its URL, a list,
a code span, citations, two sources): a short one (~300 characters), the longest the LLM engine
lets through (llm.max_answer_chars, 1,500) and a 12,000-character one that Telegram and SMS must
split. Each is rendered N times per channel, one thread, and the CPU time per answer is printed
(process time, so other processes on the machine do not inflate it): first as a new text (the
parse cache emptied before each render: every LLM answer), then as a text seen before (fixed
texts such as the greeting, cached LLM answers: the parse is remembered).

    .venv/bin/python bench/render.py [--runs 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parley.channels.formats import PLAIN, TELEGRAM  # noqa: E402
from parley.channels.markup import parse  # noqa: E402
from parley.channels.slack_blocks import to_slack_messages  # noqa: E402
from parley.channels.text import as_sent, render_chunks  # noqa: E402
from parley.core.envelope import AnswerMeta, Reply, Source  # noqa: E402

PARAGRAPH = ("To reset it, open **Sign in** and choose *Forgot password?* [1]. The link lasts `1 h`; "
             "see [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) & our ***help centre*** [2].\n\n"
             "- check your spam folder\n- ask for a new link\n\n")
SOURCES = (Source(id="reset", title="How do I reset my password?", url="https://help.acme.example/reset"),
           Source(id="locked", title="Why is my account locked?"))


def reply_of(size: int) -> Reply:
    text = (PARAGRAPH * (size // len(PARAGRAPH) + 1))[:size].rsplit(" ", 1)[0]
    return Reply(conversation_id="bench", channel="bench", text=text, meta=AnswerMeta(sources=SOURCES))


def per_answer_ms(render, reply: Reply, runs: int, *, new_text: bool) -> tuple[float, int]:
    spent = 0.0
    for _ in range(runs):
        if new_text:
            parse.cache_clear()
        started = time.process_time()
        sent = render(reply)
        spent += time.process_time() - started
    return spent / runs * 1000, len(sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    runs = parser.parse_args().runs
    channels = {
        "telegram": lambda reply: render_chunks(as_sent(reply), TELEGRAM),
        "sms": lambda reply: render_chunks(as_sent(reply), PLAIN),
        "slack blocks": to_slack_messages,
    }
    print(f"CPU ms per answer (mean of up to {runs}), and the messages it became")
    for new_text in (True, False):
        print("a new text:" if new_text else "a text seen before:")
        for size in (300, 1500, 12_000):
            reply, count = reply_of(size), max(runs // (size // 300), 20)
            figures = [per_answer_ms(render, reply, count, new_text=new_text) for render in channels.values()]
            shown = "  ".join(f"{name} {ms:.3f} ms ({n})" for name, (ms, n) in zip(channels, figures))
            print(f"  {len(reply.text):>6} chars: {shown}")


if __name__ == "__main__":
    main()
