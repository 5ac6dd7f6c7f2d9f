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
from collections.abc import Callable
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

    The pool is made on first use, in the process and on the hub that use it (a pool made before
    gunicorn forks its workers would belong to the parent's hub).
    """

    def __init__(self, size: int | None = None) -> None:
        # One thread per core: more would only queue for the same cores, and each onnxruntime
        # call is single-threaded by design (see ``OnnxEmbedder``).
        self.size = size or os.cpu_count() or 1
        self._pool: Any = None

    def run(self, function: Callable[..., T], *args: Any) -> T:
        if not gevent_patched():
            return function(*args)
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self.size)
        return self._pool.apply(function, args)
