"""The knowledge base on disk: Markdown files with YAML front matter, one article each.

The index over the articles is pure and lives in ``core.knowledge``; reading the files is IO, so
it lives here with the other stores, and ``load_index`` is the one place an index is built from them.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import frontmatter
import yaml

from parley.core.knowledge import Article, KnowledgeIndex
from parley.errors import ConfigError
from parley.settings.loader import yaml_error


def load_index(directory: Path) -> KnowledgeIndex:
    """The index over every article under ``directory``; ``ConfigError`` naming what is wrong."""
    return KnowledgeIndex(load_articles(directory))


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
