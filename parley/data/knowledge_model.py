"""The knowledge base's own intent model, fitted once per content and kept beside the passage vectors.

Every process that serves or evaluates a knowledge base fits the same model from the same titles
and questions: 3 s for the sample's 46 articles, most of a minute near the 500-article limit, in
each gunicorn worker of each pod start. ``serve`` fits it once before the workers fork, and they,
later starts and ``parley eval`` read it back.

The file's name is a hash of everything the fit depends on: the index version (the articles and
the embedding model), the pipeline's parameters and the libraries' versions, so a changed article,
setting or upgrade fits anew. Like a models directory, the cache directory is trusted: joblib files
run code when loaded, and only Parley writes there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import joblib
import structlog

from parley.core.knowledge import KnowledgeIndex
from parley.data.models import library_versions
from parley.data.training import DEFAULT_KIND, TrainedModel, knowledge_model, make_pipeline

logger = structlog.get_logger("parley.knowledge")


def knowledge_model_of(index: KnowledgeIndex, *, cache_dir: Path | None,
                       embedding_model: str | None) -> TrainedModel | None:
    """The default kind fitted on ``index``'s articles (None without embeddings, or past the size
    limit), read from ``cache_dir`` when an earlier process fitted the same one."""
    if index.dense is None:
        return None
    path = cache_dir / f"knowledge-model-{_key(index, embedding_model)}.joblib" if cache_dir else None
    if path is not None and path.exists():
        try:
            stored = joblib.load(path)
            return TrainedModel(stored["pipeline"], stored["kind"], version=f"knowledge-{index.version}")
        except Exception as exc:  # noqa: BLE001 - a torn or foreign file: fit again and replace it
            logger.warning("knowledge_model_unreadable", path=str(path), error=type(exc).__name__)
    model = knowledge_model(index.articles, index.version, embedding_model=embedding_model,
                            language=index.language)
    if model is not None and path is not None:
        _write(path, model)
    return model


def _key(index: KnowledgeIndex, embedding_model: str | None) -> str:
    # The stemmer's language is a parameter (Stem('german')): a model of another language is another file.
    params = make_pipeline(DEFAULT_KIND, 0, embedding_model=embedding_model,
                           language=index.language).get_params(deep=True)
    described = {"index": index.version, "kind": DEFAULT_KIND, "libraries": library_versions(),
                 "params": {name: repr(value) for name, value in sorted(params.items())
                            if not hasattr(value, "get_params")}}  # leaves only: estimators repeat them
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def _write(path: Path, model: TrainedModel) -> None:
    """Whole or not at all: another worker may be reading the same name."""
    buffer = io.BytesIO()
    joblib.dump({"kind": model.kind, "pipeline": model.pipeline}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(buffer.getvalue())
    os.replace(partial, path)
