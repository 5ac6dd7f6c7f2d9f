"""Offline answer latency on a large knowledge base: retrieval alone, and a trained model first.

Generates N articles (default 10,000) from the sample knowledge base's vocabulary, builds the
index, then answers questions that reword articles' own questions (words dropped and shuffled),
through the engine and through the whole dialogue, one after the other on one thread. The
trained-model figures use the sample knowledge base (a classifier over 10,000 intents is not what
`parley train` is for: it learns the intents customers actually ask about).

Prints index build time, p50/p99/max answer latency in ms (wall, and the engine's CPU time, which
other processes on the machine do not inflate), and top-1 accuracy on the rewordings.
Target: p99 under 5 ms at 10,000 articles.

    .venv/bin/python bench/answer.py [--articles 10000] [--questions 2000]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from parley.core.dialogue import Dialogue, Policy  # noqa: E402
from parley.core.engine import RetrievalEngine  # noqa: E402
from parley.core.envelope import Envelope  # noqa: E402
from parley.core.knowledge import Article, KnowledgeIndex  # noqa: E402
from parley.data.training import knowledge_examples, train  # noqa: E402
from parley.stores.knowledge import load_articles  # noqa: E402
from parley.stores.memory import MemorySessionStore  # noqa: E402


def generate(count: int, vocabulary: list[str], rng: random.Random) -> list[Article]:
    def words(low: int, high: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(low, high)))

    return [Article(id=f"a{number}", title=words(4, 8).capitalize() + "?",
                    questions=tuple(words(5, 10) for _ in range(3)), body=words(60, 120),
                    tags=tuple(rng.sample(vocabulary, 3)))
            for number in range(count)]


def reword(question: str, rng: random.Random) -> str:
    kept = [word for word in question.split() if rng.random() > 0.25] or question.split()[:1]
    rng.shuffle(kept)
    return " ".join(kept)


def measure(label: str, index: KnowledgeIndex, questions: list[tuple[str, str]],
            engine: RetrievalEngine) -> None:
    dialogue = Dialogue(engine=engine, sessions=MemorySessionStore(ttl=3600),
                        policy=Policy(greeting="hi", min_confidence=0.14))
    for text, _ in questions[:50]:  # warm up caches and lazy imports
        engine.answer(text, [])
    engine_ms, cpu_ms, dialogue_ms, right = [], [], [], 0
    for number, (text, expected) in enumerate(questions):
        started, cpu = time.perf_counter(), time.thread_time()
        answer = engine.answer(text, [])
        engine_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        right += answer.intent == expected
        envelope = Envelope(channel="bench", conversation_id=f"c{number}", message_id=str(number),
                            sender="bench", text=text)
        started = time.perf_counter()
        dialogue.handle(envelope)
        dialogue_ms.append((time.perf_counter() - started) * 1000)
    # CPU time shows the engine's own cost when other processes share the cores (wall time does not).
    for name, values in (("engine", engine_ms), ("engine CPU", cpu_ms), ("dialogue", dialogue_ms)):
        p50, p99 = np.percentile(values, [50, 99])
        print(f"{label:34} {name:10} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {max(values):6.2f} ms")
    print(f"{label:34} top-1 on rewordings: {right / len(questions):.1%} of {len(questions)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sample = load_articles(ROOT / "config" / "knowledge")
    vocabulary = sorted({word for a in sample for word in re.findall(r"[a-z]{3,}", a.body.lower())})

    articles = generate(args.articles, vocabulary, rng)
    started = time.perf_counter()
    index = KnowledgeIndex(articles)
    print(f"built the index of {len(index):,} articles in {time.perf_counter() - started:.1f} s")
    picked = [rng.choice(articles) for _ in range(args.questions)]
    questions = [(reword(rng.choice(a.questions), rng), a.id) for a in picked]
    measure(f"retrieval, {len(index):,} articles", index, questions, RetrievalEngine(index))

    small = KnowledgeIndex(sample)
    model, _ = train(knowledge_examples(sample), seed=args.seed, holdout=0.0)
    sample_questions = [(reword(q, rng), a.id) for a in sample for q in a.questions]
    measure(f"retrieval, {len(small)} sample articles", small, sample_questions, RetrievalEngine(small))
    measure(f"model first, {len(small)} sample articles", small, sample_questions,
            RetrievalEngine(small, model))


if __name__ == "__main__":
    main()
