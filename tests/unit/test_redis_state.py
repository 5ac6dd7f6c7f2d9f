"""Pure parts of the scale-out state: settings, retry backoff, session serialisation."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from parley.core.sessions import Session, Turn
from parley.errors import ConfigError
from parley.worker.pool import backoff
from parley.settings import load_settings
from parley.stores.redis import session_from_json
from tests.conftest import make_settings


def test_inbox_settings_default_to_sixteen_shards_and_hundreds_of_workers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    storage = settings.storage
    assert storage.inbox_shards == 16
    assert (settings.server.workers_for(llm=True), settings.server.workers_for(llm=False)) == (256, 16)
    assert (storage.visibility_timeout_seconds, storage.max_attempts, storage.key_prefix) == (30.0, 5, "parley:")


def test_zero_shards_is_refused_with_the_key_path(tmp_path: Path) -> None:
    config = tmp_path / "parley.yaml"
    config.write_text("storage:\n  inbox_shards: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"storage\.inbox_shards: Input should be greater than or equal to 1"):
        load_settings(config, environ={})


def test_the_old_partitions_key_is_refused_with_the_key_path(tmp_path: Path) -> None:
    config = tmp_path / "parley.yaml"
    config.write_text("storage:\n  partitions: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"storage\.partitions: unknown key"):
        load_settings(config, environ={})


def test_retries_back_off_exponentially_up_to_a_cap() -> None:
    assert [backoff(n) for n in range(1, 8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0]


def test_a_session_survives_its_json_form() -> None:
    session = Session(conversation_id="slack:T1:D1", channel="slack", route={"channel": "D1"},
                      history=(Turn(role="customer", text="hi 👋", at=1.0), Turn(role="bot", text="Hello!", at=2.0)),
                      handoff="claimed", claimed_by="U0REP", created_at=1.0, updated_at=2.0)
    assert session_from_json(json.dumps(asdict(session))) == session


def test_fields_a_newer_version_wrote_are_ignored_by_an_older_one() -> None:
    data = {**asdict(Session(conversation_id="c", channel="widget")), "field_from_the_future": 1}
    assert session_from_json(json.dumps(data)) == Session(conversation_id="c", channel="widget")
