"""When the API fails: the client's retries, the offline fallback, the circuit breaker, the budget."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from tests.conftest import Bot, make_envelope
from tests.integration.llm_support import llm_settings, openai_stub  # noqa: F401
from tests.stubs.openai_stub import OpenAIStub, Outcome, rate_limited, server_error, slow, stalled_stream

OFFLINE_RESET = "To reset your password, open **Sign in**"


def test_a_429_is_retried_after_its_retry_after(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub))
    openai_stub.queue(rate_limited(retry_after="1"))
    reply = bot.ask("How do I reset my password?")
    assert openai_stub.calls == 2
    assert reply.meta.engine == "llm"


def test_persistent_500s_fall_back_to_the_offline_answer_with_a_log_note(tmp_path: Path,
                                                                          openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, max_retries=1))
    openai_stub.queue(server_error(), server_error())
    with capture_logs() as logs:
        reply = bot.ask("How do I reset my password?")
    assert openai_stub.calls == 2  # the first try and the client's one retry
    assert reply.meta.engine == "offline"
    assert reply.text.startswith(OFFLINE_RESET)
    [note] = [log for log in logs if log["event"] == "llm_fallback_offline"]
    assert note["reason"] == "api_error"
    assert "InternalServerError" in note["detail"]


def test_a_timeout_falls_back_to_the_offline_answer(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, timeout_seconds=0.3, max_retries=0))
    openai_stub.queue(slow(1.5))
    with capture_logs() as logs:
        reply = bot.ask("How do I reset my password?")
    assert reply.text.startswith(OFFLINE_RESET)
    assert "APITimeoutError" in next(log["detail"] for log in logs if log["event"] == "llm_fallback_offline")


def test_a_stream_that_stalls_falls_back_too(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, timeout_seconds=0.5, max_retries=0))
    openai_stub.queue(stalled_stream(1.5))  # the first word, then silence past the read timeout
    with capture_logs() as logs:
        # A widget message: its answer streams.
        [reply] = bot.services.dialogue.handle(make_envelope("How do I reset my password?", channel="widget"))
    assert openai_stub.requests[0]["stream"] is True
    assert reply.text.startswith(OFFLINE_RESET)
    assert "Timeout" in next(log["detail"] for log in logs if log["event"] == "llm_fallback_offline")


def test_the_circuit_opens_so_a_failing_api_is_not_called_for_every_message(
        tmp_path: Path, openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, max_retries=0, breaker_failures=2,
                           breaker_reset_seconds=60))
    openai_stub.queue(server_error(), server_error())
    with capture_logs() as logs:
        replies = [bot.ask(question) for question in
                   ("How do I reset my password?", "Where is my order?", "How do I start a return?")]
    assert openai_stub.calls == 2  # the third message never waited on the API
    assert [reply.meta.engine for reply in replies] == ["offline"] * 3
    assert [log["reason"] for log in logs if log["event"] == "llm_fallback_offline"] == [
        "api_error", "api_error", "circuit_open"]


def test_when_nothing_answers_the_customer_gets_an_apology_and_a_person(tmp_path: Path,
                                                                         openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, max_retries=0))
    openai_stub.queue(server_error())
    reply = bot.ask("What is the airspeed velocity of an unladen swallow?")
    assert reply.text == bot.services.dialogue.policy.not_sure_without_people  # no reps' channel here
    assert reply.quick_replies == ()


def test_a_spent_monthly_budget_answers_offline(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    bot = Bot(llm_settings(tmp_path, openai_stub, monthly_token_budget=100))
    first = bot.ask("How do I reset my password?")  # about 500 tokens: the budget is spent
    with capture_logs() as logs:
        second = bot.ask("Where is my order?")
    assert openai_stub.calls == 1
    assert (first.meta.engine, second.meta.engine) == ("llm", "offline")
    assert [log["reason"] for log in logs if log["event"] == "llm_fallback_offline"] == [
        "monthly_token_budget_spent"]


def test_a_server_that_ignores_stream_true_still_answers_a_streaming_channel(
        tmp_path: Path, openai_stub: OpenAIStub) -> None:  # noqa: F811
    # Some OpenAI-compatible servers answer ``stream: true`` with one JSON body; the widget streams.
    engine = Bot(llm_settings(tmp_path, openai_stub)).services.engine
    openai_stub.queue(Outcome(text="Delivery takes 3 to 5 working days.", ignores_stream=True),
                      Outcome(tool_call=("handoff_to_person", {"reason": "wants a refund"}), ignores_stream=True))
    shown: list[str] = []

    answer = engine.answer("How long does delivery take?", [], on_token=shown.append)
    asked_for_a_person = engine.answer("I want my money back", [], on_token=shown.append)

    assert all(request["stream"] is True for request in openai_stub.requests)
    assert answer.text == "Delivery takes 3 to 5 working days." and answer.engine == "llm"
    assert "".join(shown) == answer.text  # shown, at once, through the same output guard
    assert asked_for_a_person.handoff_reason == "wants a refund"
