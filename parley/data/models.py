"""Model versions: artefacts on disk under the models directory, registered in SQL.

An artefact is the fitted pipeline dumped with joblib. Its version is a hash of what the model
learned (the same data and seed give the same version); the file's own SHA-256 is registered and
checked again at load, so a replaced or truncated file never answers customers.
A JSON file beside it repeats the registry row, so the artefact describes itself. A model trained
on an export file (``parley train --from``) records that file's SHA-256 among its parameters
(``export_sha256``; older rows and models trained on the live labels have none). Only the
models directory is trusted to hold artefacts: joblib files execute code when loaded. So a row's
artefact is only ever a file directly in that directory, and its content must have the hash both
the row and that record beside it hold: write access to the SQL table alone runs no code.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import joblib
import structlog
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from parley.data.training import Metrics, TrainedModel, fingerprint
from parley.errors import ConfigError, NotFound
from parley.stores.sql import ModelVersion

logger = structlog.get_logger("parley.models")
_LIBRARIES = ("scikit-learn", "numpy", "scipy", "PyStemmer", "joblib", "onnxruntime", "tokenizers")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        versions[name] = metadata.version(name)
    return versions


def save(database: Engine, models_dir: Path, model: TrainedModel, metrics: Metrics, *,
         seed: int, data_from: datetime | None = None, data_until: datetime | None = None,
         params: dict[str, object] | None = None, export_sha256: str | None = None) -> ModelVersion:
    """Write the artefact and register it (inactive); a model learned before keeps its version
    (and the export it was first registered with: the same model, learned from the same labels)."""
    version = f"{model.kind}-{fingerprint(model)[:10]}"
    with Session(database, expire_on_commit=False) as session:
        existing = session.get(ModelVersion, version)
        if existing is not None:
            return existing
        buffer = io.BytesIO()
        joblib.dump({"kind": model.kind, "pipeline": model.pipeline}, buffer, compress=3)
        models_dir.mkdir(parents=True, exist_ok=True)
        artefact = models_dir / f"{version}.joblib"
        artefact.write_bytes(buffer.getvalue())
        row = ModelVersion(version=version, kind=model.kind, artefact=artefact.name,
                           content_hash=hashlib.sha256(buffer.getvalue()).hexdigest(),
                           metrics=json.dumps(metrics.as_dict()),
                           params=json.dumps({"seed": seed, **(params or {}),
                                              **({"export_sha256": export_sha256} if export_sha256 else {}),
                                              "libraries": library_versions()}),
                           data_from=data_from, data_until=data_until)
        session.add(row)
        session.commit()
    (models_dir / f"{version}.json").write_text(json.dumps(describe(row), indent=2), encoding="utf-8")
    return row


def describe(row: ModelVersion) -> dict[str, object]:
    return {"version": row.version, "kind": row.kind, "artefact": row.artefact,
            "content_hash": row.content_hash, "export_sha256": export_sha256_of(row),
            "metrics": json.loads(row.metrics), "params": json.loads(row.params), "active": row.active,
            "data_from": _iso(row.data_from), "data_until": _iso(row.data_until),
            "created_at": _iso(row.created_at), "activated_at": _iso(row.activated_at)}


def export_sha256_of(row: ModelVersion) -> str | None:
    """The SHA-256 of the export file the model learned from; None when it learned from the live
    labels, or was registered before models recorded it."""
    try:
        params = json.loads(row.params)
    except ValueError:
        return None
    digest = params.get("export_sha256") if isinstance(params, dict) else None
    return digest if isinstance(digest, str) else None


def versions(database: Engine) -> list[ModelVersion]:
    """Every registered model, newest first (as ``parley models list`` promises)."""
    with Session(database) as session:
        newest_first = (ModelVersion.created_at.desc(), ModelVersion.version.desc())
        return list(session.scalars(select(ModelVersion).order_by(*newest_first)))


def active(database: Engine) -> ModelVersion | None:
    with Session(database) as session:
        return session.scalars(select(ModelVersion).where(ModelVersion.active)).first()


def activate(database: Engine, version: str) -> ModelVersion:
    """Make ``version`` the one the offline engine uses (after the next start)."""
    with Session(database, expire_on_commit=False) as session:
        row = session.get(ModelVersion, version)
        if row is None:
            raise NotFound(f"no model version {version!r} (see `parley models list`)")
        session.execute(update(ModelVersion).where(ModelVersion.active).values(active=False))
        row.active, row.activated_at = True, datetime.now(UTC)
        session.add(row)
        session.commit()
        return row


def rollback(database: Engine) -> ModelVersion | None:
    """Back to the model active before the current one; None: no model, retrieval answers alone."""
    with Session(database, expire_on_commit=False) as session:
        current = session.scalars(select(ModelVersion).where(ModelVersion.active)).first()
        previous = session.scalars(
            select(ModelVersion).where(~ModelVersion.active, ModelVersion.activated_at.is_not(None))
            .order_by(ModelVersion.activated_at.desc())).first()
        if current is not None:
            current.active = False
            # Forget its activation, so a second rollback goes further back instead of returning.
            current.activated_at = None
            session.add(current)
        if previous is not None:
            previous.active, previous.activated_at = True, datetime.now(UTC)
            session.add(previous)
        session.commit()
        return previous


def active_model(database: Engine, models_dir: Path) -> TrainedModel | None:
    """The active model, loaded and checked; None when retrieval answers alone."""
    row = active(database)
    if row is None:
        return None
    model = load(models_dir, row)
    logger.info("model_loaded", version=row.version, kind=row.kind)
    return model


def load(models_dir: Path, row: ModelVersion) -> TrainedModel:
    """The row's artefact, unpickled only once it is confined and its content hash checked."""
    path = artefact_path(models_dir, row)
    try:
        content = path.read_bytes()
        record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"model {row.version}: cannot read {exc.filename}: {exc.strerror} "
                          "(is data.models_dir shared with this process?)") from None
    except ValueError:
        record = {}
    digest = hashlib.sha256(content).hexdigest()
    recorded = record.get("content_hash") if isinstance(record, dict) else None
    if digest != row.content_hash or digest != recorded:
        raise ConfigError(f"model {row.version}: {path} does not match its registered content hash")
    _warn_if_trained_with_another_scikit_learn(row)
    stored = joblib.load(io.BytesIO(content))
    return replace(TrainedModel(stored["pipeline"], stored["kind"]), version=row.version)


def _warn_if_trained_with_another_scikit_learn(row: ModelVersion) -> None:
    # scikit-learn pickles are only promised to load in the release that wrote them: after an
    # upgrade of its minor version, retrain (`parley train --activate`) rather than trust the old one.
    try:
        trained_with = json.loads(row.params).get("libraries", {}).get("scikit-learn")
    except (ValueError, AttributeError):
        return
    running = metadata.version("scikit-learn")
    if trained_with and trained_with.split(".")[:2] != running.split(".")[:2]:
        logger.warning("model_trained_with_other_scikit_learn", version=row.version,
                       trained_with=trained_with, running=running, fix="retrain: parley train --activate")


def artefact_path(models_dir: Path, row: ModelVersion) -> Path:
    """Where the row's artefact is: a file directly in the models directory, and nowhere else
    (no absolute path, no "..", no symbolic link out of it)."""
    name = row.artefact
    path = (models_dir / name).resolve()
    if Path(name).name != name or name in ("", ".", "..") or path.parent != models_dir.resolve():
        raise ConfigError(f"model {row.version}: artefact {name[:80]!r} is not a file of data.models_dir "
                          f"({models_dir}); only `parley train` registers artefacts")
    return path


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
