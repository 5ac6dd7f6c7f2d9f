"""Parley's layers import only downwards, and no modules import each other in a cycle.

Every import in every module counts, those inside functions and under ``TYPE_CHECKING`` too: a
layer that may only be imported lazily is still a layer the module depends on.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import parley.core

ROOT = Path(parley.core.__file__).parent.parent  # parley is a namespace package: no __init__

# Lowest first. A module may import its own layer and the layers before it, never a later one;
# a name belongs to the layer of its longest listed prefix (so webhooks.throttle, the flood policy
# that wiring builds, sits below wiring while the rest of webhooks sits above it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("parley.core",),  # the sans-IO dialogue core and the interfaces it talks through
    ("parley.errors", "parley.settings", "parley.logs", "parley.metrics"),
    ("parley.stores", "parley.channels", "parley.engines", "parley.webhooks.throttle"),
    ("parley.data", "parley.migrations"),  # the migrations read the stores' tables
    ("parley.worker",),
    ("parley.wiring",),
    ("parley.webhooks",),
    ("parley.cli",),
)
# Implementations side by side: each knows the core's interfaces, never another implementation.
SIBLINGS = ("parley.stores", "parley.channels", "parley.engines", "parley.webhooks.throttle")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def imports_of(name: str) -> Iterator[str]:
    """The Parley modules that module ``name`` imports (``from pkg import module`` names the module)."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == "parley")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: counted from the importing module's package
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            if base.split(".")[0] != "parley":
                continue
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


GRAPH = {name: sorted(set(imports_of(name)) - {name}) for name in MODULES}


def owner(name: str, groups: tuple[str, ...]) -> str | None:
    matches = [group for group in groups if name == group or name.startswith(group + ".")]
    return max(matches, key=len, default=None)


def layer(name: str) -> int:
    all_groups = tuple(group for groups in LAYERS for group in groups)
    group = owner(name, all_groups)
    assert group is not None, f"{name} is in no layer: add it to LAYERS"
    return next(index for index, groups in enumerate(LAYERS) if group in groups)


def test_every_module_belongs_to_a_layer_and_every_import_resolves() -> None:
    for name, imported in GRAPH.items():
        if name != "parley":
            layer(name)
        assert [target for target in imported if target not in MODULES] == [], name


def test_layers_import_only_downwards() -> None:
    upwards = [f"{name} -> {target}" for name, imported in GRAPH.items() if name != "parley"
               for target in imported if layer(target) > layer(name)]
    assert upwards == []


def test_core_imports_nothing_of_parley_outside_core() -> None:
    outside = [f"{name} -> {target}" for name, imported in GRAPH.items() if owner(name, ("parley.core",))
               for target in imported if not owner(target, ("parley.core",))]
    assert outside == []


def test_channels_stores_and_engines_never_import_each_other() -> None:
    crossing = [f"{name} -> {target}" for name, imported in GRAPH.items()
                for target in imported
                if (mine := owner(name, SIBLINGS)) and (theirs := owner(target, SIBLINGS)) and mine != theirs]
    assert crossing == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    assert cycles(GRAPH) == []


def cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while (member := stack.pop()) != node:
                group.append(member)
            if group:
                found.append(sorted([node, *group]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The rule above is only as good as this: a three-module loop must be reported.
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
