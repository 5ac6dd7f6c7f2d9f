"""Under gevent a question's embedding runs on a real thread: the event loop serves others meanwhile.

The served processes are gevent-patched, so this runs in a child interpreter patched the same way
(patching this one would change every other test). Without the hand-off the embedding runs on the
hub and no other greenlet runs until it returns; with it, a greenlet that only counts and yields
keeps counting while the embedding computes. Nothing here is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from parley.stores.embeddings import OnnxEmbedder

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [f"where is my order number {n}, it has not arrived" for n in range(48)]

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()

    import json, sys
    import gevent
    from parley.stores.embeddings import load_embedder
    from parley.stores.native import NativeThreads
    from tests.integration.hub_counter import counting

    questions = json.loads(sys.argv[1])
    if sys.argv[2] == "native":  # as the knowledge base loads: on a real thread, off the event loop
        embedder = NativeThreads(1).run(load_embedder, None)
    else:
        embedder = load_embedder(None)
    counter, counted = counting()
    gevent.sleep(0)
    before = counted[0]
    vectors = embedder.embed(questions)
    print(json.dumps({"counted_meanwhile": counted[0] - before, "vectors": vectors.tolist()}))
    counter.kill()
""")


@pytest.mark.parametrize("loaded_on", ["hub", "native"])
def test_other_greenlets_run_while_a_question_is_embedded(embedder: OnnxEmbedder, loaded_on: str) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(QUESTIONS), loaded_on],
                           capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    report = json.loads(child.stdout.splitlines()[-1])

    assert report["counted_meanwhile"] > 0
    # The same vectors as embedding in place, on this plain (unpatched) thread.
    assert np.allclose(np.array(report["vectors"], dtype=np.float32), embedder.embed(QUESTIONS), atol=1e-5)


BATCHING_CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()

    import json, sys
    import gevent
    import numpy as np
    from parley.stores.embeddings import load_embedder
    from parley.stores.native import Batched, NativeThreads

    questions = json.loads(sys.argv[1])
    embedder = load_embedder(None)
    calls = []

    def embed(texts):
        calls.append(len(texts))
        if "poison" in texts:
            raise ValueError("poison")
        return embedder._run(embedder._session, texts)

    batched = Batched(embed, threads=NativeThreads(2), max_items=16)
    asks = [questions[n:n + 1 + n % 3] for n in range(0, len(questions), 2)]
    jobs = [gevent.spawn(batched, ask) for ask in asks]
    gevent.joinall(jobs, raise_error=True)
    rows = [job.value.tolist() for job in jobs]
    failed = [gevent.spawn(batched, texts) for texts in (["a question"], ["poison"], ["another"])]
    gevent.joinall(failed)
    print(json.dumps({"asks": asks, "rows": rows, "calls": calls,
                      "errors": [type(job.exception).__name__ if job.exception else None for job in failed]}))
""")


def test_questions_embedded_at_once_share_calls_and_each_gets_its_own_vectors(embedder: OnnxEmbedder) -> None:
    child = subprocess.run([sys.executable, "-c", BATCHING_CHILD, json.dumps(QUESTIONS)],
                           capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(child.stdout.splitlines()[-1])

    for ask, rows in zip(report["asks"], report["rows"], strict=True):
        assert np.allclose(np.array(rows, dtype=np.float32), embedder.embed(ask), atol=1e-4)
    embedding_calls = report["calls"][:-3]
    assert sum(embedding_calls) == sum(len(ask) for ask in report["asks"]) and max(embedding_calls) <= 16
    assert len(embedding_calls) < len(report["asks"])  # 24 callers at once: fewer calls than callers
    # Two lanes free: the first two calls start alone, the third waits for a lane. The poisoned
    # call fails its caller only.
    assert report["errors"] == [None, "ValueError", None]
