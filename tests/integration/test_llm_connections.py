"""The LLM client's connections: split into small pools, all of them usable at once, kept alive."""

from __future__ import annotations

import threading
from pathlib import Path

from parley.engines.clients import ClientPool
from tests.integration.llm_support import llm_settings
from tests.stubs.openai_stub import OpenAIStub


def test_every_connection_is_in_use_at_once_and_reused(tmp_path: Path) -> None:
    stub = OpenAIStub(latency=0.3).start()
    try:
        settings = llm_settings(tmp_path, stub, max_connections=12)
        pool = ClientPool(settings.llm, per_client=4)
        assert len(pool) == 3
        start = threading.Barrier(12)
        answers: list[str] = []

        def customer() -> None:
            start.wait()
            for round_ in range(2):
                with pool.lease() as client:
                    completion = client.chat.completions.create(
                        model=settings.llm.model, messages=[{"role": "user", "content": f"question {round_}"}])
                answers.append(completion.choices[0].message.content or "")

        threads = [threading.Thread(target=customer) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pool.close()
    finally:
        stub.stop()
    assert len(answers) == 24 and all(answers)
    assert stub.peak_in_flight == 12  # no small pool made a request wait while another had room
    assert len(stub.peer_ports) == 12  # the second round went over the connections kept alive
