"""The checks the tests run over the rules and dashboards, in one place.

Which metric names exist comes from the exporter's own catalog (the same definitions that
generate the README's metric table and the exporter's output), plus the recording rules and the
series Prometheus makes itself; the end-to-end test then confirms against a real scrape.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from monitoring import layout, promql

ROOT = layout.ROOT  # the tests find deploy/ from here
RULE_FILES = sorted(layout.ALERTS_DIR.glob("*.yml"))
TEST_FILES = sorted(layout.RULE_TESTS_DIR.glob("*.yml"))
DASHBOARD_FILES = sorted(layout.DASHBOARDS_DIR.glob("*.json"))

# pg_settings_<name>[_bytes|_seconds]: one metric per server setting, named after it.
SETTINGS_METRIC = re.compile(r"pg_settings_[a-z0-9_]+")

# How the end-to-end test and the parse check fill Grafana's variables.
GRAFANA_DEFAULTS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "$job": "tmi-db",
    "$instance": ".*",
    "$datname": ".*",
}


def catalog() -> dict[str, str]:
    """Every metric the exporter can export -> its type, from the package's metric registry
    (the same rows the README's metric table is rendered from)."""
    from tmi_db_exporter.catalog import metric_types  # here: the rule-only checks need no exporter

    return metric_types()


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> Iterator[dict[str, Any]]:
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            yield from group["rules"]


def recording_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def alert_exprs() -> dict[str, list[str]]:
    """Alert name -> the expressions of its rules (one per severity)."""
    out: dict[str, list[str]] = {}
    for rule in rules():
        if "alert" in rule:
            out.setdefault(rule["alert"], []).append(rule["expr"])
    return out


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in DASHBOARD_FILES}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, also those nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def panel_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target["expr"]


def all_exprs() -> Iterator[tuple[str, str]]:
    """(where, expression) of every PromQL expression in rules and dashboards."""
    for rule in rules():
        yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]
    for name, board in dashboards().items():
        for panel, expr in panel_exprs(board):
            yield f"{name} / {panel['title']}", expr
        for note in board["annotations"]["list"]:
            if "expr" in note:
                yield f"{name} / annotation {note['name']}", note["expr"]


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    values = {**GRAFANA_DEFAULTS, **(values or {})}
    for name in sorted(values, key=len, reverse=True):  # $__rate_interval before $__range
        expr = expr.replace(name, values[name])
    return expr


def known_metric(name: str, types: dict[str, str], recordings: set[str]) -> bool:
    return (name in types or name in recordings or name in promql.BUILTIN
            or bool(SETTINGS_METRIC.fullmatch(name)))


def problems(expr: str, types: dict[str, str], recordings: set[str]) -> list[str]:
    """Unknown metric names and range functions applied to the wrong metric type."""
    out = []
    for use in promql.uses(expr):
        if not known_metric(use.metric, types, recordings):
            out.append(f"unknown metric {use.metric}")
            continue
        kind = types.get(use.metric, "gauge")  # recording rules and settings are gauges
        if use.function in promql.COUNTER_FUNCTIONS and kind != "counter":
            out.append(f"{use.function}() of {kind} {use.metric}")
        if use.function in promql.GAUGE_FUNCTIONS and kind != "gauge":
            out.append(f"{use.function}() of {kind} {use.metric}")
    if re.search(r"redis_memory_max_bytes(?!\{[^}]*\}\s*>\s*0)(?!\s*>\s*0)", expr):
        out.append("redis_memory_max_bytes used without `> 0` (maxmemory 0 means no limit)")
    return out


def promtool_parse(exprs: list[str]) -> str:
    """promtool's verdict on expressions (as recording rules); empty when all parse."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("promtool not found: apt-get install prometheus")
    doc = {"groups": [{"name": "parse-check", "rules": [
        {"record": f"check:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump(doc, f)
        f.flush()
        result = subprocess.run([promtool, "check", "rules", f.name], capture_output=True,
                                text=True, timeout=60)
    return "" if result.returncode == 0 else result.stdout + result.stderr


def step_values(panel: dict[str, Any]) -> list[float]:
    """The threshold steps of a panel beyond its base colour."""
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    return [s["value"] for s in steps if s["value"] is not None]


def mentioned_alerts(text: str, names: set[str]) -> set[str]:
    return {n for n in names if re.search(rf"\b{n}\b", text)}
