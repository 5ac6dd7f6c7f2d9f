"""Intent accuracy on public benchmarks: the TF-IDF baseline, Parley's default kind, published BERT.

Trains each of `parley train`'s kinds on a benchmark's train split exactly as `parley train` does
(``parley.data.training.make_pipeline``) and scores its test split once. Nothing is tuned on a
test split: the out-of-scope threshold is chosen on the validation split (CLINC150's own; for
HWU64, 10% of its train split, stratified, which the model is then not trained on).

    CLINC150 (github clinc/oos-eval, CC BY 3.0): pass data/data_full.json
    HWU64 (github xliuhw/NLU-Evaluation-Data, CC BY 4.0): pass a directory holding KFold_1's
        trainset/*.csv and testset/*.csv (from CrossValidation/autoGeneFromRealAnno/.../KFold_1;
        the test CSVs are testset/csv/*.csv there)

    .venv/bin/python bench/intents.py --clinc data_full.json --hwu64 hwu64/ [--kinds tfidf-logreg,hybrid-svm]

Prints, per benchmark and kind: in-scope top-1 accuracy and macro-F1 (scikit-learn), out-of-scope
recall (CLINC150: Larson et al.'s two methods, "oos-train" where out-of-scope is one more intent,
as Parley's "handoff" label is, and "oos-threshold" where the calibrated probability is
thresholded), per-question latency p50/p99 on one thread with the embedding included, and the
process's peak RSS. Published fine-tuned BERT beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402

from parley.data.training import make_pipeline  # noqa: E402
from parley.stores import embeddings  # noqa: E402

OOS = "handoff"  # Parley's label for "leave this to a person"
# Larson et al. 2019 (EMNLP), Table 2, "Full" column: BERT in-scope accuracy / out-of-scope recall.
PUBLISHED = {
    ("clinc150", "oos-train"): "BERT 96.9 / OOS recall 40.3 (Larson et al. 2019, Table 2)",
    ("clinc150", "oos-threshold"): "BERT 96.2 / OOS recall 52.3 (Larson et al. 2019, Table 2)",
    ("hwu64", "in-scope"): "BERT-Large fine-tuned 91.5 (Casanueva et al. 2020); BERT-base 89.9 (DialoGLUE)",
}
Rows = list[tuple[str, str]]


def clinc150(path: Path) -> dict[str, Rows]:
    data = json.loads(path.read_text(encoding="utf-8"))
    def rows(key: str, oos: bool = False) -> Rows:
        return [(text, OOS if oos else intent) for text, intent in data[key]]
    return {"train": rows("train"), "val": rows("val"), "test": rows("test"),
            "oos_train": rows("oos_train", True), "oos_val": rows("oos_val", True),
            "oos_test": rows("oos_test", True)}


def hwu64(directory: Path, seed: int) -> dict[str, Rows]:
    def read(folder: Path) -> Rows:
        rows = []
        for path in sorted(folder.glob("*.csv")):
            with path.open(encoding="utf-8") as file:
                for row in csv.DictReader(file, delimiter=";"):
                    rows.append((row["answer_from_anno"], f"{row['scenario']}_{row['intent']}"))
        return rows
    train, by_intent = [], defaultdict(list)
    for row in read(directory / "trainset"):
        by_intent[row[1]].append(row)
    rng, val = random.Random(seed), []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        rng.shuffle(group)
        cut = max(1, len(group) // 10)
        val += group[:cut]
        train += group[cut:]
    return {"train": train, "val": val, "test": read(directory / "testset")}


class Memo:
    """The shared embedder with a memory of the texts it embedded: a benchmark embeds the same
    15,000 training texts for every kind, and the vectors do not change. Latency is measured with
    the memo off."""

    def __init__(self, embedder: embeddings.OnnxEmbedder) -> None:
        self.real, self.version, self.dimensions = embedder, embedder.version, embedder.dimensions
        self.vectors: dict[str, np.ndarray] = {}
        self.on = True

    def embed(self, texts: list[str]) -> np.ndarray:
        if not self.on:
            return self.real.embed(texts)
        missing = sorted({text for text in texts if text not in self.vectors})
        if missing:
            self.vectors.update(zip(missing, self.real.embed(missing), strict=True))
        return np.vstack([self.vectors[text] for text in texts])


def fit(kind: str, rows: Rows, seed: int):
    pipeline = make_pipeline(kind, seed)
    pipeline.fit([text for text, _ in rows], [intent for _, intent in rows])
    return pipeline


def top(pipeline, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    probabilities = pipeline.predict_proba(texts)
    return pipeline.classes_[probabilities.argmax(axis=1)], probabilities.max(axis=1)


def best_threshold(predicted, confidence, expected) -> float:
    """The threshold that answers the validation split best: right intent, or refusal of out-of-scope."""
    candidates = np.unique(np.round(confidence, 3))
    def score(threshold: float) -> float:
        final = np.where(confidence >= threshold, predicted, OOS)
        return float(np.mean(final == np.array(expected)))
    return float(max(candidates, key=score)) if len(candidates) else 0.0


def scores(expected: list[str], final: np.ndarray) -> dict[str, float]:
    expected_arr = np.array(expected)
    inscope = expected_arr != OOS
    out = {"accuracy": accuracy_score(expected_arr[inscope], final[inscope]),
           "macro_f1": f1_score(expected_arr[inscope], final[inscope], average="macro",
                                labels=sorted(set(expected_arr[inscope])), zero_division=0)}
    if (~inscope).any():
        out["oos_recall"] = float(np.mean(final[~inscope] == OOS))
    return out


def latency(pipeline, texts: list[str], memo: Memo) -> str:
    """Wall and CPU time of one question's prediction, embedding included (the embedder runs on
    the calling thread: one onnxruntime thread). CPU time is what other processes on a shared
    machine do not inflate."""
    memo.on = False
    memo.real.forget_recent()
    for text in texts[:20]:
        pipeline.predict_proba([text])
    wall, cpu = [], []
    for text in texts:
        memo.real.forget_recent()
        started, used = time.perf_counter(), time.thread_time()
        pipeline.predict_proba([text])
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - used) * 1000)
    memo.on = True
    (w50, w99), (c50, c99) = np.percentile(wall, [50, 99]), np.percentile(cpu, [50, 99])
    return f"  wall p50 {w50:.1f} p99 {w99:.1f} ms, CPU p50 {c50:.1f} p99 {c99:.1f} ms"


def line(name: str, method: str, kind: str, figures: dict[str, float], extra: str = "") -> None:
    oos = f"  OOS recall {figures['oos_recall']:.1%}" if "oos_recall" in figures else ""
    print(f"{name:9} {method:14} {kind:16} in-scope {figures['accuracy']:.1%}  macro-F1 "
          f"{figures['macro_f1']:.3f}{oos}{extra}", flush=True)


def run_clinc(data: dict[str, Rows], kinds: list[str], seed: int, memo: Memo, timed: int) -> None:
    test, val = data["test"] + data["oos_test"], data["val"] + data["oos_val"]
    for kind in kinds:
        started = time.perf_counter()
        with_oos = fit(kind, data["train"] + data["oos_train"], seed)
        predicted, _ = top(with_oos, [t for t, _ in test])
        took = time.perf_counter() - started
        timing = latency(with_oos, [t for t, _ in test[:timed]], memo)
        line("clinc150", "oos-train", kind, scores([e for _, e in test], predicted),
             f"{timing}  (fit+test {took:.0f} s)")
        inscope = fit(kind, data["train"], seed)
        threshold = best_threshold(*top(inscope, [t for t, _ in val]), [e for _, e in val])
        predicted, confidence = top(inscope, [t for t, _ in test])
        final = np.where(confidence >= threshold, predicted, OOS)
        line("clinc150", "oos-threshold", kind, scores([e for _, e in test], final),
             f"  (threshold {threshold:.3f} from val)")
    for method in ("oos-train", "oos-threshold"):
        print(f"{'clinc150':9} {method:14} {'published':16} {PUBLISHED[('clinc150', method)]}")


def run_hwu(data: dict[str, Rows], kinds: list[str], seed: int, memo: Memo, timed: int) -> None:
    test = data["test"]
    for kind in kinds:
        started = time.perf_counter()
        pipeline = fit(kind, data["train"], seed)
        predicted, _ = top(pipeline, [t for t, _ in test])
        took = time.perf_counter() - started
        timing = latency(pipeline, [t for t, _ in test[:timed]], memo)
        line("hwu64", "in-scope", kind, scores([e for _, e in test], predicted),
             f"{timing}  (fit+test {took:.0f} s)")
    print(f"{'hwu64':9} {'in-scope':14} {'published':16} {PUBLISHED[('hwu64', 'in-scope')]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, help="CLINC150's data_full.json")
    parser.add_argument("--hwu64", type=Path, help="HWU64 KFold_1 directory (trainset/, testset/)")
    parser.add_argument("--kinds", default="tfidf-logreg,hybrid-svm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timed", type=int, default=500, help="test questions timed one by one")
    args = parser.parse_args()
    if not args.clinc and not args.hwu64:
        parser.error("give --clinc and/or --hwu64")
    memo = Memo(embeddings.load_embedder(None))
    embeddings._loaded[""] = memo  # type: ignore[assignment]  # every pipeline shares the memo
    kinds = args.kinds.split(",")
    if args.clinc:
        run_clinc(clinc150(args.clinc), kinds, args.seed, memo, args.timed)
    if args.hwu64:
        run_hwu(hwu64(args.hwu64, args.seed), kinds, args.seed, memo, args.timed)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB (this process: every model above and the memo of vectors)")


if __name__ == "__main__":
    main()
