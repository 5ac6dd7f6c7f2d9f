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

import numpy as np

from parley.stores.embeddings import OnnxEmbedder

QUESTIONS = [f"where is my order number {n}, it has not arrived" for n in range(48)]

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()

    import json, sys
    import gevent
    from parley.stores.embeddings import load_embedder

    questions = json.loads(sys.argv[1])
    embedder = load_embedder(None)
    counted = [0]

    def count():
        while True:
            counted[0] += 1
            gevent.sleep(0)

    counter = gevent.spawn(count)
    gevent.sleep(0)
    before = counted[0]
    vectors = embedder.embed(questions)
    print(json.dumps({"counted_meanwhile": counted[0] - before, "vectors": vectors.tolist()}))
    counter.kill()
""")


def test_other_greenlets_run_while_a_question_is_embedded(embedder: OnnxEmbedder) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(QUESTIONS)],
                           capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(child.stdout.splitlines()[-1])

    assert report["counted_meanwhile"] > 0
    # The same vectors as embedding in place, on this plain (unpatched) thread.
    assert np.allclose(np.array(report["vectors"], dtype=np.float32), embedder.embed(QUESTIONS), atol=1e-5)
