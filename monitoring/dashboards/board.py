"""A dashboard being laid out (rows of panels on Grafana's 24-column grid), its variables and
the links between the three dashboards."""

from __future__ import annotations

from typing import Any

from monitoring.dashboards.panels import DS, SEL
from monitoring.layout import DASHBOARD_UIDS as UIDS

TAGS = ["tmi-db"]


class Board:
    """A dashboard being laid out: rows of panels, filled left to right, 24 columns wide."""

    def __init__(self, key: str, title: str, description: str, variables: list[dict[str, Any]],
                 links: list[dict[str, Any]]) -> None:
        self.key, self.title, self.description = key, title, description
        self.variables, self.links = variables, links
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.line_height = 0

    def _next_line(self) -> None:
        self.y += self.line_height
        self.x = self.line_height = 0

    def row(self, title: str) -> None:
        self._next_line()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self._next_line()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.line_height = max(self.line_height, h)
        self.panels.append(panel)

    def json(self) -> dict[str, Any]:
        for i, panel in enumerate(self.panels, start=1):
            panel["id"] = i
        return {
            "uid": UIDS[self.key], "title": self.title, "description": self.description,
            "tags": [*TAGS, self.key], "editable": True, "graphTooltip": 1,
            "schemaVersion": 38, "version": 1, "refresh": "1m", "timezone": "browser",
            "time": {"from": "now-6h", "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0,
            "liveNow": False, "weekStart": "",
            "annotations": {"list": [
                {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                 "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                 "name": "Annotations & Alerts", "type": "dashboard"},
                {"datasource": DS, "enable": True, "hide": False, "iconColor": "red",
                 "name": "TMI alerts firing",
                 "expr": 'ALERTS{alertstate="firing", alertname=~"Tmi.*"}',
                 "step": "60s", "titleFormat": "{{alertname}}",
                 "textFormat": "{{severity}}: {{alertname}}", "tagKeys": "severity"},
            ]},
            "templating": {"list": self.variables},
            "links": self.links,
            "panels": self.panels,
        }


def datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
            "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False}


def query_variable(name: str, label: str, query: str, *, multi: bool = False) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": query, "query": query, "refresh": 2, "regex": "", "sort": 1,
            "includeAll": multi, "multi": multi, "allValue": ".*" if multi else None,
            "current": {}, "hide": 0, "options": [], "skipUrlSync": False}


def variables(up_metric: str, *, databases: bool = False) -> list[dict[str, Any]]:
    out = [
        datasource_variable(),
        query_variable("job", "Job", f"label_values({up_metric}, job)"),
        query_variable("instance", "Instance",
                       f'label_values({up_metric}{{job="$job"}}, instance)', multi=True),
    ]
    if databases:
        out.append(query_variable(
            "datname", "Database",
            f"label_values(pg_database_size_bytes{{{SEL}}}, datname)", multi=True))
    return out


def board_link(key: str, title: str, tooltip: str) -> dict[str, Any]:
    return {"title": title, "type": "link", "url": f"/d/{UIDS[key]}", "icon": "dashboard",
            "tooltip": tooltip, "keepTime": True, "includeVars": True, "targetBlank": False,
            "asDropdown": False, "tags": []}


def panel_link(key: str, title: str) -> list[dict[str, Any]]:
    return [{"title": title, "url": f"/d/{UIDS[key]}?${{__url_time_range}}"
             "&${datasource:queryparam}&${job:queryparam}&${instance:queryparam}"}]


LINKS = {
    "overview": board_link("overview", "TMI overview", "Is the database layer healthy?"),
    "postgres": board_link("postgres", "PostgreSQL", "TMI's PostgreSQL in detail"),
    "redis": board_link("redis", "Redis", "TMI's Redis in detail"),
}
