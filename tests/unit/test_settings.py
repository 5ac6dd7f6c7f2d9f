from __future__ import annotations

from pathlib import Path

import pytest

from parley.errors import ConfigError
from parley.settings import load_settings
from tests.conftest import CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "parley.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_config_loads_with_embedded_defaults() -> None:
    settings = load_settings(CONFIG, environ={})
    assert settings.storage.redis_url is None
    assert settings.storage.database_url is None
    assert settings.database_url == "sqlite:///var/parley.db"
    assert settings.server.port == 8000


def test_environment_switches_on_real_stores() -> None:
    settings = load_settings(CONFIG, environ={"REDIS_URL": "redis://127.0.0.1:6379/3",
                                              "DATABASE_URL": "postgres://u:pw@db/parley", "PORT": "9001"})
    assert settings.storage.redis_url is not None
    assert settings.storage.redis_url.get_secret_value() == "redis://127.0.0.1:6379/3"
    assert settings.database_url == "postgresql+psycopg://u:pw@db/parley"
    assert settings.server.port == 9001


def test_secrets_are_masked_in_repr() -> None:
    settings = load_settings(CONFIG, environ={"DATABASE_URL": "postgres://u:hunter2@db/x",
                                              "PARLEY_ADMIN_TOKEN": "s3cret-token"})
    assert "hunter2" not in repr(settings)
    assert "s3cret-token" not in repr(settings)
    assert "**********" in repr(settings.admin)


def test_default_expansion_and_knowledge_override(tmp_path: Path) -> None:
    path = write(tmp_path, "bot:\n  title: ${TITLE:-Help desk}\nknowledge:\n  path: somewhere/else\n")
    settings = load_settings(path, environ={"PARLEY_KNOWLEDGE": "/srv/kb"})
    assert settings.bot.title == "Help desk"
    assert settings.knowledge.path == Path("/srv/kb")


def test_parley_config_variable_selects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bot:\n  title: From env\n")
    assert load_settings(environ={"PARLEY_CONFIG": str(path)}).bot.title == "From env"


@pytest.mark.parametrize(("yaml_text", "expected"), [
    ("bot:\n  titel: typo\n", "bot.titel: unknown key (check the spelling)"),
    ("server:\n  port: eighty\n", "server.port: Input should be a valid integer"),
    ("server:\n  port: 70000\n", "server.port: Input should be less than or equal to 65535"),
    ("knowledge:\n  min_confidence: 2\n", "knowledge.min_confidence: Input should be less than or equal to 1"),
    ("bot:\n  title: ${MISSING_TITLE}\n", "bot.title: environment variable MISSING_TITLE is not set"),
    ("bot: [1, 2\n", "not valid YAML"),
    ("- just\n- a list\n", "the top level must be a mapping"),
])
def test_invalid_files_name_file_key_and_reason(tmp_path: Path, yaml_text: str, expected: str) -> None:
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found .*PARLEY_CONFIG"):
        load_settings(tmp_path / "nope.yaml", environ={})
