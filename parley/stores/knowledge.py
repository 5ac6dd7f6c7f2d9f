"""The knowledge base on disk: Markdown files with YAML front matter, one article each.

The index over the articles is pure and lives in ``core.knowledge``; reading the files is IO, so
it lives here with the other stores, and ``load_index`` is the one place an index is built from them.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import frontmatter
import numpy as np
import structlog
import yaml

from parley.core.dense import Embedder, passage_key
from parley.core.knowledge import Article, KnowledgeIndex
from parley.errors import ConfigError
from parley.settings.loader import yaml_error
from parley.stores.embeddings import RECENT_TEXTS, OnnxEmbedder

logger = structlog.get_logger("parley.knowledge")


def load_index(directory: Path, *, embedder: Embedder | None = None,
               cache_dir: Path | None = None, language: str = "en") -> KnowledgeIndex:
    """The index over every article under ``directory``; ``ConfigError`` naming what is wrong.

    With an ``embedder``, passage vectors are reused from ``cache_dir`` (and from this process's
    earlier loads) by content hash, so only new or changed passages are embedded, and the cache
    is rewritten with exactly the passages the index holds. ``language``: the articles'
    (``knowledge.language``), whose stemmer the index uses.
    """
    articles = load_articles(directory)
    if embedder is None:
        return KnowledgeIndex(articles, language=language)
    known = _seen.setdefault(embedder.version, {})
    cache = cache_dir / f"passages-{embedder.version}.npz" if cache_dir is not None else None
    if cache is not None and cache not in _caches_read:
        known.update(_read_cache(cache))
        _caches_read.add(cache)
    started = time.perf_counter()
    index = KnowledgeIndex(articles, embedder=embedder, vectors=known, language=language)
    dense = index.dense
    if dense is not None:
        known.update(dense.vectors)
        if isinstance(embedder, OnnxEmbedder) and len(dense.texts) <= RECENT_TEXTS:
            # The start's model of the knowledge base learns from these titles and questions too.
            embedder.remember(dense.texts, [dense.vectors[passage_key(text)] for text in dense.texts])
        if cache is not None and dense.embedded:
            _write_cache(cache, dense.vectors)
        logger.info("knowledge_indexed", articles=len(index), passages=len(dense.vectors),
                    embedded=dense.embedded, seconds=round(time.perf_counter() - started, 2))
    return index


# Passage vectors by model version, then passage key: a process that loads the same knowledge
# base again (tests, `parley eval`) embeds nothing twice.
_seen: dict[str, dict[str, np.ndarray]] = {}
_caches_read: set[Path] = set()


def forget_vectors() -> None:
    """Forget the vectors this process has seen, as a new process would (the disk cache stays)."""
    _seen.clear()
    _caches_read.clear()


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return dict(zip((str(key) for key in stored["keys"]), stored["vectors"], strict=True))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError) as exc:  # a torn or foreign file: embed again
        logger.warning("embedding_cache_unreadable", path=str(path), error=str(exc)[:200])
        return {}


def _write_cache(path: Path, vectors: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(vectors)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, keys=np.array(keys), vectors=np.vstack([vectors[key] for key in keys]))
    partial.replace(path)  # atomic: a reader sees the old file or the new one, never half


def knowledge_fingerprint(directory: Path) -> str:
    """The articles' paths, sizes and modification times: changes when an article is saved, added,
    removed or renamed, for the price of a stat per file (``engines.live`` compares it)."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.md")):
        stat = path.stat()
        digest.update(f"{path.relative_to(directory)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def load_articles(directory: Path) -> list[Article]:
    """Every ``*.md`` under ``directory``; the sub-folder name is the article's category."""
    if not directory.is_dir():
        raise ConfigError(f"knowledge.path: {directory} is not a directory "
                          "(set PARLEY_KNOWLEDGE or knowledge.path in the YAML)")
    paths = sorted(directory.rglob("*.md"))
    articles = [_read(path, directory) for path in paths]
    if not articles:
        raise ConfigError(f"knowledge.path: {directory} holds no *.md articles")
    seen: dict[str, Path] = {}
    for article, path in zip(articles, paths, strict=True):
        if article.id in seen:
            raise ConfigError(f"{path}: id {article.id!r} is already used by {seen[article.id]}")
        seen[article.id] = path
    return articles


def _read(path: Path, root: Path) -> Article:
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as Markdown with front matter: {exc}") from None
    meta = post.metadata
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{path}: front matter needs a 'title'")
    if not post.content.strip():
        raise ConfigError(f"{path}: the article has no body")
    relative = path.relative_to(root)
    return Article(
        id=str(meta.get("id") or path.stem),
        title=title.strip(),
        body=post.content.strip(),
        tags=tuple(str(tag) for tag in meta.get("tags") or ()),
        questions=tuple(str(question) for question in meta.get("questions") or ()),
        category=relative.parts[0] if len(relative.parts) > 1 else "",
        url=_url(path, meta.get("url")),
    )


def _url(path: Path, value: object) -> str | None:
    """The article's public page: an absolute http(s) URL, cited with every answer drawn from it."""
    if value is None or value == "":
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.netloc
            or any(char in value for char in " <>\n")):
        raise ConfigError(f"{path}: front matter 'url' must be an absolute http(s) URL, got {value!r}")
    return value
