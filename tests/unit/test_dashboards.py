"""Grafana dashboards and the docker-compose stack, checked structurally (no Grafana, no Docker
engine here): variables, current panel types only, units and descriptions everywhere, PromQL that
promtool parses and that reads only exported metrics, thresholds equal to the alert rules'; the
compose file's services, pinned images and mounted files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import checks, promql

BOARDS = checks.dashboards()
ROOT = checks.ROOT
CURRENT_TYPES = {"timeseries", "stat", "gauge", "table", "bargauge", "row"}
RATIO_METRIC = re.compile(r"(?:_ratio\b|:ratio)")
NOT_ZERO_TO_ONE = {"redis_mem_fragmentation_ratio", "redis_allocator_frag_ratio",
                   "redis_allocator_rss_ratio"}


def content_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in checks.panels(board) if p["type"] != "row"]


def test_three_dashboards_with_unique_uids_and_panel_ids() -> None:
    assert set(BOARDS) == {"tmi-db-overview.json", "tmi-db-postgres.json",
                           "tmi-db-redis.json"}
    uids = [b["uid"] for b in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for name, board in BOARDS.items():
        assert board["uid"] == name.removesuffix(".json")
        assert board["title"] and board["description"] and "tmi-db" in board["tags"]
        ids = [p["id"] for p in checks.panels(board)]
        assert len(ids) == len(set(ids)), name
        assert board["schemaVersion"] >= 36


def test_variables() -> None:
    for name, board in BOARDS.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        ds = variables["datasource"]
        assert ds["type"] == "datasource" and ds["query"] == "prometheus", name
        for var in ("job", "instance"):
            assert variables[var]["type"] == "query", (name, var)
            assert variables[var]["datasource"] == {"type": "prometheus",
                                                    "uid": "${datasource}"}
            assert variables[var]["query"].startswith("label_values(")
        if "postgres" in name:
            assert variables["datname"]["multi"] and variables["datname"]["includeAll"]


def test_only_current_panel_types() -> None:
    for name, board in BOARDS.items():
        types = {p["type"] for p in checks.panels(board)}
        assert types <= CURRENT_TYPES, f"{name}: legacy or unknown panel types {types}"


def test_every_panel_has_unit_description_and_the_datasource_variable() -> None:
    for name, board in BOARDS.items():
        for panel in content_panels(board):
            where = f"{name} / {panel['title']}"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            assert len(panel.get("description", "")) > 40, f"{where}: no description"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}", where
                assert target["expr"].strip(), where


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, board in BOARDS.items():
        boxes = []
        for panel in checks.panels(board):
            g = panel["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, (name, panel["title"])
            for other, o in boxes:
                overlap = (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                           and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"])
                assert not overlap, f"{name}: {panel['title']} overlaps {other}"
            boxes.append((panel["title"], g))


def test_selectors_use_the_variables() -> None:
    for name, board in BOARDS.items():
        for panel, expr in checks.panel_exprs(board):
            if "vector(0)" in expr and "ALERTS" in expr:
                continue  # counts the alerts of every instance
            assert 'job="$job"' in expr and 'instance=~"$instance"' in expr, \
                f"{name} / {panel['title']}: {expr}"


def test_rates_use_rate_interval() -> None:
    for name, board in BOARDS.items():
        for panel, expr in checks.panel_exprs(board):
            for function, window in promql.ranges(expr):
                if function in {"rate", "irate"}:
                    assert window in {"$__rate_interval", "1h"}, \
                        f"{name} / {panel['title']}: {function}(...[{window}])"


def test_expressions_read_exported_metrics_with_the_right_functions() -> None:
    types, recordings = checks.catalog(), checks.recording_names()
    found = {}
    for where, expr in checks.all_exprs():
        errors = checks.problems(expr, types, recordings)
        if errors:
            found[where] = errors
    assert not found
    for board in BOARDS.values():
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                metric = re.match(r"label_values\((\w+)", var["query"]).group(1)
                assert checks.known_metric(metric, types, recordings), var["query"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (prometheus)")
def test_every_expression_parses() -> None:
    exprs = [checks.substitute(expr) for _, expr in checks.all_exprs()]
    assert len(exprs) > 150
    assert checks.promtool_parse(exprs) == ""


def test_ratios_are_percentunit() -> None:
    """0-1 ratios (the exporter's *_ratio gauges and the :ratio recording rules) show as
    percentages."""
    for name, board in BOARDS.items():
        for panel in content_panels(board):
            metrics = {u.metric for t in panel["targets"] for u in promql.uses(t["expr"])}
            if {m for m in metrics if RATIO_METRIC.search(m)} - NOT_ZERO_TO_ONE:
                assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit", \
                    f"{name} / {panel['title']}"


def test_thresholds_match_the_alert_rules() -> None:
    """A panel that names an alert colours at that alert's thresholds, and every alert has such a
    panel."""
    alerts = checks.alert_exprs()
    covered = set()
    for name, board in BOARDS.items():
        for panel in content_panels(board):
            mentioned = checks.mentioned_alerts(panel["description"], set(alerts))
            steps = checks.step_values(panel)
            if not (mentioned and steps):
                continue
            literals = set().union(*(promql.comparison_literals(expr)
                                     for alert in mentioned for expr in alerts[alert]))
            assert set(steps) <= literals, (
                f"{name} / {panel['title']}: thresholds {steps} are not those of {mentioned}"
                f" ({sorted(literals)})")
            covered |= mentioned
    assert covered == set(alerts), f"alerts without a panel: {set(alerts) - covered}"


def test_overview_links_to_the_detailed_dashboards() -> None:
    overview = BOARDS["tmi-db-overview.json"]
    urls = {link["url"] for link in overview["links"]}
    assert {"/d/tmi-db-postgres", "/d/tmi-db-redis"} <= urls
    panel_urls = " ".join(link["url"] for p in content_panels(overview)
                          for link in p.get("links", []))
    assert "/d/tmi-db-postgres" in panel_urls and "/d/tmi-db-redis" in panel_urls
    for name in ("tmi-db-postgres.json", "tmi-db-redis.json"):
        assert "/d/tmi-db-overview" in {link["url"] for link in BOARDS[name]["links"]}


# --- deployment: Grafana provisioning, Prometheus config, docker compose ---------------------

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
WELL_KNOWN_IMAGES = {"postgres", "redis", "prom/prometheus", "grafana/grafana"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def host_path(source: str) -> Path:
    return (COMPOSE.parent / source).resolve()


def test_compose_services_and_images() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "exporter", "prometheus", "grafana"} <= set(services)
    built = {s["image"] for s in services.values() if "build" in s}
    for name, service in services.items():
        if "build" in service:
            context = host_path(service["build"]["context"])
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
            continue
        if service["image"] in built:  # the exporter's image, built by the exporter service
            continue
        image, _, tag = service["image"].rpartition(":")
        assert image in WELL_KNOWN_IMAGES, f"{name}: {service['image']} is not a known image"
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9]+)?", tag), \
            f"{name}: image tag {tag!r} is not a pinned version"


def test_compose_mounts_files_that_exist() -> None:
    doc = compose()
    sources = []
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                sources.append(source)
            else:
                assert source in doc.get("volumes", {}), f"undeclared named volume {source}"
    for secret in doc.get("secrets", {}).values():
        sources.append(secret["file"])
    assert sources
    for source in sources:
        assert host_path(source).exists(), f"compose mounts missing {source}"


def test_compose_services_reference_each_other_consistently() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", {})
        for other in depends:
            assert other in services, f"{name} depends on unknown {other}"
        for secret in service.get("secrets", []):
            assert secret in compose().get("secrets", {}), f"{name}: unknown secret {secret}"
    env = services["exporter"]["environment"]
    assert env["POSTGRES_HOST"] == "postgres" and env["REDIS_HOST"] == "redis"


def test_prometheus_config_scrapes_the_exporter_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    from monitoring.thresholds import load_thresholds

    job = jobs[load_thresholds()["settings"]["exporter_job"]]
    assert job["static_configs"][0]["targets"] == ["exporter:9432"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    rules_mount = next(v for v in mounts if v.startswith("../alerts:"))
    in_container = rules_mount.split(":")[1]
    assert any(pattern.startswith(in_container) for pattern in config["rule_files"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (prometheus)")
def test_prometheus_config_is_valid() -> None:
    import subprocess

    result = subprocess.run(["promtool", "check", "config", "--syntax-only",
                             str(DEPLOY / "prometheus.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["isDefault"]
    providers = yaml.safe_load((provisioning / "dashboards" / "tmi-db.yml").read_text())
    [provider] = providers["providers"]
    path = provider["options"]["path"]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert any(v.startswith("../dashboards:") and v.split(":")[1] == path for v in mounts)


def test_demo_load_uses_the_demo_module() -> None:
    """deploy/demo-load.py drives the demo's data and load modules; what it calls must exist."""
    import importlib

    script = (DEPLOY / "demo-load.py").read_text()
    calls = re.findall(r"\b(data|load)\.(\w+)\(", script)
    assert calls, "demo-load.py no longer calls the demo modules"
    for module, function in calls:
        found = getattr(importlib.import_module(f"tmi_db_exporter.demo.{module}"), function, None)
        assert callable(found), f"tmi_db_exporter.demo.{module}.{function} is gone"
