"""Offline answer latency on a large knowledge base: retrieval alone, and a trained model first.

Hybrid (TF-IDF + sentence embeddings, the embedded default) beside TF-IDF alone; the start's
index build at 10,000 articles with no vector cache and again with it (``data_dir/cache``); on the
sample knowledge base, the paraphrases' recall@k of the passages the LLM engine is given.

Generates N articles (default 10,000) from the sample knowledge base's vocabulary, builds the
index, then answers questions that reword articles' own questions (words dropped and shuffled),
through the engine and through the whole dialogue, one after the other on one thread. The
trained-model figures use the sample knowledge base (a classifier over 10,000 intents is not what
`parley train` is for: it learns the intents customers actually ask about).

Prints index build time, p50/p99/max answer latency in ms (wall, and the engine's CPU time, which
other processes on the machine do not inflate), top-1 accuracy on the rewordings, and peak RSS.
Target: p99 under 15 ms on one core, embedding included; a cached start under 30 s.

    .venv/bin/python bench/answer.py [--articles 10000] [--questions 2000]
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from parley.core.dialogue import Dialogue, Policy  # noqa: E402
from parley.core.engine import RetrievalEngine  # noqa: E402
from parley.core.envelope import Envelope  # noqa: E402
from parley.core.knowledge import Article, KnowledgeIndex  # noqa: E402
from parley.data.training import knowledge_examples, knowledge_model, train  # noqa: E402
from parley.stores.embeddings import load_embedder  # noqa: E402
from parley.stores.knowledge import forget_vectors, load_articles, load_index  # noqa: E402
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


def forget() -> None:
    load_embedder(None).forget_recent()


def measure(label: str, index: KnowledgeIndex, questions: list[tuple[str, str]],
            engine: RetrievalEngine) -> None:
    dialogue = Dialogue(engine=engine, sessions=MemorySessionStore(ttl=3600),
                        policy=Policy(greeting="hi", min_confidence=0.36))
    for text, _ in questions[:50]:  # warm up caches and lazy imports
        engine.answer(text, [])
    engine_ms, cpu_ms, dialogue_ms, right = [], [], [], 0
    for number, (text, expected) in enumerate(questions):
        forget()  # each question is new to the embedder, as a customer's is
        started, cpu = time.perf_counter(), time.thread_time()
        answer = engine.answer(text, [])
        engine_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - cpu) * 1000)
        right += answer.intent == expected
        envelope = Envelope(channel="bench", conversation_id=f"c{number}", message_id=str(number),
                            sender="bench", text=text)
        forget()
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
    parser.add_argument("--cache-dir", type=Path, help="keep the passage-vector cache here between runs "
                        "(the first start embeds ~50,000 passages, ~20 min on a loaded 2-core machine; "
                        "its figure is then the cached one twice)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sample = load_articles(ROOT / "config" / "knowledge")
    vocabulary = sorted({word for a in sample for word in re.findall(r"[a-z]{3,}", a.body.lower())})

    articles = generate(args.articles, vocabulary, rng)
    picked = [rng.choice(articles) for _ in range(args.questions)]
    questions = [(reword(rng.choice(a.questions), rng), a.id) for a in picked]
    embedder = load_embedder(None)
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as scratch:
        index = start(Path(scratch), articles, embedder, args.cache_dir or Path(scratch) / "cache")
        measure(f"hybrid retrieval, {len(index):,} articles", index, questions, RetrievalEngine(index))
    lexical = KnowledgeIndex(articles)
    measure(f"TF-IDF retrieval, {len(lexical):,} articles", lexical, questions, RetrievalEngine(lexical))
    del index, lexical

    small = KnowledgeIndex(sample, embedder=embedder)
    sample_questions = [(reword(q, rng), a.id) for a in sample for q in a.questions]
    measure(f"hybrid retrieval, {len(small)} sample articles", small, sample_questions, RetrievalEngine(small))
    started = time.perf_counter()
    model = knowledge_model(small.articles, small.version)
    print(f"fitted the knowledge model at start in {time.perf_counter() - started:.1f} s")
    measure(f"knowledge model first (default), {len(small)} sample", small, sample_questions,
            RetrievalEngine(small, model))
    tfidf, _ = train(knowledge_examples(sample), kind="tfidf-logreg", seed=args.seed, holdout=0.0)
    lexical_small = KnowledgeIndex(sample)
    measure(f"tfidf-logreg first, {len(small)} sample (before)", lexical_small, sample_questions,
            RetrievalEngine(lexical_small, tfidf))
    recall_at_k(small, lexical_small)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def start(scratch: Path, articles: list[Article], embedder, cache: Path) -> KnowledgeIndex:
    """The index a start builds from Markdown files: with no vector cache, then with it."""
    directory = scratch / "knowledge"
    directory.mkdir()
    for article in articles:
        questions = "".join(f"\n  - {q}" for q in article.questions)
        (directory / f"{article.id}.md").write_text(
            f"---\ntitle: {article.title}\nquestions:{questions}\n---\n{article.body}\n", encoding="utf-8")
    for label in ("no cache (first start)", "cached (every later start)"):
        forget_vectors()  # as a new process
        started = time.perf_counter()
        index = load_index(directory, embedder=embedder, cache_dir=cache)
        print(f"start, {label}: indexed {len(index):,} articles in {time.perf_counter() - started:.1f} s")
    shutil.rmtree(directory)
    return index


def recall_at_k(hybrid: KnowledgeIndex, lexical: KnowledgeIndex) -> None:
    """How often the paraphrase's article is among the k passages the LLM is given."""
    with (ROOT / "tests" / "data" / "paraphrases.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    for label, index in (("hybrid", hybrid), ("TF-IDF", lexical)):
        figures = []
        for k in (1, 3, 5):
            found = sum(row["expected"] in [hit.article.id for hit in index.search(row["text"], k=k)] for row in rows)
            figures.append(f"recall@{k} {found / len(rows):.1%}")
        print(f"LLM passages, {label:6} on {len(rows)} sample paraphrases: " + ", ".join(figures))


if __name__ == "__main__":
    main()
