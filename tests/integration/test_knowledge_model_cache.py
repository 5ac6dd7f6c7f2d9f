"""The knowledge base's own model is fitted once per content and read back by later processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from parley.core.knowledge import KnowledgeIndex
from parley.data.knowledge_model import knowledge_model_of
from parley.stores.embeddings import OnnxEmbedder
from parley.stores.knowledge import load_index
from tests.integration.knowledge_support import PARROT, sample_copy

QUESTIONS = ["I can't log in, it says my account is blocked", "where is my parcel", "when will my refund show up on my card"]


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return sample_copy(tmp_path)


def models_in(cache: Path) -> list[Path]:
    return sorted(cache.glob("knowledge-model-*.joblib"))


def answers(index: KnowledgeIndex, cache: Path, questions: list[str]) -> list[tuple[str, float]]:
    model = knowledge_model_of(index, cache_dir=cache, embedding_model=None)
    assert model is not None
    return [(p.intent, p.confidence) for p in map(model.predict, questions)]


def test_a_later_start_reads_the_model_the_first_fitted(knowledge: Path, tmp_path: Path,
                                                        embedder: OnnxEmbedder) -> None:
    cache = tmp_path / "cache"
    index = load_index(knowledge, embedder=embedder)
    fitted = answers(index, cache, QUESTIONS)
    assert [intent for intent, _ in fitted] == ["account-locked", "track-order", "refund-timing"]
    [stored] = models_in(cache)
    read_back = knowledge_model_of(load_index(knowledge, embedder=embedder), cache_dir=cache, embedding_model=None)
    assert read_back is not None and read_back.version == f"knowledge-{index.version}"
    assert [(p.intent, p.confidence) for p in map(read_back.predict, QUESTIONS)] == fitted
    assert models_in(cache) == [stored]


def test_a_new_article_fits_a_new_model_that_knows_it(knowledge: Path, tmp_path: Path,
                                                      embedder: OnnxEmbedder) -> None:
    cache = tmp_path / "cache"
    answers(load_index(knowledge, embedder=embedder), cache, QUESTIONS)
    (knowledge / "parrot-care.md").write_text(PARROT, encoding="utf-8")
    [(intent, _)] = answers(load_index(knowledge, embedder=embedder), cache, ["can I come with my parrot"])
    assert intent == "parrot-care"
    assert len(models_in(cache)) == 2


def test_a_torn_file_is_fitted_again_and_replaced(knowledge: Path, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    cache = tmp_path / "cache"
    index = load_index(knowledge, embedder=embedder)
    fitted = answers(index, cache, QUESTIONS)
    [stored] = models_in(cache)
    stored.write_bytes(stored.read_bytes()[:100])  # a disk that filled up mid-write, say
    with capture_logs() as logged:
        assert answers(index, cache, QUESTIONS) == fitted
    assert [line["path"] for line in logged if line["event"] == "knowledge_model_unreadable"] == [str(stored)]
    assert stored.stat().st_size > 100


def test_without_embeddings_there_is_no_model_and_no_file(knowledge: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert knowledge_model_of(load_index(knowledge), cache_dir=cache, embedding_model=None) is None
    assert models_in(cache) == []
