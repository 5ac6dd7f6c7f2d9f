"""Building the knowledge side from ``Settings``: the index, the answer engine (offline or LLM),
and the live knowledge that follows the articles on disk."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from parley.core.engine import AnswerEngine, RetrievalEngine
from parley.core.knowledge import KnowledgeIndex
from parley.engines.live import Knowledge, LiveKnowledge
from parley.settings import Settings, secret_values
from parley.stores.knowledge import knowledge_fingerprint, load_index
from parley.stores.native import NativeThreads
from parley.stores.redis_topology import connect
from parley.stores.sql import SqlConversationLog

if TYPE_CHECKING:
    from parley.data.training import TrainedModel


def llm_engine_of(settings: Settings, index: KnowledgeIndex, log: SqlConversationLog, *,
                  offline: AnswerEngine, previous: AnswerEngine | None = None) -> AnswerEngine:
    """The LLM engine when OPENAI_API_KEY is set (``offline`` stays its fallback), else ``offline``.

    Its clients, cache, budget and breaker are made once, with the first knowledge base: a reload
    gets the running engine over the new index (a new client pool per reload kept the old one's
    connections open for good, and reset an open circuit).
    """
    llm = settings.llm
    if llm.api_key is None:
        return offline
    # Imported only when switched on: the offline mode should not pay for the openai client's import.
    from parley.engines.openai_engine import OpenAIEngine

    if isinstance(previous, OpenAIEngine):
        return previous.over(index, fallback=offline)
    from parley.engines.budget import TokenBudget
    from parley.engines.cache import AnswerCache, MemoryAnswerCache, RedisAnswerCache
    from parley.engines.clients import ClientPool

    cache: AnswerCache = MemoryAnswerCache(max_entries=llm.cache_max_entries, ttl=llm.cache_ttl_seconds)
    if settings.storage.redis_url is not None:
        cache = RedisAnswerCache(connect(settings.storage.redis_url.get_secret_value()),
                                 ttl=llm.cache_ttl_seconds, prefix=settings.storage.key_prefix)
    return OpenAIEngine(clients=ClientPool(llm), settings=llm, index=index, persona=settings.bot.persona,
                        fallback=offline, cache=cache,
                        budget=TokenBudget(llm.monthly_token_budget, used_since=log.tokens_used_since),
                        min_relevance=settings.knowledge.min_confidence, secrets=secret_values(settings))


def live_knowledge_of(settings: Settings, log: SqlConversationLog) -> LiveKnowledge:
    """The knowledge base followed on disk. Each load's heavy part (embedding new passages, fitting
    the knowledge base's model into the cache) runs on a real thread: under gevent a reload must
    not stall the process's acks and streams; the engine is then built around what it made."""
    threads = NativeThreads(1)
    predictions = NativeThreads(1)  # every load's model predicts on this one (a pool each leaked a thread)

    def load(previous: Knowledge | None) -> Knowledge:
        index, model = threads.run(_prepared_index, settings)
        offline = offline_engine_of(settings, index, log, knowledge_model=model, threads=predictions)
        return Knowledge(index, llm_engine_of(settings, index, log, offline=offline,
                                              previous=previous.engine if previous else None))

    return LiveKnowledge(load, fingerprint=partial(knowledge_fingerprint, settings.knowledge.path),
                         refresh_seconds=settings.knowledge.reload_seconds)


def _prepared_index(settings: Settings) -> tuple[KnowledgeIndex, TrainedModel | None]:
    """The index and the knowledge base's own model (fitted, or read from the cache)."""
    from parley.data.knowledge_model import knowledge_model_of

    index = knowledge_index_of(settings)
    embedding_dir = settings.knowledge.embedding_dir
    return index, knowledge_model_of(index, cache_dir=settings.knowledge_cache_dir,
                                     embedding_model=str(embedding_dir) if embedding_dir else None)


def knowledge_index_of(settings: Settings) -> KnowledgeIndex:
    """The hybrid index (TF-IDF and sentence embeddings, vectors cached under data_dir/cache),
    or TF-IDF alone when ``knowledge.embedding_model`` is "off"."""
    knowledge = settings.knowledge
    if knowledge.embedding_model == "off":
        return load_index(knowledge.path, language=knowledge.language)
    from parley.stores.embeddings import load_embedder

    return load_index(knowledge.path, embedder=load_embedder(knowledge.embedding_dir),
                      cache_dir=settings.knowledge_cache_dir, language=knowledge.language)


def offline_engine_of(settings: Settings, index: KnowledgeIndex, log: SqlConversationLog, *,
                      knowledge_model: TrainedModel | None,
                      threads: NativeThreads | None = None) -> RetrievalEngine:
    """Retrieval, led by the active trained model when there is one (``parley models activate``),
    else, with embeddings on, by ``knowledge_model``, fitted on the knowledge base's own questions
    (None without embeddings)."""
    from parley.data.live import LiveModel

    model = LiveModel(log.database, settings.models_dir, refresh_seconds=settings.data.model_refresh_seconds,
                      fallback=knowledge_model, threads=threads)
    return RetrievalEngine(index, model, min_model_confidence=settings.data.model_min_confidence)
