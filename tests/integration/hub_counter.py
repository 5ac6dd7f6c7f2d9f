"""For child interpreters under gevent: a greenlet that only counts and yields, so a test can see
that the event loop went on running while something else computed. Nothing is timed."""

from __future__ import annotations

import gevent


def counting() -> tuple[gevent.Greenlet, list[int]]:
    """The counting greenlet (kill it when done) and its count, read as ``counted[0]``."""
    counted = [0]

    def count() -> None:
        while True:
            counted[0] += 1
            gevent.sleep(0)

    return gevent.spawn(count), counted
