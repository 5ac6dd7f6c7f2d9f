"""The answer cache: repeats cost no API call; context, knowledge and prompt changes bypass it."""

from __future__ import annotations

import shutil
import threading
import uuid
from pathlib import Path

from parley.core.engine import RetrievalEngine
from parley.core.knowledge import KnowledgeIndex
from parley.engines.budget import TokenBudget
from parley.engines.cache import RedisAnswerCache
from parley.engines.clients import ClientPool
from parley.engines.openai_engine import OpenAIEngine
from parley.stores.knowledge import load_index
from parley.stores.redis import connect
from tests.conftest import ROOT, Bot
from tests.integration.llm_support import llm_settings, openai_stub  # noqa: F401
from tests.stubs.openai_stub import OpenAIStub


def test_the_same_question_again_is_answered_with_zero_api_calls(tmp_path: Path,
                                                                  openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub))
    answer = bot.ask("How do I reset my password?")
    bot.conversation_id = "another-customer"
    again = bot.ask("  how do I RESET my password ")  # the same question, typed differently
    assert openai_stub.calls == 1
    assert again.text == answer.text
    assert again.meta.sources == answer.meta.sources
    assert (again.meta.cached, again.meta.prompt_tokens) == (True, None)


def test_a_follow_up_that_leans_on_the_conversation_is_not_cached(tmp_path: Path,
                                                                   openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub))
    bot.ask("How long does delivery take?")
    bot.ask("and how much does it cost?")
    bot.conversation_id = "another-customer"
    bot.ask("How long does delivery take?")
    bot.ask("and how much does it cost?")
    # The first question is served from the cache; the follow-up goes to the API both times.
    assert openai_stub.calls == 3
    assert [user[-1] for user in ([m["content"] for m in r["messages"] if m["role"] == "user"]
                                  for r in openai_stub.requests)] == [
        "How long does delivery take?", "and how much does it cost?", "and how much does it cost?"]


def test_editing_the_knowledge_base_or_the_persona_invalidates_the_cache(tmp_path: Path, redis_url: str,
                                                                          openai_stub: OpenAIStub) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(ROOT / "config" / "knowledge", knowledge)
    settings = llm_settings(tmp_path, openai_stub, environ={"PARLEY_KNOWLEDGE": str(knowledge)})
    Bot(settings).ask("How do I reset my password?")
    Bot(settings).ask("How do I reset my password?")  # a restart keeps nothing in the embedded cache
    assert openai_stub.calls == 2

    def engine(index: KnowledgeIndex, persona: str, cache: RedisAnswerCache) -> OpenAIEngine:
        return OpenAIEngine(clients=ClientPool(settings.llm), settings=settings.llm, index=index,
                            persona=persona, fallback=RetrievalEngine(index), cache=cache,
                            budget=TokenBudget(None, used_since=lambda _: 0))

    cache = RedisAnswerCache(connect(redis_url), ttl=60, prefix=f"parley-test-{uuid.uuid4().hex[:8]}:")
    index = load_index(knowledge)
    engine(index, "Be kind.", cache).answer("How do I reset my password?", ())
    engine(index, "Be kind.", cache).answer("How do I reset my password?", ())
    assert openai_stub.calls == 3  # shared through Redis: the second server asked nobody
    engine(index, "Be kind and brief.", cache).answer("How do I reset my password?", ())
    assert openai_stub.calls == 4  # a new persona is a new prompt version
    article = knowledge / "account" / "reset-password.md"
    article.write_text(article.read_text().replace("30 minutes", "15 minutes"))
    edited = load_index(knowledge)
    engine(edited, "Be kind.", cache).answer("How do I reset my password?", ())
    assert openai_stub.calls == 5  # a new knowledge version


def test_a_burst_of_the_same_question_makes_one_api_call(tmp_path: Path) -> None:
    stub = OpenAIStub(latency=0.3).start()
    try:
        services = Bot(llm_settings(tmp_path, stub)).services
        answers = []

        def ask() -> None:
            answers.append(services.engine.answer("Where is my order?", ()))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert stub.calls == 1
        assert sorted(answer.cached for answer in answers) == [False] + [True] * 7
        assert len({answer.text for answer in answers}) == 1
    finally:
        stub.stop()
