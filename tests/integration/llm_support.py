"""Shared by the ``test_llm_*`` modules: the Chat Completions stub and settings that point at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parley.settings import Settings
from tests.conftest import make_settings
from tests.stubs.openai_stub import OpenAIStub

API_KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    stub = OpenAIStub().start()
    yield stub
    stub.stop()


def llm_settings(tmp_path: Path, stub: OpenAIStub, *, environ: dict[str, str] | None = None,
                 **llm: Any) -> Settings:
    """The sample YAML with the key set and the API at the stub; ``llm`` overrides that section."""
    settings = make_settings(tmp_path, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=stub.base_url,
                             **(environ or {}))
    llm.setdefault("max_retries", 1)
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=llm)})


def user_contents(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "user"]


def system_contents(request: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in request["messages"] if m["role"] == "system")
