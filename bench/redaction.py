"""Redaction's cost per exported message: microseconds of CPU per text, by kind of text, with one
phone region and with four (each national region is one more pass of libphonenumber's matcher).

Texts without five digits close together never reach the phone matcher, so most messages cost a
few regular expressions; the figures show what a text with numbers in it costs on top.

    .venv/bin/python bench/redaction.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parley.data.redaction import Redactor  # noqa: E402

TEXTS = {
    "no digits": "How do I reset my password? I tried twice and the link never came.",
    "date and order": "I ordered on 2026-01-31 (order 12345678) and it has not arrived yet.",
    "phone": "Please call me back on +44 20 7946 0958 or (212) 736-5000 after 5pm.",
    "card and email": "I was charged twice, card 4111 1111 1111 1111. Mail me at jane.doe@example.com",
    "iban": "Refund to DE89 3704 0044 0532 0130 00 please, thanks.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    redactors = {"1 region": Redactor.build({"ORDER": r"\bA-\d{6}\b"}, b"key", ["US"]),
                 "4 regions": Redactor.build({"ORDER": r"\bA-\d{6}\b"}, b"key", ["US", "GB", "DE", "FR"])}
    print(f"{'text':<16}" + "".join(f"{name + ' µs':>16}" for name in redactors))
    for kind, text in TEXTS.items():
        cells = []
        for redactor in redactors.values():
            redactor.text(text)  # warm-up: libphonenumber loads a region's metadata on first use
            started = time.process_time()
            for _ in range(args.rounds):
                redactor.text(text)
            cells.append((time.process_time() - started) / args.rounds * 1e6)
        print(f"{kind:<16}" + "".join(f"{cell:>16.1f}" for cell in cells))


if __name__ == "__main__":
    main()
