"""``parley train``, ``parley models list|activate|rollback`` and ``parley eval``."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from parley.cli.common import WHEN, WHEN_HELP, database_of, progress, readonly_database_of, settings_of, utc
from parley.errors import ConfigError, NotFound


@click.command()
@click.option("--kind", type=click.Choice(["hybrid-svm", "hybrid-svm-body", "hybrid-svm-temperature", "tfidf-logreg",
                                          "tfidf-logreg-body"]),
              default="hybrid-svm", show_default=True,
              help="hybrid: TF-IDF and sentence embeddings into a calibrated linear SVM (the best measured; "
                   "needs knowledge.embedding_model on); -temperature calibrates it with one softmax "
                   "temperature (better on many intents, see README); tfidf: TF-IDF alone. -body also "
                   "learns from the articles' text (compare with eval).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same data and seed, same model.")
@click.option("--holdout", type=click.FloatRange(0.0, 0.5), default=0.2, show_default=True,
              help="Share of each intent's examples held out to measure the model.")
@click.option("--since", type=WHEN, help=f"Only labels on messages from this moment on: {WHEN_HELP}.")
@click.option("--until", type=WHEN, help=f"Only labels on messages before this moment: {WHEN_HELP}.")
@click.option("--activate", is_flag=True, help="Make the new model the active one.")
@click.option("--from", "export_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Learn from the labelled messages of this export (a `parley export` file: .jsonl, .csv "
                   "or .parquet) instead of the database's labels; the model records the file's SHA-256.")
@click.option("--record", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the registered model's record (as `parley models list --json` prints it) "
                   "to this file: what `parley eval --model-record` reads.")
@click.pass_obj
def train(config: str | None, kind: str, seed: int, holdout: float, since: datetime | None,
          until: datetime | None, activate: bool, export_file: Path | None, record: Path | None) -> None:
    """Fit an intent classifier on labelled messages plus the knowledge base's own questions."""
    from parley.data import models, tracking
    from parley.data.training import knowledge_examples
    from parley.data.training import train as fit
    from parley.stores.knowledge import load_articles

    settings = settings_of(config)
    if kind.startswith("hybrid") and settings.knowledge.embedding_model == "off":
        raise click.ClickException(f"--kind {kind} needs sentence embeddings, and knowledge.embedding_model "
                                   "is off: turn them on or choose --kind tfidf-logreg")
    database = database_of(settings)
    labelled, first, last, export_sha256 = _labelled(database, export_file, since=utc(since),
                                                     until=utc(until))
    articles = load_articles(settings.knowledge.path)
    examples = knowledge_examples(articles, body=kind.endswith("-body")) + labelled
    click.echo(f"training {kind} on {len(examples)} examples ({len(labelled)} labelled messages)")
    embedding_dir = settings.knowledge.embedding_dir
    model, metrics = fit(examples, kind=kind, seed=seed, holdout=holdout,
                         embedding_model=str(embedding_dir) if embedding_dir else None,
                         language=settings.knowledge.language)
    params = {"holdout": holdout, "examples": len(examples), "labelled": len(labelled)}
    row = models.save(database, settings.models_dir, model, metrics, seed=seed, data_from=first,
                      data_until=last, params=params, export_sha256=export_sha256)
    click.echo(f"held out {metrics.test_size}: accuracy {metrics.accuracy:.1%}, "
               f"macro-F1 {metrics.macro_f1:.3f}")
    for expected, predicted, count in metrics.confused:
        click.echo(f"  confused {expected} -> {predicted}  x{count}")
    _saved(row, settings.models_dir, export_sha256, record)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        run_id = tracking.log_run(row, settings.models_dir / row.artefact)
        click.echo(f"logged to MLflow run {run_id}")
    if activate:
        models.activate(database, row.version)
        click.echo(f"activated {row.version}: running Parley answers with it within "
                   f"{settings.data.model_refresh_seconds:g} s")


def _saved(row: Any, models_dir: Path, export_sha256: str | None, record: Path | None) -> None:
    from parley.data import models

    click.echo(f"saved model {row.version} ({models_dir / row.artefact})")
    registered_from = models.export_sha256_of(row)
    if export_sha256 and registered_from != export_sha256:  # the same model, registered before
        click.echo(f"  it learned the same from an earlier export (sha256 {registered_from}), which its "
                   "record keeps" if registered_from else
                   "  it learned the same from the database's labels before, which its record keeps")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(models.describe(row), indent=2) + "\n", encoding="utf-8")


def _labelled(database: Any, export_file: Path | None, *, since: datetime | None,
              until: datetime | None) -> tuple[list[Any], datetime | None, datetime | None, str | None]:
    """The labelled messages to learn from: the database's, or those of an export file (with its hash)."""
    from parley.data.export import naive_utc
    from parley.data.labels import labelled_examples
    from parley.data.snapshot import read_snapshot

    if export_file is None:
        return (*labelled_examples(database, since=since, until=until), None)
    try:
        snapshot = read_snapshot(export_file, since=since, until=until)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"learning from {export_file} (sha256 {snapshot.sha256})")
    first, last = (naive_utc(moment) if moment else None for moment in (snapshot.first, snapshot.last))
    return list(snapshot.examples), first, last, snapshot.sha256


@click.group("models")
def models_group() -> None:
    """List, activate and roll back trained models."""


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
@click.pass_obj
def models_list(config: str | None, as_json: bool) -> None:
    """The registered models, newest first; * marks the active one (read-only)."""
    from parley.data import models

    rows = models.versions(readonly_database_of(settings_of(config)))
    if as_json:
        for row in rows:
            click.echo(json.dumps(models.describe(row)))
        return
    if not rows:
        click.echo("no trained models yet: run `parley train`")
        return
    click.echo(f"{'':2}{'VERSION':28}{'ACCURACY':>10}{'MACRO-F1':>10}  {'CREATED':18}LEARNED FROM")
    for row in rows:
        metrics = json.loads(row.metrics)
        # The start of the export's SHA-256 (as `sha256sum` prints it; `--json` has it whole).
        export_sha256 = models.export_sha256_of(row)
        learned_from = f"export sha256:{export_sha256[:12]}" if export_sha256 else "the database's labels"
        click.echo(f"{'*' if row.active else ' '} {row.version:28}{metrics.get('accuracy', 0):>10.1%}"
                   f"{metrics.get('macro_f1', 0):>10.3f}  {row.created_at:%Y-%m-%d %H:%M}  {learned_from}")


@models_group.command("activate")
@click.argument("version")
@click.pass_obj
def models_activate(config: str | None, version: str) -> None:
    """Answer with VERSION (model first, retrieval when it is unsure) from the next start."""
    from parley.data import models

    settings = settings_of(config)
    database = database_of(settings)
    try:
        row = models.activate(database, version)
        models.load(settings.models_dir, row)  # refuse now what the server would refuse at start
    except (NotFound, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"activated {row.version}: running Parley answers with it within "
               f"{settings.data.model_refresh_seconds:g} s")


@models_group.command("rollback")
@click.pass_obj
def models_rollback(config: str | None) -> None:
    """Return to the previously active model (or to retrieval alone)."""
    from parley.data import models

    settings = settings_of(config)
    previous = models.rollback(database_of(settings))
    click.echo(f"activated {previous.version}" if previous else
               "no model active: retrieval answers alone")
    click.echo(f"running Parley follows within {settings.data.model_refresh_seconds:g} s")


@click.command("eval")
@click.argument("questions", type=click.File("r", encoding="utf-8"))
@click.option("--model", "version", help="Evaluate this registered model (default: the active one).")
@click.option("--model-record", type=click.File("r", encoding="utf-8"),
              help="Evaluate the registered model this record names (`parley train --record` wrote it).")
@click.option("--no-model", is_flag=True, help="Retrieval alone, as with no model active.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_obj
def evaluate(config: str | None, questions: Any, version: str | None, model_record: Any, no_model: bool,
             as_json: bool) -> None:
    """Answer each question (columns text,expected) as a customer's message and score the answers."""
    from parley.channels.direct import CollectingChannel
    from parley.core.engine import RetrievalEngine
    from parley.data import evaluation, models
    from parley.data.knowledge_model import knowledge_model_of
    from parley.wiring.knowledge import knowledge_index_of

    if sum((version is not None, model_record is not None, no_model)) > 1:
        raise click.UsageError("choose one of --model, --model-record and --no-model")
    if model_record is not None:
        version = _recorded_version(model_record)
    settings = settings_of(config)
    try:
        items = evaluation.read_questions(questions)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    classifier = None
    if not no_model:  # retrieval alone reads no database at all
        database = readonly_database_of(settings)
        try:
            classifier = _pick_model(database, settings, version, models)
        except (NotFound, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
    index = knowledge_index_of(settings)
    if classifier is None and not no_model:
        # What a running Parley answers with when no model is active.
        embedding_dir = settings.knowledge.embedding_dir
        classifier = knowledge_model_of(index, cache_dir=settings.knowledge_cache_dir,
                                        embedding_model=str(embedding_dir) if embedding_dir else None)
    offline = RetrievalEngine(index, classifier, min_model_confidence=settings.data.model_min_confidence)
    channel = CollectingChannel(evaluation.CHANNEL)
    with _scratch_pipeline(settings, offline, channel) as pipeline:
        outcomes = evaluation.run(lambda envelope: channel.ask(pipeline.process, envelope),
                                  progress(items, unit="questions", total=len(items)))
    report = evaluation.summarise(outcomes)
    click.echo(json.dumps(report.as_dict()) if as_json else evaluation.format_report(report))


@contextlib.contextmanager
def _scratch_pipeline(settings: Any, engine: Any, channel: Any) -> Iterator[Any]:
    """The pipeline every message takes, on a log and sessions of its own that are thrown away:
    the questions are asked the way customers' messages are, and kept out of the real log."""
    from parley.core.dialogue import Dialogue
    from parley.worker.pipeline import Outbox, Pipeline
    from parley.stores.memory import MemorySendLedger, MemorySessionStore
    from parley.stores.sql import SqlConversationLog, open_database
    from parley.wiring import policy_of

    with tempfile.TemporaryDirectory(prefix="parley-eval-") as scratch:
        log = SqlConversationLog(open_database(f"sqlite:///{Path(scratch) / 'eval.db'}"))
        log.create_schema()
        dialogue = Dialogue(engine=engine, sessions=MemorySessionStore(ttl=3600), policy=policy_of(settings),
                            events=log)
        try:
            yield Pipeline(dialogue=dialogue, log=log, outbox=Outbox({channel.name: channel}, MemorySendLedger()))
        finally:
            log.database.dispose()


def _recorded_version(record: Any) -> str:
    try:
        version = json.load(record).get("version")
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, str):
        raise click.ClickException(f"{record.name}: not a model record (`parley train --record` writes one)")
    return version


def _pick_model(database: Any, settings: Any, version: str | None, models: Any) -> Any:
    if version is None:
        return models.active_model(database, settings.models_dir)
    row = next((row for row in models.versions(database) if row.version == version), None)
    if row is None:
        raise NotFound(f"no model version {version!r} (see `parley models list`)")
    return models.load(settings.models_dir, row)
