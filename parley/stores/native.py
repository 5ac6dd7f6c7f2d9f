"""Native work off the event loop: CPU-bound calls that release the GIL run on real OS threads.

Under ``parley serve`` and ``parley worker`` the process is gevent-patched and every request,
stream and worker shares one thread, the hub. A question's sentence embedding is ~5 ms of
onnxruntime on one core; run on the hub it stalls every webhook ack and event stream for that
long, and the process can use only the one core the hub runs on. onnxruntime (and ``tokenizers``)
release the GIL while they compute, so on a real thread the embedding runs on another core while
the hub goes on serving; the greenlet that asked waits for it as it waits for any IO.

Without gevent (tests, ``parley eval``, a plain interpreter) the caller is already a real thread,
and the call runs in place.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def gevent_patched() -> bool:
    """Whether this process's threads are greenlets (gevent's monkey patching ran)."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


class NativeThreads:
    """Runs a call on one of ``size`` real threads when the process is gevent-patched, else in place.

    The pool is made on first use, in the process and on the main thread's hub that use it (a pool
    made before gunicorn forks its workers would belong to the parent's hub). Called from a native
    thread (another pool's), the call runs in place: it is off the event loop already.
    """

    def __init__(self, size: int | None = None) -> None:
        # One thread per core: more would only queue for the same cores, and each onnxruntime
        # call is single-threaded by design (see ``OnnxEmbedder``).
        self.size = size or os.cpu_count() or 1
        self._pool: Any = None

    def run(self, function: Callable[..., T], *args: Any) -> T:
        if not gevent_patched() or not _on_the_event_loop():
            return function(*args)  # a real thread already: the event loop is not waiting on it
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self.size)
        return self._pool.apply(function, args)


def _on_the_event_loop() -> bool:
    """Whether the caller runs on the main thread's hub (a greenlet), not on a native thread.

    A pool made on a native thread belongs to that thread's hub, and gevent's ``apply`` runs the
    call in place for every other hub: the knowledge base loads on a native thread, and the
    embedder's first call there once made its pool, so every question was then embedded on the
    event loop (py-spy: ``Session.run`` on the hub's stack; bench/throughput.py 54 answered/s).
    """
    from gevent import get_hub

    return bool(get_hub().main_hub)


class _Request:
    __slots__ = ("done", "error", "items", "result")

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Batched:
    """``function(items) -> rows``, one row per item, called on native threads for many greenlets at
    once: the items of every call waiting when a thread frees up go in one call.

    Each hand-off to a native thread costs the hub: the thread takes the GIL from a busy hub to start
    and to finish, and the result comes back through the hub. Joined, the hand-offs are per batch,
    and onnxruntime's cost per question falls with the batch (4.3 ms alone, 2.7 ms in 16s). Nobody
    waits for a batch to fill: a call starts at once when a lane is free, and only calls that arrive
    while every lane is busy are joined (bench/throughput.py, 1 process, 150 msg/s offered on a
    loaded machine: 112 answered/s joined, 43-66 one call per question). Without gevent, or off the
    event loop, it is a plain call.
    """

    def __init__(self, function: Callable[[list[Any]], Any], *, threads: NativeThreads,
                 max_items: int) -> None:
        self._function = function
        self._threads = threads
        self._max_items = max_items
        self._pending: deque[_Request] = deque()
        self._lock = threading.Lock()
        self._lanes_busy = 0

    def __call__(self, items: Sequence[Any]) -> Any:
        if not gevent_patched() or not _on_the_event_loop():
            return self._function(list(items))  # nothing to share a call with off the event loop
        request = _Request(items)
        with self._lock:
            self._pending.append(request)
            drive = self._lanes_busy < self._threads.size
            self._lanes_busy += drive
        if drive:
            self._drive(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def _drive(self, own: _Request) -> None:
        """Run batches until this caller's request is answered, then hand the lane on if needed."""
        while not own.done.is_set():
            batch = self._take()
            if not batch:
                break
            self._run(batch)
        with self._lock:
            self._lanes_busy -= 1
            orphaned = bool(self._pending) and self._lanes_busy < self._threads.size
            self._lanes_busy += orphaned
        if orphaned:  # waiting calls and a free lane: another greenlet drives it for them
            threading.Thread(target=self._drive_all, daemon=True, name="parley-batch").start()

    def _drive_all(self) -> None:
        while True:
            if batch := self._take():
                self._run(batch)
                continue
            with self._lock:  # the lane is let go only while nobody waits: a late caller saw it busy
                if not self._pending:
                    self._lanes_busy -= 1
                    return

    def _take(self) -> list[_Request]:
        with self._lock:
            batch, count = [], 0
            while self._pending and (not batch or count + len(self._pending[0].items) <= self._max_items):
                request = self._pending.popleft()
                batch.append(request)
                count += len(request.items)
            return batch

    def _run(self, batch: list[_Request]) -> None:
        try:
            rows = self._threads.run(self._function, [item for request in batch for item in request.items])
        except BaseException as exc:  # noqa: BLE001 - each caller raises it, as its own call would have
            for request in batch:
                request.error = exc
                request.done.set()
            if not isinstance(exc, Exception):
                raise  # a kill or an exit goes on, once its waiters are told
            return
        start = 0
        for request in batch:
            request.result, start = rows[start:start + len(request.items)], start + len(request.items)
            request.done.set()
