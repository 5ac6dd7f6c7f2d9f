"""Training examples from an export file (``parley export``): a snapshot of the conversation log
that a data scientist versions (with DVC, for example) and trains on, instead of the live labels.

The snapshot's SHA-256 is the file's own, byte for byte (what ``sha256sum`` prints for it), so a
registered model names the exact export it learned from.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from parley.data.training import Example

_NEEDED = ("text", "label", "created_at")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The labelled customer messages of one export, with the range they cover and its hash."""

    path: Path
    sha256: str
    examples: tuple[Example, ...]
    first: datetime | None
    last: datetime | None


def read_snapshot(path: Path, *, since: datetime | None = None, until: datetime | None = None) -> Snapshot:
    """Every labelled customer message of the export at ``path`` (in [since, until) when given).

    Raises ValueError, in words for the command line, for a file that is not a messages export.
    """
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: not an export file (.jsonl, .csv or .parquet, as `parley export` writes)")
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    examples: list[Example] = []
    moments: list[datetime] = []
    for row in _records(path, fmt):
        label, text = row.get("label") or None, row.get("text")
        if label is None or not text or row.get("direction", "in") != "in":
            continue
        moment = _moment(row["created_at"])
        if (since is not None and moment < since) or (until is not None and moment >= until):
            continue
        examples.append(Example(text, label))
        moments.append(moment)
    return Snapshot(path=path, sha256=digest, examples=tuple(examples), first=min(moments, default=None),
                    last=max(moments, default=None))


def _records(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "parquet":
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        _require_columns(path, names)
        columns = [*_NEEDED, *(["direction"] if "direction" in names else [])]
        for batch in parquet.iter_batches(columns=columns):
            yield from batch.to_pylist()
        return
    with path.open(encoding="utf-8", newline="") as file:
        if fmt == "csv":
            reader = csv.DictReader(file)
            _require_columns(path, reader.fieldnames or ())
            yield from reader
            return
        checked = False
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: line {number} is not a JSON object (one message per line)")
            if not checked:
                _require_columns(path, record)
                checked = True
            yield record


def _require_columns(path: Path, names: Any) -> None:
    missing = [name for name in _NEEDED if name not in names]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} column: train on an export of messages "
                         "(`parley export`, not `--what handoffs`)")


def _moment(value: datetime | str) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
