"""A relative ``knowledge.path`` in the YAML means the same wherever Parley is started from."""

from __future__ import annotations

from pathlib import Path

from parley.settings import load_settings


def test_a_relative_knowledge_path_is_read_beside_the_yaml(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "parley.yaml"
    config.parent.mkdir()
    config.write_text("knowledge:\n  path: kb\n", encoding="utf-8")
    assert load_settings(config, environ={}).knowledge.path == tmp_path / "conf" / "kb"
    config.write_text(f"knowledge:\n  path: {tmp_path / 'abs'}\n", encoding="utf-8")
    assert load_settings(config, environ={}).knowledge.path == tmp_path / "abs"


def test_parley_knowledge_stays_relative_to_where_it_was_typed(tmp_path: Path) -> None:
    config = tmp_path / "parley.yaml"
    config.write_text("knowledge:\n  path: ${PARLEY_KNOWLEDGE:-kb}\n", encoding="utf-8")
    assert load_settings(config, environ={"PARLEY_KNOWLEDGE": "articles"}).knowledge.path == Path("articles")
    assert load_settings(config, environ={}).knowledge.path == tmp_path / "kb"


def test_the_sample_finds_its_knowledge_base_from_any_directory() -> None:
    sample = Path(__file__).resolve().parents[2] / "config" / "parley.yaml"
    assert (load_settings(sample, environ={}).knowledge.path / "account" / "reset-password.md").is_file()
