"""The ``IntentClassifier`` interface: a trained model that maps a question to an intent.

An intent is a knowledge-base article id, or ``NO_ANSWER`` when people labelled such questions as
ones the bot should leave to a person. Implementations live outside the core (``parley.data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

NO_ANSWER = "handoff"


@dataclass(frozen=True, slots=True)
class Prediction:
    intent: str
    confidence: float
    # The model that made it, when the classifier can change between calls (a followed model).
    version: str | None = None


class IntentClassifier(Protocol):
    version: str

    def predict(self, text: str) -> Prediction: ...
