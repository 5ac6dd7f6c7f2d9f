"""Logging a training run to MLflow when ``MLFLOW_TRACKING_URI`` is set (optional extra:
``pip install -r requirements-mlflow.txt``)."""

from __future__ import annotations

import json
from pathlib import Path

from parley.errors import ConfigError
from parley.stores.sql import ModelVersion


def log_run(row: ModelVersion, artefact: Path) -> str:
    """Parameters, metrics and the artefact of a registered model; returns the MLflow run id."""
    try:
        import mlflow
    except ImportError:
        raise ConfigError("MLFLOW_TRACKING_URI is set but MLflow is not installed "
                          "(pip install -r requirements-mlflow.txt)") from None
    params = json.loads(row.params)
    metrics = json.loads(row.metrics)
    mlflow.set_experiment("parley-intents")
    with mlflow.start_run(run_name=row.version) as run:
        libraries = params.pop("libraries", {})
        mlflow.log_params({**params, "kind": row.kind, "version": row.version,
                           "content_hash": row.content_hash})
        mlflow.set_tags({f"library.{name}": version for name, version in libraries.items()})
        mlflow.log_metrics({name: float(metrics[name]) for name in ("accuracy", "macro_f1")})
        mlflow.log_artifact(str(artefact))
        description = artefact.with_suffix(".json")
        if description.exists():
            mlflow.log_artifact(str(description))
        return run.info.run_id
