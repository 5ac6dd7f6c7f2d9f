"""Settings loading under random YAML: a valid ``Settings`` or a ``ConfigError``, nothing else.

Trees keep the real sections and keys often (so validation goes deep), with values of any type
and ``${VAR}`` references, set or not; raw text covers what YAML itself may make of anything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from parley.errors import ConfigError
from parley.settings import Settings, load_settings
from tests.conftest import CONFIG
from tests.fuzz.strategies import json_value

FUZZ = settings(max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "100")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
SAMPLE = yaml.safe_load(CONFIG.read_text())
ENVIRON = {"PARLEY_DATA_DIR": "var-fuzz", "REDIS_URL": "redis://127.0.0.1:6379/0", "EMPTY": "",
           "PORT": "not-a-port"}

reference = st.sampled_from(["${REDIS_URL}", "${UNSET_VAR}", "${UNSET_VAR:-fallback}", "${EMPTY:-}",
                             "${PORT}", "${", "$${X}", "${1BAD}"])
value = json_value | reference | st.sampled_from(["09:00", "Europe/Paris", "Mars/Olympus", "mon", "#fff", "-1"])


def section(name: str, keys: dict[str, object]) -> st.SearchStrategy:
    """A real section: its real keys with random values, sometimes an unknown key, or junk."""
    known = st.fixed_dictionaries({}, optional={key: value | st.just(keys[key]) for key in keys})
    extra = st.dictionaries(st.text(max_size=10), value, max_size=2)
    return st.one_of(known, st.tuples(known, extra).map(lambda pair: {**pair[0], **pair[1]}), value)


tree = st.fixed_dictionaries({}, optional={
    name: section(name, keys if isinstance(keys, dict) else {}) for name, keys in SAMPLE.items()}) | json_value


def load(text: str, environ: dict[str, str]) -> Settings | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "parley.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_settings(path, environ=environ)
        except ConfigError as exc:
            assert str(path) in str(exc)  # the file is named, whatever went wrong
            return None


@FUZZ
@given(data=tree, environ=st.dictionaries(st.sampled_from(["REDIS_URL", "PORT", "OPENAI_API_KEY", "EMPTY"]),
                                          st.text(max_size=30), max_size=3))
def test_random_trees_load_or_raise_config_error(data: object, environ: dict[str, str]) -> None:
    loaded = load(yaml.safe_dump(data, allow_unicode=True), {**ENVIRON, **environ})
    event("loaded" if loaded is not None else "ConfigError")
    assert loaded is None or isinstance(loaded, Settings)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_loads_or_raises_config_error(text: str) -> None:
    load(text, ENVIRON)  # any exception but ConfigError fails the test


@FUZZ
@given(seed=st.sampled_from(["", "- a\n- b\n", "bot: [1, 2]\n", "server:\n  port: 99999\n", ": :\n",
                             "&a [*a]\n", "!!python/object:os.system {}\n", "a: !!binary AAAA\n",
                             "storage:\n  redis_url: ${REDIS_URL\n", "\ufeffbot: {}\n"]),
       suffix=st.text(max_size=40))
def test_yaml_edge_cases_load_or_raise_config_error(seed: str, suffix: str) -> None:
    load(seed + suffix, ENVIRON)  # any exception but ConfigError fails the test


def test_the_sample_file_itself_loads() -> None:
    assert isinstance(load(CONFIG.read_text(), {"PARLEY_DATA_DIR": "var-fuzz"}), Settings)
