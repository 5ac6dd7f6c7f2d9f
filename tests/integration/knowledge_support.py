"""A knowledge base a test may edit: a copy of the sample, and an article to add to it."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import ROOT

# An article the sample does not have: a question about parrots has no good answer until it is added.
PARROT = """---
id: parrot-care
title: Can I bring my parrot to the store?
questions:
  - are birds allowed in your shops
  - may my parrot come along
---
Parrots are welcome in every store, on a shoulder or in a cage.
"""


def sample_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "knowledge"
    shutil.copytree(ROOT / "config" / "knowledge", copy)
    return copy
