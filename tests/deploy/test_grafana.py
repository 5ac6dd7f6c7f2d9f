"""The Grafana dashboard under deployments/grafana, checked offline: every panel's query parses as
PromQL (promql-parser, the Prometheus grammar) and names only metrics Parley really exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest

from parley.metrics import Metrics
from tests.conftest import ROOT

DASHBOARD = ROOT / "deployments" / "grafana" / "parley-dashboard.json"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    return dashboard()["panels"]


def selectors(node: Any) -> Iterator[str]:
    """The metric name of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node.name
        return
    for attribute in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None and not isinstance(child, (str, int, float)):
            yield from selectors(child)
    for argument in getattr(node, "args", None) or ():
        yield from selectors(argument)


def exported(name: str, names: set[str]) -> bool:
    base = next((name.removesuffix(suffix) for suffix in HISTOGRAM_SERIES if name.endswith(suffix)), name)
    return name in names or base in names


def test_the_walk_finds_every_selector() -> None:
    tree = promql_parser.parse('histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="1"}[5m]))) / on() b + -c')
    assert sorted(selectors(tree)) == ["a_bucket", "b", "c"]


@pytest.mark.parametrize("panel", panels(), ids=lambda panel: panel["title"])
def test_every_query_names_metrics_parley_exports(panel: dict[str, Any]) -> None:
    names = Metrics.names()
    assert panel["targets"], "a panel without a query shows nothing"
    for target in panel["targets"]:
        expr = target["expr"].replace("$namespace", ".*")  # Grafana's variable, as it substitutes it
        used = set(selectors(promql_parser.parse(expr)))
        assert used, f"{panel['title']}: no metric in {target['expr']!r}"
        unknown = {name for name in used if not exported(name, names)}
        assert not unknown, f"{panel['title']}: {sorted(unknown)} are not exported by /metrics"


def test_the_dashboard_is_importable_and_covers_the_metrics() -> None:
    board = dashboard()
    assert board["uid"] == "parley-overview" and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["type"] in {"timeseries", "stat"} and panel["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24  # Grafana's grid is 24 columns wide
    variables = {variable["name"] for variable in board["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    used = {name for panel in board["panels"] for target in panel["targets"]
            for name in selectors(promql_parser.parse(target["expr"].replace("$namespace", ".*")))}
    # Every metric family /metrics exports has a panel (a histogram through its buckets).
    shown = {next((n.removesuffix(s) for s in HISTOGRAM_SERIES if n.endswith(s)), n) for n in used}
    assert Metrics.names() <= shown
