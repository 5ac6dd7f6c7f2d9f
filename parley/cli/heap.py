"""A serving process's startup heap, taken out of the garbage collector's way.

Everything built at start (modules, the app, the knowledge index, the SDKs' clients, SQLAlchemy's
and pydantic's caches) lives as long as the process, yet every full collection walked all of it
again: under load a full collection took 165-230 ms of CPU and came every few seconds, and each
one stalled every request and stream of the process while it ran. Frozen, those objects are never
scanned (a full collection then takes 25-35 ms; bench/throughput.py at 100 msg/s, timed with
``gc.callbacks``); what requests allocate is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Call once the process is built and before it serves: garbage first, then the rest frozen."""
    gc.collect()
    gc.freeze()
