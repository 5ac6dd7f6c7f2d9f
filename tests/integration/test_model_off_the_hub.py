"""Under gevent the intent model predicts on a real thread, and questions asked at once share a call.

As served: a child interpreter patched by gevent (patching this one would change every other test)
answers 24 questions from 24 greenlets through ``LiveModel`` while another greenlet only counts and
yields. Each question gets the prediction it gets alone, in place, in this unpatched process; the
model's ``predict_proba`` is called fewer times than there are questions (its cost is mostly per
call); and the counter kept counting meanwhile. Nothing here is timed.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from parley.core.knowledge import KnowledgeIndex
from parley.data.knowledge_model import knowledge_model_of

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()

    import json, os, sys
    from pathlib import Path
    import gevent
    from parley.data.knowledge_model import knowledge_model_of
    from parley.data.live import LiveModel
    from parley.stores.embeddings import load_embedder
    from parley.stores.knowledge import load_index
    from parley.stores.sql import SqlConversationLog, open_database
    from tests.integration.hub_counter import counting

    questions, knowledge, workdir = json.loads(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    index = load_index(knowledge, embedder=load_embedder(None))
    model = knowledge_model_of(index, cache_dir=Path(os.environ["PARLEY_CACHE_DIR"]), embedding_model=None)
    calls, proba = [], model.pipeline.predict_proba
    model.pipeline.predict_proba = lambda texts: calls.append(len(texts)) or proba(texts)  # counted only
    log = SqlConversationLog(open_database(f"sqlite:///{workdir / 'parley.db'}"))
    log.create_schema()
    live = LiveModel(log.database, workdir / "models", refresh_seconds=3600, fallback=model)
    counter, counted = counting()
    jobs = [gevent.spawn(live.predict, question) for question in questions]
    gevent.joinall(jobs, raise_error=True)
    counter.kill()
    print(json.dumps({"predictions": [[job.value.intent, job.value.confidence, job.value.version] for job in jobs],
                      "calls": calls, "counted": counted[0]}))
""")


def test_questions_asked_at_once_share_a_prediction_call_off_the_event_loop(
        hybrid_index: KnowledgeIndex, tmp_path: Path) -> None:
    with (ROOT / "tests" / "data" / "paraphrases.csv").open(encoding="utf-8") as file:
        questions = [row["text"] for row in csv.DictReader(file)][:24]
    knowledge = ROOT / "config" / "knowledge"
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(questions), str(knowledge), str(tmp_path)],
                           capture_output=True, text=True, timeout=300, check=True, env=os.environ, cwd=ROOT)
    report = json.loads(child.stdout.splitlines()[-1])

    model = knowledge_model_of(hybrid_index, cache_dir=Path(os.environ["PARLEY_CACHE_DIR"]), embedding_model=None)
    assert model is not None
    for question, (intent, confidence, version) in zip(questions, report["predictions"], strict=True):
        alone = model.predict(question)
        assert (intent, version) == (alone.intent, f"knowledge-{hybrid_index.version}")
        assert abs(confidence - alone.confidence) < 1e-3
    assert sum(report["calls"]) == len(questions) and len(report["calls"]) < len(questions)
    assert report["counted"] > len(report["calls"])  # the event loop ran between and during the calls
