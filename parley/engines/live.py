"""The knowledge base as it is on disk now: edited, new and removed articles apply without a restart.

Every ``knowledge.reload_seconds`` the next question to come along has the articles' names, sizes
and modification times compared with the last load's (a stat of each file, nothing read). When they
changed, the index and the answer engine are built again beside the running ones, in the background,
and swapped in whole: each answer comes from the old knowledge or the new, never a mix. A knowledge
base that no longer loads (a broken front matter, a duplicate id, a file half-saved) is refused with
the reason logged, and the last good one goes on answering until the files change again. Every
process and pod watches the same files, so each picks a change up by itself, as each follows the
active model (``data.live``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from parley.core.engine import Answer, AnswerEngine, TokenSink
from parley.core.knowledge import KnowledgeIndex
from parley.core.sessions import Turn
from parley.errors import ParleyError

logger = structlog.get_logger("parley.knowledge")


@dataclass(frozen=True, slots=True)
class Knowledge:
    """One load of the knowledge base: its index and the engine that answers from it."""

    index: KnowledgeIndex
    engine: AnswerEngine


class LiveKnowledge:
    """An ``AnswerEngine`` answering from the latest knowledge base that loaded."""

    def __init__(self, load: Callable[[Knowledge | None], Knowledge], *, fingerprint: Callable[[], str],
                 refresh_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._fingerprint = fingerprint
        self._refresh = refresh_seconds
        self._clock = clock
        self._seen = fingerprint()
        self.current = load(None)  # at start a knowledge base that does not load stops the process
        self._checked = clock()
        self._reloading = False
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.current.engine.name

    def answer(self, question: str, history: Sequence[Turn], *, on_token: TokenSink | None = None) -> Answer:
        self._follow()
        return self.current.engine.answer(question, history, on_token=on_token)

    def reload(self) -> Knowledge:
        """Load the knowledge base now (an admin's request); on ``ConfigError`` or ``OSError`` the
        current one stays."""
        return self._reload(self._fingerprint())

    def _follow(self) -> None:
        if not self._refresh or self._clock() - self._checked < self._refresh:
            return
        with self._lock:
            if self._reloading or self._clock() - self._checked < self._refresh:
                return  # another question is checking, or has just checked
            self._checked = self._clock()
            try:
                seen = self._fingerprint()
            except OSError as exc:  # the directory is being replaced (a ConfigMap update): next time
                logger.warning("knowledge_unreadable", error=str(exc))
                return
            if seen == self._seen:
                return
            self._reloading = True
        # Not on the answering greenlet: this question is answered now, from the current knowledge.
        threading.Thread(target=self._reload_quietly, args=(seen,), daemon=True,
                         name="parley-knowledge-reload").start()

    def _reload_quietly(self, seen: str) -> None:
        try:
            self._reload(seen)
        except (ParleyError, OSError):
            pass  # logged; the current knowledge goes on answering
        finally:
            self._reloading = False

    def _reload(self, seen: str) -> Knowledge:
        started = time.perf_counter()
        try:
            loaded = self._load(self.current)  # what it may keep of the running one
        except (ParleyError, OSError) as exc:  # OSError: a file removed while it was read
            self._seen = seen  # not again until the files change again
            logger.error("knowledge_reload_refused", error=str(exc), keeping=self.current.index.version)
            raise
        self.current, self._seen = loaded, seen
        logger.info("knowledge_reloaded", articles=len(loaded.index), version=loaded.index.version,
                    seconds=round(time.perf_counter() - started, 2))
        return loaded
