"""Answers from an OpenAI-compatible Chat Completions API, grounded on the knowledge base.

One ``answer`` call: retrieve the top-k passages (the same index as the offline engine), answer from
the cache when the question stands alone and was asked before, else call the API through the
official client (streaming when someone shows tokens live), guard the output, and account for the
tokens. Every failure path ends in the offline engine's answer with a log line saying why: an open
circuit, a spent monthly budget, an API error after the client's own retries, or a blocked output.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import openai
import pybreaker
import structlog

from parley.core.engine import Answer, AnswerEngine, TokenSink
from parley.core.envelope import Source
from parley.core.knowledge import Hit, KnowledgeIndex
from parley.core.sessions import Turn
from parley.engines import prompt
from parley.engines.budget import TokenBudget
from parley.engines.cache import AnswerCache, CachedAnswer, InFlight, cache_key, needs_context
from parley.engines.clients import ClientPool
from parley.errors import UpstreamError
from parley.settings import LlmSettings

logger = structlog.get_logger("parley.llm")

HANDOFF_TOOL_NAME = prompt.HANDOFF_TOOL["function"]["name"]
BLOCKED = "Sorry, I can't help with that here. Would you like to talk to a person?"


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    text: str
    handoff_reason: str | None
    prompt_tokens: int
    completion_tokens: int


class OpenAIEngine:
    """Model answers carry confidence 1.0: the model itself declines and offers a person when no
    passage matched (its rules say so); the dialogue's low-confidence fallback is for offline answers.
    """

    name = "llm"

    def __init__(self, *, clients: ClientPool, settings: LlmSettings, index: KnowledgeIndex,
                 persona: str, fallback: AnswerEngine, cache: AnswerCache, budget: TokenBudget,
                 min_relevance: float = 0.0, secrets: Sequence[str] = ()) -> None:
        self.clients = clients
        self.settings = settings
        self.index = index
        self.fallback = fallback
        self.cache = cache
        self.budget = budget
        self.min_relevance = min_relevance
        self.system = prompt.system_prompt(persona)
        self.prompt_version = prompt.prompt_version(self.system, model=settings.model,
                                                    top_k=settings.top_k, temperature=settings.temperature)
        # Every configured secret (``secrets``: the channels' tokens, the admin token, database
        # and Redis passwords), not only the API key: none may reach a customer, however asked.
        keys = [settings.api_key.get_secret_value()] if settings.api_key else []
        self.guard = prompt.OutputGuard(self.system, [*keys, *secrets])
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=settings.breaker_failures, reset_timeout=settings.breaker_reset_seconds,
            name="llm", exclude=[_not_the_apis_fault], throw_new_error_on_trip=False)
        self._in_flight = InFlight(wait_seconds=settings.timeout_seconds * (settings.max_retries + 1))

    def over(self, index: KnowledgeIndex, *, fallback: AnswerEngine) -> OpenAIEngine:
        """This engine answering from a newly loaded knowledge base: the clients (and their open
        connections), the cache, the budget and the circuit breaker are the process's, not the
        load's, so a reload neither leaks connection pools nor closes an open circuit."""
        engine = copy.copy(self)
        engine.index, engine.fallback = index, fallback
        return engine

    def answer(self, question: str, history: Sequence[Turn], *,
               on_token: TokenSink | None = None) -> Answer:
        if needs_context(question, history):
            return self._ask(question, history, on_token, key=None)
        key = cache_key(question, knowledge_version=self.index.version, prompt_version=self.prompt_version)
        found = self.cache.get(key)
        if found is None:
            with self._in_flight.first(key) as first:
                found = None if first else self.cache.get(key)
                if found is None:
                    return self._ask(question, history, on_token, key=key)
        return Answer(text=found.text, confidence=1.0, engine=self.name,
                      sources=found.sources, model_version=self.prompt_version, cached=True,
                      model=found.model, intent=found.sources[0].id if found.sources else None)

    def _ask(self, question: str, history: Sequence[Turn], on_token: TokenSink | None, *,
             key: str | None) -> Answer:
        if self.budget.exhausted():
            return self._offline(question, history, reason="monthly_token_budget_spent")
        # Retrieval only on a cache miss: the key does not depend on it, and it is the costliest
        # step of a cached answer.
        hits = [hit for hit in self.index.search(question, k=self.settings.top_k)
                if hit.confidence >= self.min_relevance]
        messages = prompt.build_messages(system=self.system, hits=hits, history=history,
                                         question=question,
                                         max_history_tokens=self.settings.max_history_tokens)
        started = time.perf_counter()
        try:
            # ``calling()``, not ``call()``: ``call`` holds the breaker's lock for the whole API call,
            # which would serialise every worker behind one request.
            with self.breaker.calling():
                completion = self._complete(messages, on_token)
        except pybreaker.CircuitBreakerError:
            return self._offline(question, history, reason="circuit_open")
        except UpstreamError as exc:
            return self._offline(question, history, reason="api_error", detail=str(exc))
        self.budget.spend(completion.prompt_tokens + completion.completion_tokens)
        logger.info("llm_answered", model=self.settings.model, prompt_tokens=completion.prompt_tokens,
                    completion_tokens=completion.completion_tokens,
                    api_ms=round((time.perf_counter() - started) * 1000, 1))
        return self._finish(completion, hits, key)

    def _finish(self, completion: Completion, hits: list[Hit], key: str | None) -> Answer:
        usage = {"model": self.settings.model, "prompt_tokens": completion.prompt_tokens,
                 "completion_tokens": completion.completion_tokens}
        if completion.handoff_reason:
            return Answer(text="", confidence=1.0, engine=self.name, handoff_reason=completion.handoff_reason,
                          model_version=self.prompt_version, intent="handoff_request", **usage)
        text = prompt.clip(completion.text, self.settings.max_answer_chars)
        if not text or self.guard.leaks(text):
            logger.warning("llm_output_blocked", reason="empty" if not text else "leak")
            return Answer(text=BLOCKED, confidence=1.0, engine=self.name,
                          model_version=self.prompt_version, intent="blocked", **usage)
        # The [n] markers renumbered to match the sources the customer is shown under the answer.
        text, used = prompt.numbered(text, hits)
        sources = tuple(Source(id=hit.article.id, title=hit.article.title, url=hit.article.url)
                        for hit in used)
        if key is not None:
            self.cache.put(key, CachedAnswer(text=text, sources=sources, model=self.settings.model))
        return Answer(text=text, confidence=1.0, engine=self.name, sources=sources,
                      model_version=self.prompt_version, intent=sources[0].id if sources else None,
                      **usage)

    def _complete(self, messages: list[dict[str, str]], on_token: TokenSink | None) -> Completion:
        request = {"model": self.settings.model, "messages": messages, "tools": [prompt.HANDOFF_TOOL],
                   "max_tokens": self.settings.max_completion_tokens,
                   "temperature": self.settings.temperature}
        try:
            if on_token is None:
                # The client's documented raw call: it still signs, retries, times out and raises
                # its errors, but skips turning the request into typed params and the answer into
                # typed objects, a third of an answer's CPU beyond the call (bench/throughput.py).
                with self.clients.lease() as client:
                    return _from_json(client.post("/chat/completions", body=request, cast_to=object), messages)
            return self._stream(request, on_token)
        except (openai.APIError, httpx2.HTTPError) as exc:
            # httpx errors escape the client when a stream breaks after its first chunk.
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc

    def _stream(self, request: dict[str, object], on_token: TokenSink) -> Completion:
        # The client sends the request, retries, times out and raises its errors as usual; the
        # chunks are read as plain JSON instead of typed objects, which costs a third of the CPU
        # (bench/llm.py: building a pydantic object per chunk was the largest cost per answer).
        guarded = prompt.GuardedStream(self.guard, on_token, self.settings.max_answer_chars)
        calls: dict[int, list[str]] = {}
        usage: dict[str, int] | None = None
        with self.clients.lease() as client, client.chat.completions.with_streaming_response.create(
                **request, stream=True, stream_options={"include_usage": True}) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                # A server that ignores ``stream: true`` (some local ones do) sends the whole answer
                # as one JSON body: shown at once, through the same guard, instead of read as an
                # empty stream (which apologised for every answer).
                completion = _from_json(response.json(), request["messages"])  # type: ignore[arg-type]
                guarded.feed(completion.text)
                guarded.finish()
                return replace(completion, text=guarded.text)
            for chunk in _chunks(response.iter_lines()):
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        guarded.feed(delta["content"])
                    for call in delta.get("tool_calls") or ():
                        parts = calls.setdefault(call.get("index", 0), ["", ""])
                        function = call.get("function") or {}
                        parts[0] += function.get("name") or ""
                        parts[1] += function.get("arguments") or ""
        guarded.finish()
        handoff = next((_reason(args) for name, args in calls.values() if name == HANDOFF_TOOL_NAME), None)
        prompt_tokens, completion_tokens = _usage(usage, request["messages"], guarded.text)  # type: ignore[arg-type]
        return Completion(text=guarded.text, handoff_reason=handoff, prompt_tokens=prompt_tokens,
                          completion_tokens=completion_tokens)

    def _offline(self, question: str, history: Sequence[Turn], *, reason: str, detail: str = "") -> Answer:
        logger.warning("llm_fallback_offline", reason=reason, detail=detail[:300])
        return self.fallback.answer(question, history)


def _from_json(response: object, messages: list[dict[str, str]]) -> Completion:
    """A Chat Completions answer read as plain JSON."""
    if not isinstance(response, dict) or not response.get("choices"):
        raise UpstreamError(f"unreadable completion: {str(response)[:200]!r}")
    message = response["choices"][0].get("message") or {}
    handoff = next((_reason((call.get("function") or {}).get("arguments", ""))
                    for call in message.get("tool_calls") or ()
                    if (call.get("function") or {}).get("name") == HANDOFF_TOOL_NAME), None)
    text = message.get("content") or ""
    prompt_tokens, completion_tokens = _usage(response.get("usage"), messages, text)
    return Completion(text=text, handoff_reason=handoff, prompt_tokens=prompt_tokens,
                      completion_tokens=completion_tokens)


def _chunks(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a Chat Completions event stream, up to ``[DONE]``."""
    done = False
    for line in lines:
        # Read on to the end of the body even after [DONE]: a body left unread closes the
        # connection, and every next request would pay for a new one.
        if done or not line.startswith("data:"):
            continue  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise UpstreamError(f"unreadable stream chunk: {data[:200]!r}") from exc
        if isinstance(chunk, dict) and chunk.get("error"):
            raise UpstreamError(f"error in stream: {str(chunk['error'])[:300]}")
        if isinstance(chunk, dict):
            yield chunk


def _usage(usage: object | None, messages: list[dict[str, str]], text: str) -> tuple[int, int]:
    """The server's token counts; an estimate when it sends none (some local servers do not)."""
    if isinstance(usage, dict):
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    if usage is not None:
        return usage.prompt_tokens, usage.completion_tokens  # type: ignore[attr-defined]
    return sum(prompt.estimate_tokens(m["content"]) for m in messages), prompt.estimate_tokens(text)


def _reason(arguments: str) -> str:
    try:
        reason = json.loads(arguments or "{}").get("reason")
    except (ValueError, AttributeError):
        reason = None
    return str(reason or "the assistant suggested a person")[:300]


def _not_the_apis_fault(exc: BaseException) -> bool:
    # A request the API refuses as malformed says nothing about its health: do not open the circuit.
    return isinstance(exc.__cause__, openai.BadRequestError | openai.UnprocessableEntityError)
