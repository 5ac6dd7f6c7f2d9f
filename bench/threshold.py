"""The relevance threshold below which the bot says "not sure" (``knowledge.min_confidence``), from data.

Questions that should be answered: each example question of the knowledge base, left out of its
article (its relevance is then its cosine with the article's other passages, as for a customer's
rewording). Questions that should not: CLINC150's out-of-scope train and validation questions
(Larson et al. 2019; never its test split), asked of the same knowledge base. The threshold is
the one that maximises Youden's J (true-positive rate minus false-positive rate) on scikit-learn's
ROC curve; it prints both rates there.

    .venv/bin/python bench/threshold.py --clinc data_full.json [--knowledge config/knowledge]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from parley.core.dense import passages  # noqa: E402
from parley.core.knowledge import KnowledgeIndex  # noqa: E402
from parley.stores.embeddings import load_embedder  # noqa: E402
from parley.stores.knowledge import load_articles  # noqa: E402


def left_out_relevance(index: KnowledgeIndex, embedder) -> list[float]:
    scores = []
    for article in index.articles:
        texts = passages(article)
        vectors = embedder.embed(texts)
        for number, question in enumerate(texts):
            if question not in article.questions:
                continue
            others = np.delete(vectors, number, axis=0)
            scores.append(float((others @ vectors[number]).max()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, required=True, help="CLINC150's data_full.json")
    parser.add_argument("--knowledge", type=Path, default=ROOT / "config" / "knowledge")
    args = parser.parse_args()
    embedder = load_embedder(None)
    index = KnowledgeIndex(load_articles(args.knowledge), embedder=embedder)
    assert index.dense is not None
    positives = left_out_relevance(index, embedder)
    data = json.loads(args.clinc.read_text(encoding="utf-8"))
    negatives = [float(index.dense.scores(text).max()) for text, _ in data["oos_train"] + data["oos_val"]]
    truth = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    false_rate, true_rate, thresholds = roc_curve(truth, np.r_[positives, negatives])
    best = int(np.argmax(true_rate - false_rate))
    print(f"{len(positives)} left-out knowledge-base questions, {len(negatives)} CLINC150 out-of-scope (train+val)")
    print(f"threshold {thresholds[best]:.3f}: answers {true_rate[best]:.1%} of the answerable, "
          f"refuses {1 - false_rate[best]:.1%} of the out-of-scope (Youden's J {true_rate[best] - false_rate[best]:.3f})")


if __name__ == "__main__":
    main()
