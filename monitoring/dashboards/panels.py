"""Panel widgets and the PromQL they show: selectors filtered by the dashboard variables, threshold
steps, value mappings, and the five current panel types (stat, gauge, bargauge, timeseries,
table), each with the options every panel of its kind shares."""

from __future__ import annotations

from typing import Any

from monitoring.thresholds import humanize_percentage

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
SEL = 'job="$job", instance=~"$instance"'
SEL_DB = SEL + ', datname=~"$datname"'
CLEAR_TEXT = 'ssl="false"'
P99 = 'quantile="99"'

# A panel's queries: one expression, or (expression, legend) pairs.
Queries = str | list[tuple[str, str]]


# --- PromQL -------------------------------------------------------------------------------


def metric_selector(metric: str, extra: str = "", sel: str = SEL) -> str:
    """`metric{job=..., instance=~...[, extra]}`."""
    return f"{metric}{{{sel}{', ' + extra if extra else ''}}}"


def db_selector(metric: str, extra: str = "") -> str:
    """A per-database PostgreSQL metric, filtered by the `datname` variable too."""
    return metric_selector(metric, extra, SEL_DB)


def rate(selector: str, window: str = RATE) -> str:
    return f"rate({selector}{window})"


def increase(selector: str, window: str) -> str:
    return f"increase({selector}[{window}])"


def pct(value: float) -> str:
    """A ratio threshold as the panel descriptions write it: "80 %"."""
    return humanize_percentage(value).replace("%", " %")


# --- colours and value texts --------------------------------------------------------------


def steps(base: str = "green", *pairs: tuple[float, str]) -> dict[str, Any]:
    """Grafana threshold steps: `base` colour, then (value, colour) from each value up."""
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None}]
            + [{"color": color, "value": value} for value, color in pairs]}


def mapping(**texts: tuple[str, str]) -> list[dict[str, Any]]:
    """Value mappings: mapping(**{"0": ("down", "red"), "1": ("up", "green")})."""
    return [{"type": "value", "options": {
        value: {"text": text, "color": color, "index": i}
        for i, (value, (text, color)) in enumerate(texts.items())}}]


UP_DOWN = mapping(**{"0": ("down", "red"), "1": ("up", "green")})
OK_FAILED = mapping(**{"0": ("failed", "red"), "1": ("ok", "green")})
NEVER = mapping(**{"0": ("never", "text")})


# --- panels -------------------------------------------------------------------------------


def target(expr: str, legend: str = "", *, table: bool = False) -> dict[str, Any]:
    query: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
                             "range": not table, "instant": table}
    if table:
        query["format"] = "table"
    return query


def _targets(queries: Queries, table: bool) -> list[dict[str, Any]]:
    if isinstance(queries, str):
        queries = [(queries, "")]
    out = []
    for i, (expr, legend) in enumerate(queries):
        query = target(expr, legend, table=table)
        query["refId"] = chr(ord("A") + i)
        out.append(query)
    return out


def _panel(kind: str, title: str, description: str, queries: Queries, unit: str, *,
           thresholds: dict[str, Any] | None = None, mappings: list[Any] | None = None,
           table: bool = False, decimals: int | None = None, minimum: float | None = None,
           maximum: float | None = None, links: list[dict[str, Any]] | None = None,
           ) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": thresholds or steps(),
        "mappings": mappings or [],
        "color": {"mode": "thresholds"},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    panel: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": DS,
        "targets": _targets(queries, table),
        "fieldConfig": {"defaults": defaults, "overrides": []},
    }
    if links:
        panel["links"] = links
    return panel


REDUCE = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(title: str, description: str, queries: Queries, unit: str, *, text_mode: str = "auto",
         graph: bool = True, **kw: Any) -> dict[str, Any]:
    panel = _panel("stat", title, description, queries, unit, **kw)
    panel["options"] = {
        "reduceOptions": REDUCE, "colorMode": "value",
        "graphMode": "area" if graph else "none", "justifyMode": "auto",
        "orientation": "auto", "textMode": text_mode, "wideLayout": True,
        "showPercentChange": False,
    }
    return panel


def gauge(title: str, description: str, queries: Queries, unit: str,
          **kw: Any) -> dict[str, Any]:
    panel = _panel("gauge", title, description, queries, unit, **kw)
    panel["options"] = {"reduceOptions": REDUCE, "orientation": "auto",
                        "showThresholdLabels": False, "showThresholdMarkers": True}
    return panel


def bargauge(title: str, description: str, queries: Queries, unit: str,
             **kw: Any) -> dict[str, Any]:
    panel = _panel("bargauge", title, description, queries, unit, **kw)
    panel["options"] = {"reduceOptions": REDUCE, "orientation": "horizontal",
                        "displayMode": "gradient", "showUnfilled": True, "valueMode": "color",
                        "namePlacement": "auto", "sizing": "auto", "minVizHeight": 16,
                        "minVizWidth": 8, "maxVizHeight": 300}
    return panel


def timeseries(title: str, description: str, queries: Queries, unit: str, *,
               stack: bool = False, **kw: Any) -> dict[str, Any]:
    panel = _panel("timeseries", title, description, queries, unit, **kw)
    defaults = panel["fieldConfig"]["defaults"]
    has_lines = len(defaults["thresholds"]["steps"]) > 1
    defaults["color"] = {"mode": "palette-classic"}
    defaults["custom"] = {
        "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "gradientMode": "none",
        "showPoints": "never", "spanNulls": False, "axisPlacement": "auto",
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "dashed" if has_lines else "off"},
    }
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                   "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def table(title: str, description: str, queries: Queries, unit: str, *,
          columns: dict[str, str] | None = None, units: dict[str, str] | None = None,
          colored: tuple[str, ...] = (), hide: tuple[str, ...] = (),
          matrix: tuple[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    """An instant table; `columns` renames fields ("Value #A" -> "mean"), `units` sets a
    column's unit, `colored` colours cells by the thresholds, `matrix` pivots (rows, columns)."""
    panel = _panel("table", title, description, queries, unit, table=True, **kw)
    panel["fieldConfig"]["defaults"]["custom"] = {
        "align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
    panel["fieldConfig"]["overrides"] = _column_overrides(units or {}, colored)
    transformations: list[dict[str, Any]] = []
    if len(panel["targets"]) > 1:
        transformations.append({"id": "merge", "options": {}})
    if matrix:
        transformations.append({"id": "groupingToMatrix", "options": {
            "rowField": matrix[0], "columnField": matrix[1], "valueField": "Value"}})
    else:
        hidden = {name: True for name in ("Time", "job", "instance", "__name__", *hide)}
        transformations.append({"id": "organize", "options": {
            "excludeByName": hidden, "renameByName": columns or {}, "indexByName": {}}})
    panel["transformations"] = transformations
    panel["options"] = {"showHeader": True, "cellHeight": "sm",
                        "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    return panel


def _column_overrides(units: dict[str, str], colored: tuple[str, ...]) -> list[dict[str, Any]]:
    overrides = []
    for field, field_unit in units.items():
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "unit", "value": field_unit}]})
    for field in colored:
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "custom.cellOptions",
                                          "value": {"type": "color-text"}}]})
    return overrides
