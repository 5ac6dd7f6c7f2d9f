"""Labels, training, model versions and evaluation, through the ``parley`` CLI and the widget."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlmodel import Session

from parley.cli import main
from parley.settings import load_settings
from parley.stores.sql import Message
from parley.webhooks.app import create_app
from tests.conftest import CONFIG, ROOT, make_settings
from tests.integration.data_support import environ_for, fresh_database

PARAPHRASES = str(ROOT / "tests" / "data" / "paraphrases.csv")


class Workspace:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path, self.env = tmp_path, env

    def run(self, *args: str) -> Result:
        return CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), *args], env=self.env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result.output

    def ask(self, *texts: str, thumbs_down: str = "") -> list[Message]:
        """Ask through the widget of a freshly started app; the bot messages as logged."""
        app = create_app(make_settings(self.tmp_path, **self.env))
        try:
            client: FlaskClient = app.test_client()
            ids = []
            for text in texts:
                body = client.post("/widget/api/messages", json={"text": text}).get_json()
                ids.append(body["replies"][0]["id"])
                if text == thumbs_down:
                    vote = {"conversation_id": body["conversation_id"], "message_id": ids[-1], "score": -1}
                    assert client.post("/widget/api/feedback", json=vote,
                                       headers={"X-Parley-Secret": body["secret"]}).status_code == 201
            with Session(app.extensions["parley"].log.database) as session:
                return [session.scalars(select(Message).where(Message.public_id == i)).one() for i in ids]
        finally:
            app.extensions["parley"].close()


@pytest.fixture(params=["sqlite", "postgres"])
def both(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    with fresh_database(request.param, tmp_path) as url:
        yield Workspace(tmp_path, {"PARLEY_DATA_DIR": str(tmp_path / "var"), **environ_for(url)})


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """SQLite only: the SQL these tests run is the same on PostgreSQL (the tests above prove it)."""
    return Workspace(tmp_path, {"PARLEY_DATA_DIR": str(tmp_path / "var")})


def test_activating_a_model_changes_who_answers_visibly_in_the_log(both: Workspace) -> None:
    workspace = both
    question = "I forgot my password"
    [before] = workspace.ask(question)
    assert before.model_version is not None and before.model_version.startswith("knowledge-")  # the model of the articles' own questions

    trained = workspace.ok("train", "--activate")
    version = trained.split("saved model ")[1].split()[0]
    assert f"activated {version}" in trained
    assert f"saved model {version}" in workspace.ok("train")  # same data and seed: same version
    [listed] = [json.loads(line) for line in workspace.ok("models", "list", "--json").splitlines()]
    assert listed["version"] == version and listed["active"] is True
    assert listed["params"]["libraries"]["scikit-learn"] and listed["content_hash"]
    assert (workspace.tmp_path / "var" / "models" / f"{version}.joblib").exists()

    [after] = workspace.ask(question)
    assert after.model_version == version
    assert after.intent == "reset-password" and "Forgot password" in after.text

    assert "no model active: retrieval answers alone" in workspace.ok("models", "rollback")
    [rolled_back] = workspace.ask(question)
    assert rolled_back.model_version == before.model_version
    assert f"activated {version}" in workspace.ok("models", "activate", version)


def test_a_running_bot_follows_activate_and_rollback_without_a_restart(workspace: Workspace) -> None:
    version = workspace.ok("train").split("saved model ")[1].split()[0]
    config = workspace.tmp_path / "parley.yaml"  # the sample, checking the active model on every message
    config.write_text(CONFIG.read_text().replace("model_refresh_seconds: 30", "model_refresh_seconds: 0"))
    app = create_app(load_settings(config, environ={
        **workspace.env, "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge")}))
    client = app.test_client()

    def answered_by() -> str | None:
        reply_id = client.post("/widget/api/messages", json={"text": "I forgot my password"}).get_json()[
            "replies"][0]["id"]
        with Session(app.extensions["parley"].log.database) as session:
            return session.scalars(select(Message.model_version).where(Message.public_id == reply_id)).one()

    try:
        assert answered_by().startswith("knowledge-")
        workspace.ok("models", "activate", version)
        assert answered_by() == version
        workspace.ok("models", "rollback")
        assert answered_by().startswith("knowledge-")
    finally:
        app.extensions["parley"].close()


def test_activating_an_unknown_or_altered_model_is_refused(workspace: Workspace) -> None:
    unknown = workspace.run("models", "activate", "tfidf-logreg-nope")
    assert unknown.exit_code == 1 and "no model version 'tfidf-logreg-nope'" in unknown.stderr
    version = workspace.ok("train").split("saved model ")[1].split()[0]
    artefact = workspace.tmp_path / "var" / "models" / f"{version}.joblib"
    artefact.write_bytes(artefact.read_bytes() + b"tampered")
    altered = workspace.run("models", "activate", version)
    assert altered.exit_code == 1 and "does not match its registered content hash" in altered.stderr


def test_label_suggest_import_and_train_on_labels(workspace: Workspace) -> None:
    workspace.ask("my card was charged twice", "do you sell gift cards", "I forgot my password",
                  thumbs_down="do you sell gift cards")

    suggested = list(csv.DictReader(io.StringIO(workspace.ok("label", "suggest", "--limit", "10"))))
    assert [row["text"] for row in suggested][0] == "do you sell gift cards"  # bad feedback first
    assert suggested[0]["feedback"] == "-1" and len(suggested) == 3

    labels = workspace.tmp_path / "labels.csv"
    by_text = {"my card was charged twice": "double-charge", "do you sell gift cards": "handoff",
               "I forgot my password": "no-such-article"}
    with labels.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["message_id", "intent"])
        writer.writerows([row["message_id"], by_text[row["text"]]] for row in suggested)
        writer.writerow(["widget:unknown", "double-charge"])
    result = workspace.run("label", "import", str(labels))
    assert result.exit_code == 0
    assert "stored 2 labels, skipped 2 rows" in result.output
    assert "unknown intent 'no-such-article'" in result.stderr and "'widget:unknown'" in result.stderr

    exported = [json.loads(line) for line in workspace.ok("export", "--no-redact").splitlines()]
    assert {row["text"]: row["label"] for row in exported if row["direction"] == "in"} == {
        "my card was charged twice": "double-charge", "do you sell gift cards": "handoff",
        "I forgot my password": None}
    assert "(2 labelled messages)" in workspace.ok("train")
    assert len(list(csv.DictReader(io.StringIO(workspace.ok("label", "suggest"))))) == 1


def test_eval_reports_out_of_scope_recall_of_the_default_engine(workspace: Workspace) -> None:
    """The sample paraphrases and the off-topic questions (no expected: the bot should refuse),
    answered by what `./dev run` answers with when no model is trained."""
    questions = workspace.tmp_path / "questions.csv"
    off_topic = (ROOT / "tests" / "data" / "off_topic.csv").read_text(encoding="utf-8").splitlines()[1:]
    questions.write_text(Path(PARAPHRASES).read_text(encoding="utf-8")
                         + "".join(f"{text},\n" for text in off_topic), encoding="utf-8")
    workspace.ok("db", "upgrade")  # eval reads which model is active, and never migrates itself
    report = json.loads(workspace.ok("eval", str(questions), "--json"))
    assert report["questions"] == 64 and report["out_of_scope"] == 15
    # Measured: 14 of 15 off-topic refused, 46 of 49 paraphrases right (93.9%).
    assert report["oos_recall"] >= round(14 / 15, 4)  # the report rounds to 4 places
    assert report["in_scope_accuracy"] >= 0.85
    assert [by.split("-")[0] for by in report["answered_by"]] == ["knowledge", "retrieval"]
    printed = workspace.ok("eval", str(questions))
    assert "out of scope   15 questions:" in printed and "(OOS recall)" in printed


def test_eval_compares_retrieval_with_the_trained_model(workspace: Workspace) -> None:
    baseline = json.loads(workspace.ok("eval", PARAPHRASES, "--no-model", "--json"))
    assert baseline["questions"] == 49 and list(baseline["answered_by"]) == [
        next(iter(baseline["answered_by"]))]
    version = workspace.ok("train").split("saved model ")[1].split()[0]
    candidate = json.loads(workspace.ok("eval", PARAPHRASES, "--model", version, "--json"))
    # Measured on the sample knowledge base: retrieval 57.1%, the trained model first 63.3%.
    assert candidate["accuracy"] > baseline["accuracy"]
    assert candidate["answered_by"][version] > 0
    assert 0 < candidate["p50_ms"] <= candidate["p99_ms"]
    printed = workspace.ok("eval", PARAPHRASES, "--model", version)
    assert "top-1 accuracy" in printed and "most confused (expected -> answered):" in printed


def test_train_logs_to_mlflow_when_a_tracking_uri_is_set(tmp_path: Path) -> None:
    import mlflow

    store = tmp_path / "mlruns"
    workspace = Workspace(tmp_path, {"PARLEY_DATA_DIR": str(tmp_path / "var"),
                                     "MLFLOW_TRACKING_URI": store.as_uri()})
    output = workspace.ok("train", "--seed", "3")
    run_id = output.split("logged to MLflow run ")[1].split()[0]
    run = mlflow.MlflowClient(tracking_uri=store.as_uri()).get_run(run_id)
    held_out = output.split("accuracy ")[1].split("%")[0]
    assert round(run.data.metrics["accuracy"] * 100, 1) == float(held_out)
    assert run.data.params["seed"] == "3" and run.data.params["kind"] == "hybrid-svm"
    artefacts = {item.path for item in mlflow.MlflowClient(tracking_uri=store.as_uri()).list_artifacts(run_id)}
    assert any(path.endswith(".joblib") for path in artefacts)


def test_a_running_bot_keeps_its_model_when_the_newly_active_one_is_broken(workspace: Workspace) -> None:
    from parley.data import models
    from parley.data.live import LiveModel
    from parley.stores.sql import open_database

    good = workspace.ok("train", "--activate").split("saved model ")[1].split()[0]
    broken = workspace.ok("train", "--kind", "tfidf-logreg-body").split("saved model ")[1].split()[0]
    settings = make_settings(workspace.tmp_path, **workspace.env)
    engine = open_database(settings.database_url)
    now = [0.0]
    live = LiveModel(engine, settings.models_dir, refresh_seconds=30, clock=lambda: now[0])
    assert live.predict("I forgot my password").version == good
    (settings.models_dir / f"{broken}.joblib").write_bytes(b"truncated")
    models.activate(engine, broken)
    now[0] = 10.0  # within the refresh interval: not even looked at
    assert live.predict("I forgot my password").version == good
    now[0] = 31.0  # looked at, refused (hash mismatch), the previous model goes on answering
    prediction = live.predict("I forgot my password")
    assert prediction.version == good and prediction.intent == "reset-password"
    engine.dispose()


def test_eval_json_prints_the_document_alone_with_a_model_active(tmp_path: Path) -> None:
    # A real process, as a script runs it: `parley eval --json | jq` must read only the JSON.
    import subprocess
    import sys

    env = {"PATH": str(Path(sys.executable).parent), "PARLEY_CONFIG": str(CONFIG), "HOME": str(tmp_path),
           "PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
           "PARLEY_CACHE_DIR": os.environ["PARLEY_CACHE_DIR"]}
    parley = str(Path(sys.executable).with_name("parley"))
    trained = subprocess.run([parley, "train", "--activate"], env=env, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run([parley, "eval", PARAPHRASES, "--json"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is the document
    assert report["questions"] == 49 and sum(report["answered_by"].values()) == 49
    assert any(not by.startswith("retrieval-") for by in report["answered_by"])  # the active model


class _Planted:
    """What someone with write access to the SQL registry (and none to the models directory) plants:
    a pickle that runs code when joblib loads it (here: it creates a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _plant(workspace: Workspace, version: str, artefact: str, content: bytes) -> None:
    import hashlib

    from parley.data import models
    from parley.stores.sql import ModelVersion, open_database

    database = open_database(f"sqlite:///{workspace.tmp_path / 'var' / 'parley.db'}")
    with Session(database) as session:
        session.add(ModelVersion(version=version, kind="tfidf-logreg", artefact=artefact,
                                 content_hash=hashlib.sha256(content).hexdigest()))
        session.commit()
    models.activate(database, version)
    database.dispose()


@pytest.mark.parametrize("where", ["absolute", "parent"])
def test_a_model_row_cannot_make_the_bot_load_a_file_of_its_choosing(workspace: Workspace, where: str) -> None:
    import io

    import joblib

    workspace.ok("train", "--activate")
    models_dir = workspace.tmp_path / "var" / "models"
    marker = workspace.tmp_path / "code-ran"
    buffer = io.BytesIO()
    joblib.dump(_Planted(marker), buffer)
    planted = buffer.getvalue()
    outside = workspace.tmp_path / "var" / "planted.joblib"  # in the data dir, beside the database
    outside.write_bytes(planted)
    artefact = {"absolute": str(outside), "parent": "../planted.joblib"}[where]
    assert (models_dir / artefact).resolve() == outside.resolve()
    _plant(workspace, "tfidf-logreg-planted", artefact, planted)
    config = workspace.tmp_path / "parley.yaml"
    config.write_text(CONFIG.read_text().replace("model_refresh_seconds: 30", "model_refresh_seconds: 0"))
    settings = load_settings(config, environ={**workspace.env, "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge")})
    from parley.errors import ConfigError

    with pytest.raises(ConfigError, match="tfidf-logreg-planted"):
        create_app(settings)  # a process starting refuses it (loudly)
    refused = workspace.run("models", "activate", "tfidf-logreg-planted")
    assert refused.exit_code == 1
    assert not marker.exists()  # and nothing of it ever ran
