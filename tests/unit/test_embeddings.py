"""The sentence-embedding model: loaded from files it checks, never downloaded, and meaningful."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from parley.errors import ConfigError
from parley.stores.embeddings import (DEFAULT_DIGESTS, MINILM_DIR, OnnxEmbedder, default_files,
                                      directory_files, sha256_of)


def test_default_model_files_have_the_pinned_digests() -> None:
    files = default_files()
    assert sha256_of(files.model) == DEFAULT_DIGESTS["model.onnx"]
    assert sha256_of(files.tokenizer) == DEFAULT_DIGESTS["tokenizer.json"]
    assert files.tokenizer.parent == MINILM_DIR


def test_a_rewording_is_nearer_than_an_unrelated_question(embedder: OnnxEmbedder) -> None:
    forgot, reset, weather = embedder.embed(["I forgot my password", "how do I reset my login",
                                             "what's the weather in Paris tomorrow"])
    assert embedder.dimensions == 384
    assert np.isclose(np.linalg.norm(forgot), 1.0, atol=1e-4)
    assert forgot @ reset > 0.5 > 0.2 > forgot @ weather


def test_one_text_and_many_give_the_same_vectors(embedder: OnnxEmbedder) -> None:
    texts = [f"where is my order number {n}" for n in range(70)]  # more than one batch
    many = embedder.embed(texts)
    assert np.allclose(many[65], embedder.embed([texts[65]])[0], atol=1e-5)


def _export(tmp_path: Path) -> Path:
    """A directory in Hugging Face's ONNX export layout, holding the default model's files."""
    files = default_files()
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "model.onnx").symlink_to(files.model)
    shutil.copy(files.tokenizer, directory / "tokenizer.json")
    return directory


def test_a_model_directory_of_the_admins_own_loads(tmp_path: Path, embedder: OnnxEmbedder) -> None:
    directory = _export(tmp_path)
    (directory / "sha256sums.json").write_text(json.dumps(DEFAULT_DIGESTS))
    own = OnnxEmbedder(directory_files(directory))
    assert own.version == embedder.version
    assert np.allclose(own.embed(["hello there"]), embedder.embed(["hello there"]), atol=1e-5)


def test_a_changed_file_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    directory = _export(tmp_path)
    (directory / "tokenizer.json").write_text((directory / "tokenizer.json").read_text()[:-10])
    (directory / "sha256sums.json").write_text(json.dumps(DEFAULT_DIGESTS))
    with pytest.raises(ConfigError, match=r"tokenizer.json has sha256 [0-9a-f]{64}, expected be50c362"):
        OnnxEmbedder(directory_files(directory))


def test_a_missing_model_is_named_and_never_fetched(tmp_path: Path) -> None:
    directory = _export(tmp_path)
    (directory / "model.onnx").unlink()
    with pytest.raises(ConfigError, match=r"model.onnx does not exist \(the model is never downloaded"):
        OnnxEmbedder(directory_files(directory))
