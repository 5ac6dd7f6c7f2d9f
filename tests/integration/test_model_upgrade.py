"""A model trained under another scikit-learn release still answers, and says it wants retraining."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from click.testing import CliRunner
from sqlmodel import Session
from structlog.testing import capture_logs

from parley.cli import main
from parley.data import models
from parley.stores.sql import open_database
from parley.stores.sql_tables import ModelVersion
from tests.conftest import CONFIG, make_settings


def test_a_model_from_an_older_scikit_learn_asks_to_be_retrained(tmp_path: Path) -> None:
    env = {"PARLEY_DATA_DIR": str(tmp_path / "var")}
    trained = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), "train"], env=env)
    assert trained.exit_code == 0, trained.output
    settings = make_settings(tmp_path)
    database = open_database(settings.database_url)
    [row] = models.versions(database)
    with capture_logs() as same_release:
        models.load(settings.models_dir, row)
    assert not [line for line in same_release if line["event"] == "model_trained_with_other_scikit_learn"]

    # The registry as a model trained before the upgrade left it (its artefact is untouched).
    params = json.loads(row.params)
    params["libraries"]["scikit-learn"] = "1.7.2"
    with Session(database) as session:
        stored = session.get(ModelVersion, row.version)
        stored.params = json.dumps(params)
        session.add(stored)
        session.commit()
    [older] = models.versions(database)
    with capture_logs() as upgraded:
        model = models.load(settings.models_dir, older)
    assert model.predict("I forgot my password").intent == "reset-password"
    [warning] = [line for line in upgraded if line["event"] == "model_trained_with_other_scikit_learn"]
    assert warning["log_level"] == "warning" and warning["trained_with"] == "1.7.2"
    assert warning["running"] == metadata.version("scikit-learn")
    assert warning["fix"] == "retrain: parley train --activate"
    database.dispose()
