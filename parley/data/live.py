"""Following the active model while serving: ``parley models activate`` and ``rollback`` apply
within ``data.model_refresh_seconds`` in every process, without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from sqlalchemy import Engine

from parley.core.classifier import Prediction
from parley.data.models import active, active_model, load
from parley.data.training import TrainedModel
from parley.errors import ParleyError
from parley.stores.native import Batched, NativeThreads

logger = structlog.get_logger("parley.models")


class LiveModel:
    """An ``IntentClassifier`` that is whichever model is active; with none active, ``fallback``
    (the model of the knowledge base's own questions, fitted at start), else it never predicts.

    A prediction is a few milliseconds of scikit-learn, mostly Python holding the GIL, and most of it
    a fixed cost per call whatever the rows. Under gevent it runs on a real thread (``threads``),
    where the interpreter's switch interval hands the GIL back to the event loop every 5 ms, so
    webhook acks go on meanwhile (on the hub nothing else runs until it returns); and questions
    asked while a prediction runs are predicted together in the next call (``Batched``).
    bench/inbox.py, embedded, 500 events/s offered, median of runs: 297 acked/s on the hub, 330 on
    a thread one question a call, 461 batched (CPU per ack 3.4 -> 2.1 ms).
    """

    def __init__(self, database: Engine, models_dir: Path, *, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic,
                 fallback: TrainedModel | None = None, threads: NativeThreads | None = None) -> None:
        self._fallback = fallback
        self._questions = Batched(self._predictions, threads=threads or NativeThreads(1), max_items=64)
        self._database = database
        self._models_dir = models_dir
        self._refresh = refresh_seconds
        self._clock = clock
        # At start a broken active model stops the process (loudly); later it only logs.
        self._model: TrainedModel | None = active_model(database, models_dir)
        self._checked = clock()
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        model = self._model or self._fallback
        return model.version if model is not None else "none"

    def predict(self, text: str) -> Prediction:
        self._follow()
        return self._questions([text])[0]

    def _predictions(self, texts: list[str]) -> list[Prediction]:
        model = self._model or self._fallback
        if model is None:
            return [Prediction("", 0.0)] * len(texts)
        return [Prediction(p.intent, p.confidence, model.version) for p in model.predictions(texts)]

    def _follow(self) -> None:
        if self._clock() - self._checked < self._refresh or not self._lock.acquire(blocking=False):
            return  # checked recently, or another thread is checking right now
        try:
            self._checked = self._clock()
            row = active(self._database)
            current = self._model.version if self._model is not None else None
            if (row.version if row is not None else None) == current:
                return
            self._model = load(self._models_dir, row) if row is not None else None
            logger.info("model_switched", previous=current, version=self.version)
        except (ParleyError, OSError) as exc:
            logger.error("model_switch_failed", error=str(exc), keeping=self.version)
        finally:
            self._lock.release()
