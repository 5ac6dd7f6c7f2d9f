"""Sentence-embedding features for the trained classifier, beside the retrieval's TF-IDF views.

``EmbeddingFeatures`` is a scikit-learn transformer over the process's shared ONNX embedder
(``parley.stores.embeddings``). It pickles as the model directory and the model's digest, never as
the onnxruntime session: a loaded artefact re-opens the same model, checked by SHA-256, and refuses
to run with a different one (its coefficients were learned on that model's vectors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from parley.errors import ConfigError
from parley.stores.embeddings import OnnxEmbedder, load_embedder


class EmbeddingFeatures(TransformerMixin, BaseEstimator):
    """Texts -> ``weight`` x unit sentence vectors (the TF-IDF views are unit vectors too: the
    weight sets how much meaning counts against wording)."""

    def __init__(self, model_dir: str | None = None, weight: float = 2.0) -> None:
        self.model_dir = model_dir
        self.weight = weight

    def _embedder(self) -> OnnxEmbedder:
        return load_embedder(Path(self.model_dir) if self.model_dir else None)

    def fit(self, texts: list[str], y: object = None) -> EmbeddingFeatures:
        self.model_version_ = self._embedder().version
        return self

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        embedder = self._embedder()
        if embedder.version != getattr(self, "model_version_", embedder.version):
            raise ConfigError(f"this model was trained on embedding model {self.model_version_}, but "
                              f"{embedder.version} is installed: train it again (`parley train`)")
        vectors = embedder.embed(list(texts)) * np.float32(self.weight)
        # Sparse, so FeatureUnion stacks it with the TF-IDF views without densifying them.
        return sparse.csr_matrix(vectors)
