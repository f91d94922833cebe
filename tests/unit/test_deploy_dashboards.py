"""deploy/grafana and deploy/prometheus cannot drift from what the service exports.

The dashboard JSON is what ``deploy/grafana/dashboard.py`` (grafanalib) generates; every metric a
panel or a rule queries is one the service's /metrics exports or a recording rule defines.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import yaml

from tests.exported import exported_metric_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "icos-intelligence.rules.yml"
NAME = re.compile(r"\b((?:icos_|[a-z_]+:)[a-zA-Z0-9_:]+)\b")
PROMQL = {"ALERTS"}


def _generator():
    spec = importlib.util.spec_from_file_location("dashboard", GRAFANA / "dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_the_dashboard_json_is_the_generated_one():
    committed = (GRAFANA / "icos-intelligence.json").read_text()
    assert _generator().render() == committed, "run: python deploy/grafana/dashboard.py"
    board = json.loads(committed)
    assert board["uid"] == "icos-intelligence"
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert all(p["datasource"] == "${datasource}" for p in panels)
    assert {"cluster", "signal", "namespace", "workload"} <= {t["name"] for t in board["templating"]["list"]}


def test_every_metric_queried_is_exported_or_recorded(embedded_settings):
    exported = exported_metric_names(embedded_settings)
    recorded = {r["record"] for r in _rules() if "record" in r}
    known = exported | recorded | PROMQL
    board = json.loads((GRAFANA / "icos-intelligence.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [t["query"] for t in board["templating"]["list"] if t.get("type") == "query"]
    exprs += [r["expr"] for r in _rules()]
    used = {name for expr in exprs for name in NAME.findall(expr)}
    assert used, "no metric found in the expressions"
    assert used - known == set()
    assert {"icos_forecast", "icos_observed", "icos_anomaly_score", "icos_recommendations", "icos_actions"} <= used
