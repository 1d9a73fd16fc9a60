"""The Grafana dashboards, built as data so that their thresholds come from alerts/thresholds.toml.

Three dashboards: a one-screen TMI overview that links to a PostgreSQL and a Redis dashboard.
All share the same conventions: a `datasource` variable, `job` and `instance` variables (and
`datname` for PostgreSQL), `$__rate_interval` in every rate, a unit and a description on every
panel, current panel types only, and threshold colours equal to the alert rules' thresholds.
Panel descriptions name the alert a panel belongs to; a test checks that the colours match it.

Regenerated together with the rules by `python -m alerts.build` (or alone with
`python -m dashboards.build`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from alerts.build import humanize1024, humanize_duration, humanize_percentage, load_thresholds, num

DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "[$__rate_interval]"
SEL = 'job="$job", instance=~"$instance"'
SEL_DB = SEL + ', datname=~"$datname"'
CLEAR_TEXT = 'ssl="false"'
P99 = 'quantile="99"'
UIDS = {"overview": "tmi-db-overview", "postgres": "tmi-db-postgres", "redis": "tmi-db-redis"}
TAGS = ["tmi-db"]


# --- PromQL helpers -------------------------------------------------------------------------


def m(metric: str, extra: str = "", sel: str = SEL) -> str:
    """`metric{job=..., instance=~...[, extra]}`."""
    return f"{metric}{{{sel}{', ' + extra if extra else ''}}}"


def d(metric: str, extra: str = "") -> str:
    """A per-database PostgreSQL metric, filtered by the `datname` variable too."""
    return m(metric, extra, SEL_DB)


def rate(selector: str, window: str = RATE) -> str:
    return f"rate({selector}{window})"


def increase(selector: str, window: str) -> str:
    return f"increase({selector}[{window}])"


# --- panel helpers --------------------------------------------------------------------------


def steps(base: str = "green", *pairs: tuple[float, str]) -> dict[str, Any]:
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


def target(expr: str, legend: str = "", *, table: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto",
                         "range": not table, "instant": table}
    if table:
        t["format"] = "table"
    return t


def _targets(queries: list[tuple[str, str]] | str, table: bool) -> list[dict[str, Any]]:
    if isinstance(queries, str):
        queries = [(queries, "")]
    out = []
    for i, (expr, legend) in enumerate(queries):
        t = target(expr, legend, table=table)
        t["refId"] = chr(ord("A") + i)
        out.append(t)
    return out


def _panel(kind: str, title: str, description: str, queries: Any, unit: str, *,
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


def stat(title: str, description: str, queries: Any, unit: str, *, text_mode: str = "auto",
         graph: bool = True, **kw: Any) -> dict[str, Any]:
    panel = _panel("stat", title, description, queries, unit, **kw)
    panel["options"] = {
        "reduceOptions": REDUCE, "colorMode": "value",
        "graphMode": "area" if graph else "none", "justifyMode": "auto",
        "orientation": "auto", "textMode": text_mode, "wideLayout": True,
        "showPercentChange": False,
    }
    return panel


def gauge(title: str, description: str, queries: Any, unit: str, **kw: Any) -> dict[str, Any]:
    panel = _panel("gauge", title, description, queries, unit, **kw)
    panel["options"] = {"reduceOptions": REDUCE, "orientation": "auto",
                        "showThresholdLabels": False, "showThresholdMarkers": True}
    return panel


def bargauge(title: str, description: str, queries: Any, unit: str,
             **kw: Any) -> dict[str, Any]:
    panel = _panel("bargauge", title, description, queries, unit, **kw)
    panel["options"] = {"reduceOptions": REDUCE, "orientation": "horizontal",
                        "displayMode": "gradient", "showUnfilled": True, "valueMode": "color",
                        "namePlacement": "auto", "sizing": "auto", "minVizHeight": 16,
                        "minVizWidth": 8, "maxVizHeight": 300}
    return panel


def timeseries(title: str, description: str, queries: Any, unit: str, *,
               stack: bool = False, **kw: Any) -> dict[str, Any]:
    panel = _panel("timeseries", title, description, queries, unit, **kw)
    has_lines = len(panel["fieldConfig"]["defaults"]["thresholds"]["steps"]) > 1
    panel["fieldConfig"]["defaults"]["color"] = {"mode": "palette-classic"}
    panel["fieldConfig"]["defaults"]["custom"] = {
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


def table(title: str, description: str, queries: Any, unit: str, *,
          columns: dict[str, str] | None = None, units: dict[str, str] | None = None,
          colored: tuple[str, ...] = (), hide: tuple[str, ...] = (),
          matrix: tuple[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    """An instant table; `columns` renames fields ("Value #A" -> "mean"), `units` sets a
    column's unit, `colored` colours cells by the thresholds, `matrix` pivots (rows, columns)."""
    panel = _panel("table", title, description, queries, unit, table=True, **kw)
    panel["fieldConfig"]["defaults"]["custom"] = {
        "align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
    overrides = []
    for field, field_unit in (units or {}).items():
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "unit", "value": field_unit}]})
    for field in colored:
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "custom.cellOptions",
                                          "value": {"type": "color-text"}}]})
    panel["fieldConfig"]["overrides"] = overrides
    hidden = {name: True for name in ("Time", "job", "instance", "__name__", *hide)}
    transformations: list[dict[str, Any]] = []
    if len(panel["targets"]) > 1:
        transformations.append({"id": "merge", "options": {}})
    if matrix:
        transformations.append({"id": "groupingToMatrix", "options": {
            "rowField": matrix[0], "columnField": matrix[1], "valueField": "Value"}})
    else:
        transformations.append({"id": "organize", "options": {
            "excludeByName": hidden, "renameByName": columns or {}, "indexByName": {}}})
    panel["transformations"] = transformations
    panel["options"] = {"showHeader": True, "cellHeight": "sm",
                        "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    return panel


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


def pct(value: float) -> str:
    return humanize_percentage(value).replace("%", " %")


# --- the dashboards -----------------------------------------------------------------------


def postgres(t: dict[str, Any]) -> dict[str, Any]:
    conn = t["TmiPostgresConnectionsNearMax"]
    conn_steps = steps("green", (conn["warning"], "orange"), (conn["critical"], "red"))
    conn_alert = (f"Alert TmiPostgresConnectionsNearMax: warning above {pct(conn['warning'])},"
                  f" critical above {pct(conn['critical'])}.")
    b = Board("postgres", "TMI / PostgreSQL",
              "PostgreSQL of a TMI deployment, from tmi-db-exporter: connections, slow"
              " statements, vacuum, sizes, indexes, replication, backups, migrations and TLS.",
              variables("pg_up", databases=True), [LINKS["overview"], LINKS["redis"]])

    b.row("Overview")
    b.add(stat("PostgreSQL up", "1 when tmi-db-exporter can connect and query. Down: check the"
               " server, the network and the monitoring role's password."
               " Alert TmiPostgresDown fires below 1.",
               m("pg_up"), "none", thresholds=steps("red", (1, "green")), mappings=UP_DOWN,
               graph=False), 3, 4)
    b.add(stat("Server version", "PostgreSQL version reported by the server; check it against"
                                 " the supported releases before upgrades.",
               [(m("pg_static"), "{{short_version}}")], "none", text_mode="name", graph=False),
          3, 4)
    b.add(stat("Uptime", "Time since the postmaster started; a sudden drop is a restart or a"
               " crash: read the server log.",
               f"time() - {m('pg_postmaster_start_time_seconds')}", "s", graph=False), 3, 4)
    b.add(stat("Role", "Primary or standby (in recovery). A standby that turned primary means a"
                       " failover happened: check the replicas.", m("pg_is_in_recovery"), "none",
               mappings=mapping(**{"0": ("primary", "green"), "1": ("standby", "blue")}),
               graph=False), 3, 4)
    b.add(stat("Connection usage", "Client connections as a share of the slots ordinary roles"
               " may use (max_connections minus reserved slots). " + conn_alert,
               m("instance:pg_connections_usage:ratio"), "percentunit", thresholds=conn_steps,
               decimals=1), 3, 4)
    b.add(stat("Transactions per second", "Commits and rollbacks per second in the selected"
               " databases; a drop to zero while TMI is in use means TMI cannot reach the"
               " database.",
               f"sum(rate({d('pg_stat_database_xact_commit')}{RATE})"
               f" + rate({d('pg_stat_database_xact_rollback')}{RATE}))", "ops"), 3, 4)
    b.add(stat("Buffer cache hit ratio", "Block reads served from shared buffers over 5 minutes"
               " (lowest database). Persistently below about 90 % on a busy database: consider"
               " a larger shared_buffers or look for sequential scans.",
               f"min(datname:pg_blks_hit:ratio_rate5m{{{SEL_DB}}})", "percentunit",
               decimals=1), 3, 4)
    b.add(stat("Database size", "Total size of the selected databases; the Sizes row shows which"
                                " tables grow.",
               f"sum({d('pg_database_size_bytes')})", "bytes"), 3, 4)

    b.row("Connections")
    b.add(timeseries("Connections vs limit", "Client connections in use, the slots open to"
                     " ordinary roles and max_connections. " + conn_alert,
                     [(m("pg_connections_used"), "in use"),
                      (m("pg_connections_available"), "available to ordinary roles"),
                      (m("pg_settings_max_connections"), "max_connections")], "short"), 8, 8)
    b.add(timeseries("Connections by state", "Client connections by state; many \"idle in"
                     " transaction\" point at a client that forgets to commit.",
                     [(f"sum by (state) ({d('pg_stat_activity_count')})", "{{state}}")],
                     "short", stack=True), 8, 8)
    b.add(table("Connections by user and application", "Who is connected: per database, user,"
                " application_name and state. An unknown application or a user with many idle"
                " connections is where to look first when connections run out.",
                f"sum by (datname, usename, application_name, state)"
                f" ({d('pg_stat_activity_connections')})", "short",
                columns={"Value": "connections"}), 8, 8)
    idle = t["TmiPostgresIdleInTransaction"]
    b.add(timeseries("Oldest idle in transaction", "How long the oldest idle-in-transaction"
                     " session has been idle, per database. Find it in pg_stat_activity"
                     " (state = 'idle in transaction') and fix or end the client."
                     f" Alert TmiPostgresIdleInTransaction above"
                     f" {humanize_duration(idle['seconds'])}.",
                     [(d("pg_activity_idle_in_transaction_max_seconds"), "{{datname}}")], "s",
                     thresholds=steps("green", (idle["seconds"], "red"))), 6, 8)
    longq = t["TmiPostgresLongRunningQuery"]
    b.add(timeseries("Longest running statement", "Run time of the longest running statement"
                     " per database. Check pg_stat_activity for its text and wait_event."
                     f" Alert TmiPostgresLongRunningQuery above"
                     f" {humanize_duration(longq['seconds'])}.",
                     [(d("pg_activity_longest_query_seconds"), "{{datname}}")], "s",
                     thresholds=steps("green", (longq["seconds"], "red"))), 6, 8)
    longt = t["TmiPostgresLongTransaction"]
    b.add(timeseries("Oldest open transaction", "Age of the oldest open transaction per"
                     " database; it holds back vacuum everywhere. Alert"
                     f" TmiPostgresLongTransaction above {humanize_duration(longt['seconds'])}.",
                     [(d("pg_activity_longest_transaction_seconds"), "{{datname}}")], "s",
                     thresholds=steps("green", (longt["seconds"], "red"))), 6, 8)
    blocked = t["TmiPostgresBlockedSessions"]
    b.add(timeseries("Waiting and blocked sessions", "Sessions waiting for a lock and sessions"
                     " blocked by another session (pg_blocking_pids). Find the blocker with"
                     " pg_blocking_pids() and end it if it is stuck. Alert"
                     f" TmiPostgresBlockedSessions at {num(blocked['sessions'])} or more.",
                     [(d("pg_activity_waiting_on_locks"), "waiting {{datname}}"),
                      (d("pg_activity_blocked"), "blocked {{datname}}")], "short",
                     thresholds=steps("green", (blocked["sessions"], "red"))), 6, 8)
    b.add(timeseries("Locks by mode", "Locks held or awaited, by mode. AccessExclusiveLock"
                     " blocks everything else on its table (ALTER TABLE, VACUUM FULL).",
                     [(f"sum by (mode) ({d('pg_locks_count')})", "{{mode}}")], "short"), 12, 8)
    b.add(timeseries("Sessions idle in transaction", "Number of sessions idle inside an open"
                     " transaction, per database.",
                     [(d("pg_activity_idle_in_transaction"), "{{datname}}")], "short"), 12, 8)

    slow = t["TmiPostgresSlowStatements"]
    slow_alert = ("Alert TmiPostgresSlowStatements: mean above"
                  f" {humanize_duration(slow['mean_seconds'])} per call over 10 minutes.")
    b.row("Slow statements")
    b.add(table("Top statements", "The exporter's top statements by total time: mean per call"
                " since the statistics were reset, calls and time per second now, and the"
                " longest single run. Look a queryid up in pg_stat_statements (or turn on"
                " pg_stat_statements_query) and EXPLAIN ANALYZE it. " + slow_alert,
                [(d("pg_stat_statements_mean_seconds"), ""),
                 (rate(d("pg_stat_statements_calls_total")), ""),
                 (rate(d("pg_stat_statements_seconds_total")), ""),
                 (d("pg_stat_statements_max_seconds"), "")], "s",
                columns={"Value #A": "mean per call", "Value #B": "calls/s",
                         "Value #C": "time/s", "Value #D": "longest"},
                units={"calls/s": "ops"}, colored=("mean per call",),
                thresholds=steps("green", (slow["mean_seconds"], "red"))), 16, 10)
    b.add(timeseries("Mean time per call (10 min), slowest 10", "Mean execution time per call"
                     " over the last 10 minutes, for the 10 slowest statements. " + slow_alert,
                     [("topk(10, queryid:pg_stat_statements_mean_seconds:rate10m"
                       f"{{{SEL_DB}}})", "{{queryid}} {{datname}}")], "s",
                     thresholds=steps("green", (slow["mean_seconds"], "red"))), 8, 10)
    b.add(timeseries("Execution time per second, top 10", "Seconds of execution per second"
                     " (1 s/s = one backend busy all the time): where the database spends its"
                     " time.",
                     [(f"topk(10, {rate(d('pg_stat_statements_seconds_total'))})",
                       "{{queryid}} {{datname}}")], "s"), 8, 8)
    b.add(timeseries("Calls per second, top 10", "The most frequently executed statements; a"
                                                 " statement called far more often than TMI's"
                                                 " traffic suggests is an N+1 query pattern.",
                     [(f"topk(10, {rate(d('pg_stat_statements_calls_total'))})",
                       "{{queryid}} {{datname}}")], "ops"), 8, 8)
    b.add(timeseries("Blocks read from disk per second, top 10", "Shared blocks statements had"
                     " to read (cache misses); a statement high here scans more than it should.",
                     [(f"topk(10, {rate(d('pg_stat_statements_shared_blocks_read_total'))})",
                       "{{queryid}} {{datname}}")], "short"), 8, 8)
    b.add(stat("Statements above the exporter's threshold", "Statements whose mean time since"
               " the statistics reset is above the exporter's slow_statement_threshold (the"
               " guide's 100 ms). A count that never goes down is history: compare with the"
               " 10-minute means above. " + slow_alert,
               m("pg_stat_statements_slow_statements"), "short"), 6, 6)
    b.add(stat("Statements left out", "Statements beyond statements_limit that are not"
               " exported one by one.", m("pg_stat_statements_left_out"), "short"), 6, 6)
    b.add(table("Statement text", "Normalized text of the top statements. Off by default"
                " (query text can contain literals): enable it with"
                " enable_queries: [pg_stat_statements_query]; empty otherwise.",
                m("pg_stat_statements_query_info"), "none", hide=("Value",)), 12, 6)

    dead = t["TmiPostgresDeadTuplesHigh"]
    b.row("Vacuum and dead tuples")
    b.add(bargauge("Dead rows by table", "Dead rows as a share of each table's rows, worst 15."
                   " Autovacuum starts at 20 % by default; a table that stays above is not"
                   " being vacuumed (autovacuum off, too slow, or a long transaction holds the"
                   f" rows). Alert TmiPostgresDeadTuplesHigh above {pct(dead['ratio'])} with"
                   f" more than {num(dead['min_dead_rows'])} dead rows and no vacuum for"
                   f" {humanize_duration(dead['no_vacuum_seconds'])}.",
                   [(f"topk(15, {d('pg_stat_user_tables_dead_ratio')})",
                     "{{datname}}.{{schemaname}}.{{relname}}")], "percentunit",
                   thresholds=steps("green", (dead["ratio"], "red")), minimum=0, maximum=1),
          8, 10)
    b.add(table("Vacuum and analyze", "When each table was last vacuumed and analyzed, by hand"
                " and by autovacuum (never = since the statistics reset), with its dead rows"
                " and rows changed since the last analyze. VACUUM (ANALYZE) a table whose"
                " autovacuum is long ago while its dead rows grow.",
                [(f"{d('pg_stat_user_tables_last_autovacuum')} * 1000", ""),
                 (f"{d('pg_stat_user_tables_last_vacuum')} * 1000", ""),
                 (f"{d('pg_stat_user_tables_last_autoanalyze')} * 1000", ""),
                 (f"{d('pg_stat_user_tables_last_analyze')} * 1000", ""),
                 (d("pg_stat_user_tables_n_dead_tup"), ""),
                 (d("pg_stat_user_tables_n_mod_since_analyze"), "")], "dateTimeFromNow",
                columns={"Value #A": "last autovacuum", "Value #B": "last vacuum",
                         "Value #C": "last autoanalyze", "Value #D": "last analyze",
                         "Value #E": "dead rows", "Value #F": "changed since analyze"},
                units={"dead rows": "short", "changed since analyze": "short"},
                mappings=NEVER), 16, 10)
    b.add(timeseries("Dead rows, top 10", "Dead rows per table; they fall when vacuum runs. A"
                                          " line that only rises: see the vacuum table beside.",
                     [(f"topk(10, {d('pg_stat_user_tables_n_dead_tup')})",
                       "{{datname}}.{{relname}}")], "short"), 8, 8)
    b.add(timeseries("Vacuum runs per hour", "Autovacuum and autoanalyze runs per hour, per"
                     " database. None for hours while rows change: check that autovacuum is"
                     " on (pg_settings_autovacuum) and not blocked.",
                     [(f"sum by (datname) ({increase(d(f'pg_stat_user_tables_{k}_count'), '1h')})",
                       f"{k} {{{{datname}}}}") for k in ("autovacuum", "autoanalyze")],
                     "short"), 8, 8)
    wrap = t["TmiPostgresXidWraparound"]
    b.add(gauge("Transaction ID wraparound", "How far the oldest unfrozen transaction ID of"
                " each database is towards wraparound (2^31). Normally below 10 %; rising"
                " means freezing vacuums do not finish. Alert TmiPostgresXidWraparound:"
                f" warning above {pct(wrap['warning'])}, critical above {pct(wrap['critical'])}.",
                [(f"max by (datname) ({d('pg_database_wraparound_ratio')})", "{{datname}}")],
                "percentunit", thresholds=steps("green", (wrap["warning"], "orange"),
                                                (wrap["critical"], "red")),
                minimum=0, maximum=1), 4, 8)
    b.add(stat("Dead rows per database", "Dead rows as a share of all rows of each database's"
               " tables; high values mean bloat: vacuum the tables listed above.",
               [(f"datname:pg_dead_tuples:ratio{{{SEL_DB}}}", "{{datname}}")],
               "percentunit", decimals=1), 4, 4)
    b.add(stat("Tables left out", "Tables beyond tables_limit (the ones with the fewest dead"
               " rows are left out).", [(d("pg_stat_user_tables_left_out"), "{{datname}}")],
               "short"), 4, 4)

    growth = t["TmiPostgresDatabaseGrowth"]
    b.row("Sizes and growth")
    b.add(timeseries("Database size", "Disk space used by each database; compare its growth with"
                                      " the free space of the server's disk.",
                     [(d("pg_database_size_bytes"), "{{datname}}")], "bytes"), 8, 8)
    b.add(stat("Growth per day", "Growth per day (6-hour trend) as a share of the current size."
               " Find the table that grows in the panels beside. Alert"
               f" TmiPostgresDatabaseGrowth above {pct(growth['ratio_per_day'])} per day for"
               f" databases over {humanize1024(growth['min_size_bytes'])}B.",
               [(f"datname:pg_database_size:growth_ratio_per_day{{{SEL_DB}}}", "{{datname}}")],
               "percentunit", thresholds=steps("green", (growth["ratio_per_day"], "orange")),
               decimals=1), 4, 8)
    b.add(bargauge("Largest tables", "Total size (data, indexes, TOAST) of the 15 largest"
                   " tables; the place to look first when the database grows.",
                   [(f"topk(15, {d('pg_table_total_size_bytes')})",
                                 "{{datname}}.{{schemaname}}.{{relname}}")], "bytes"), 12, 8)
    b.add(table("Table sizes", "Each table's data (heap), indexes and TOAST. Indexes much larger"
                " than the data often hold unused or bloated indexes.",
                [(d("pg_table_heap_size_bytes"), ""), (d("pg_table_indexes_size_bytes"), ""),
                 (d("pg_table_toast_size_bytes"), ""), (d("pg_table_total_size_bytes"), "")],
                "bytes", columns={"Value #A": "data", "Value #B": "indexes",
                                  "Value #C": "TOAST", "Value #D": "total"}), 12, 8)
    b.add(timeseries("Size change over 24 hours", "How much each database grew or shrank in"
                     " the last 24 hours; shrinking only happens after VACUUM FULL or deletes"
                     " plus vacuum.",
                     [(f"delta({d('pg_database_size_bytes')}[1d])", "{{datname}}")], "bytes"),
          12, 8)

    b.row("Indexes")
    b.add(table("Unused indexes", "Non-unique, non-primary indexes without a single scan since"
                " the statistics were reset, with their size. Candidates for DROP INDEX once"
                " the statistics cover a full business cycle (see the next panel); they slow"
                " every write.",
                f"{d('pg_stat_user_indexes_size_bytes')} and on (job, instance, datname,"
                f" schemaname, relname, indexrelname) {d('pg_stat_user_indexes_unused')} == 1",
                "bytes", columns={"Value": "size"}), 12, 8)
    b.add(stat("Unused indexes", "Count of unused indexes; the table beside lists them with"
                                 " their size.",
               f"sum({d('pg_stat_user_indexes_unused')})", "short"), 4, 4)
    b.add(stat("Statistics since", "When the statistics were last reset (server start if"
               " never): scan counts and \"unused\" only cover the time since then.",
               [(f"{d('pg_stat_database_stats_reset')} * 1000", "{{datname}}")],
               "dateTimeFromNow", mappings=mapping(**{"0": ("server start", "text")}),
               graph=False), 8, 4)
    b.add(timeseries("Sequential and index scans per second", "Scans of the selected databases'"
                     " tables; sequential scans that grow with the data are missing indexes.",
                     [(f"sum by (datname) ({rate(d('pg_stat_user_tables_seq_scan'))})",
                       "sequential {{datname}}"),
                      (f"sum by (datname) ({rate(d('pg_stat_user_tables_idx_scan'))})",
                       "index {{datname}}")], "ops"), 12, 8)
    b.add(table("Tables read by sequential scans", "Rows read by sequential scans per second"
                " over the last hour, worst 20, with scan rates: a large table with many rows"
                " read sequentially and few index scans needs an index (the guide's missing"
                " index check).",
                [(f"topk(20, {rate(d('pg_stat_user_tables_seq_tup_read'), '[1h]')})", ""),
                 (rate(d("pg_stat_user_tables_seq_scan"), "[1h]"), ""),
                 (rate(d("pg_stat_user_tables_idx_scan"), "[1h]"), "")], "short",
                columns={"Value #A": "rows read sequentially/s", "Value #B": "seq scans/s",
                         "Value #C": "index scans/s"}), 12, 8)
    b.add(bargauge("Largest indexes", "The 15 largest indexes; a large index with no scans (see"
                                      " Unused indexes) is pure write cost.",
                   [(f"topk(15, {d('pg_stat_user_indexes_size_bytes')})",
                     "{{relname}}.{{indexrelname}}")], "bytes"), 12, 8)
    b.add(timeseries("Index scans per second, top 10", "The busiest indexes by scans per second;"
                                                       " an index missing here that you expected"
                                                       " TMI to use points at a plan problem.",
                     [(f"topk(10, {rate(d('pg_stat_user_indexes_idx_scan'))})",
                       "{{relname}}.{{indexrelname}}")], "ops"), 12, 8)

    lag = t["TmiPostgresReplicationLag"]
    lag_alert = f"Alert TmiPostgresReplicationLag above {humanize_duration(lag['seconds'])}."
    slots = t["TmiPostgresReplicationSlotRetainingWal"]
    archive = t["TmiPostgresWalArchiveFailing"]
    backup = t["TmiDbBackupTooOld"]
    b.row("Replication, WAL, archiving and backups")
    b.add(timeseries("WAL generated", "WAL written per second; it drives archive volume and"
                     " replica traffic.", [(rate(m("pg_wal_position_bytes")), "WAL")], "Bps"),
          8, 8)
    b.add(timeseries("Replica replay lag (primary side)", "How far each connected replica's"
                     " replay is behind, from pg_stat_replication. Empty without replicas. "
                     + lag_alert,
                     [(m("pg_stat_replication_replay_lag_seconds"),
                       "{{application_name}} {{client_addr}}")], "s",
                     thresholds=steps("green", (lag["seconds"], "red"))), 8, 8)
    b.add(timeseries("Replica lag in bytes (primary side)", "WAL each replica has not replayed"
                     " yet. Empty without replicas.",
                     [(m("pg_stat_replication_lag_bytes"),
                       "{{application_name}} {{client_addr}}")], "bytes"), 8, 8)
    b.add(timeseries("Standby lag (this server is a standby)", "On a standby: time since the"
                     " last replayed commit (it also grows while the primary is idle, so the"
                     " alert requires WAL waiting to be replayed). Empty on a primary. "
                     + lag_alert, [(m("pg_replication_lag_seconds"), "lag")], "s",
                     thresholds=steps("green", (lag["seconds"], "red"))), 8, 8)
    b.add(timeseries("WAL retained by replication slots", "WAL kept on disk for each slot. A"
                     " slot whose consumer is gone keeps WAL forever: drop it with"
                     " pg_drop_replication_slot(). Alert TmiPostgresReplicationSlotRetainingWal"
                     f" above {humanize1024(slots['bytes'])}B.",
                     [(m("pg_replication_slots_retained_bytes"), "{{slot_name}}")], "bytes",
                     thresholds=steps("green", (slots["bytes"], "red"))), 8, 8)
    b.add(stat("Inactive replication slots", "Slots without a connected consumer; each keeps WAL"
                                             " on disk until its consumer returns or the slot is"
                                             " dropped.",
               f"count({m('pg_replication_slots_active')} == 0) or vector(0)", "short",
               thresholds=steps("green", (1, "orange"))), 4, 4)
    b.add(stat("WAL archiving", "Whether archive_mode is on (needed for point-in-time"
               " recovery).", m("pg_stat_archiver_archive_mode"), "bool_on_off", graph=False),
          4, 4)
    b.add(timeseries("Archived and failed WAL files (10 min)", "WAL files archived and failed"
                     " archive attempts in the last 10 minutes. Failures: run the"
                     " archive_command by hand as the postgres user and read the server log."
                     " Alert TmiPostgresWalArchiveFailing at"
                     f" {num(archive['failures'])} or more failures while the latest attempt"
                     " failed.",
                     [(increase(m("pg_stat_archiver_archived_count"), "10m"), "archived"),
                      (increase(m("pg_stat_archiver_failed_count"), "10m"), "failed")], "short",
                     thresholds=steps("green", (archive["failures"], "red"))), 8, 8)
    b.add(stat("Last WAL file archived", "When WAL archiving last succeeded (never while"
                                         " archive_mode is off).",
               f"{m('pg_stat_archiver_last_archive_time')} * 1000", "dateTimeFromNow",
               mappings=NEVER, graph=False), 4, 4)
    b.add(stat("Newest backup age", "Age of the newest file in each backup path (backup_paths)."
               " Too old: check the backup job's log and cron/timer. Alert TmiDbBackupTooOld"
               f" above {humanize_duration(backup['seconds'])}.",
               [(m("tmi_db_backup_newest_age_seconds"), "{{path}}")], "s",
               thresholds=steps("green", (backup["seconds"], "red"))), 6, 4)
    b.add(stat("Backup files", "Files found in each backup path. Alert TmiDbBackupMissing"
               " below 1.", [(m("tmi_db_backup_files"), "{{path}}")], "short",
               thresholds=steps("red", (1, "green"))), 4, 4)
    b.add(stat("Newest backup size", "Size of the newest backup file; 0 bytes means the dump"
               " failed. Alert TmiDbBackupEmpty below 1 byte.",
               [(m("tmi_db_backup_newest_size_bytes"), "{{path}}")], "bytes",
               thresholds=steps("red", (1, "green"))), 6, 4)
    b.add(timeseries("Checkpoints per hour", "Scheduled and requested checkpoints per hour;"
                     " many requested checkpoints mean max_wal_size is too small.",
                     [(increase(m("pg_stat_bgwriter_checkpoints_timed_total"), "1h"),
                       "scheduled"),
                      (increase(m("pg_stat_bgwriter_checkpoints_req_total"), "1h"),
                       "requested")], "short"), 8, 8)

    seq = t["TmiPostgresSequenceNearExhaustion"]
    b.row("Migrations, TLS and settings")
    b.add(stat("Schema version", "golang-migrate's current version per database that has the"
               " migrations table.", [(d("pg_schema_migrations_version"), "{{datname}}")],
               "none", graph=False), 4, 4)
    b.add(stat("Migration state", "dirty = a migration stopped half-way; TMI will not migrate"
               " until someone fixes the schema and forces the version. Alert"
               " TmiPostgresMigrationDirty at 1 or more.",
               [(d("pg_schema_migrations_dirty"), "{{datname}}")], "none",
               thresholds=steps("green", (1, "red")),
               mappings=mapping(**{"0": ("clean", "green"), "1": ("dirty", "red")}),
               graph=False), 4, 4)
    b.add(stat("ssl setting", "Whether the server accepts TLS connections at all (ssl = on).",
               m("pg_settings_ssl"), "bool_on_off", graph=False), 4, 4)
    nossl = t["TmiPostgresConnectionsWithoutSsl"]
    b.add(stat("Connections without TLS", "Client connections in clear text. Set"
               " POSTGRES_SSL_MODE=require in TMI and hostssl lines in pg_hba.conf. Local"
               " socket connections always count here. Alert TmiPostgresConnectionsWithoutSsl"
               f" at {num(nossl['connections'])} or more.",
               f"sum({d('pg_stat_ssl_connections', CLEAR_TEXT)}) or vector(0)", "short",
               thresholds=steps("green", (nossl["connections"], "orange"))), 4, 4)
    b.add(stat("Settings pending restart", "Changed settings that need a restart to apply."
               " Alert TmiPostgresPendingRestart at 1 or more.",
               m("pg_settings_pending_restart"), "short",
               thresholds=steps("green", (1, "blue"))), 4, 4)
    b.add(stat("Migrations table", "Whether golang-migrate's table exists in each database;"
                                   " TMI's database should have it.",
               [(d("pg_schema_migrations_present"), "{{datname}}")], "none",
               mappings=mapping(**{"0": ("absent", "text"), "1": ("present", "green")}),
               graph=False), 4, 4)
    b.add(table("Connections by TLS version", "Client connections per database, user and TLS"
                " version (ssl false = clear text).",
                f"sum by (datname, usename, ssl, tls_version) ({d('pg_stat_ssl_connections')})",
                "short", columns={"Value": "connections"}), 12, 8)
    b.add(bargauge("Sequences closest to exhaustion", "Share of each sequence's range already"
                   " used; at 100 % inserts fail. Switch the column to bigint before that."
                   " Alert TmiPostgresSequenceNearExhaustion: warning above"
                   f" {pct(seq['warning'])}, critical above {pct(seq['critical'])}.",
                   [(f"topk(10, {d('pg_sequence_used_ratio')})",
                     "{{datname}}.{{schemaname}}.{{sequencename}}")], "percentunit",
                   thresholds=steps("green", (seq["warning"], "orange"),
                                    (seq["critical"], "red")), minimum=0, maximum=1), 12, 8)
    return b.json()


def redis(t: dict[str, Any]) -> dict[str, Any]:
    b = Board("redis", "TMI / Redis",
              "Redis of a TMI deployment, from tmi-db-exporter: memory, hit rate, commands,"
              " clients, keyspace, TMI key groups, slowlog, persistence and security posture.",
              variables("redis_up"), [LINKS["overview"], LINKS["postgres"]])
    hit = t["TmiRedisLowHitRate"]
    hit_alert = (f"Alert TmiRedisLowHitRate below {pct(hit['ratio'])} with more than"
                 f" {num(hit['min_lookups_per_second'])} lookup(s) per second.")
    hit_steps = steps("red", (hit["ratio"], "green"))

    b.row("Overview")
    b.add(stat("Redis up", "1 when tmi-db-exporter can reach and authenticate to Redis. Alert"
               " TmiRedisDown below 1.", m("redis_up"), "none",
               thresholds=steps("red", (1, "green")), mappings=UP_DOWN, graph=False), 3, 4)
    b.add(stat("Version and role", "Redis version and replication role (master or replica).",
               [(m("redis_instance_info"), "{{redis_version}} {{role}}")], "none",
               text_mode="name", graph=False), 3, 4)
    b.add(stat("Uptime", "Time since Redis started; a drop is a restart (data since the last"
               " save is lost unless AOF is on).", m("redis_uptime_in_seconds"), "s",
               graph=False), 3, 4)
    b.add(stat("Commands per second", "Commands processed per second; a drop to zero while TMI"
                                      " is in use means TMI lost Redis.",
               rate(m("redis_commands_processed_total")), "ops"), 3, 4)
    b.add(stat("Connected clients", "Client connections (TMI's pool, the exporter, others);"
                                    " compare with maxclients in the Clients row.",
               m("redis_connected_clients"), "short"), 3, 4)
    b.add(stat("Keys", "Keys in all databases; the TMI key groups row breaks them down by"
               " pattern.", f"sum({m('redis_db_keys')})", "short"), 3, 4)
    b.add(stat("Memory used", "Memory allocated by Redis; the Memory row compares it with"
                              " maxmemory.", m("redis_memory_used_bytes"),
               "bytes"), 3, 4)
    b.add(stat("Hit rate (5 min)", "Lookups that found their key over 5 minutes. " + hit_alert,
               m("instance:redis_keyspace_hits:ratio_rate5m"), "percentunit",
               thresholds=hit_steps, decimals=1), 3, 4)

    mem = t["TmiRedisMemoryNearMax"]
    ev = t["TmiRedisEvictions"]
    b.row("Memory")
    b.add(timeseries("Memory used vs maxmemory", "Allocated memory, memory held from the OS"
                     " (RSS) and maxmemory when one is set.",
                     [(m("redis_memory_used_bytes"), "used"),
                      (m("redis_memory_used_rss_bytes"), "RSS"),
                      (f"{m('redis_memory_max_bytes')} > 0", "maxmemory")], "bytes"), 10, 8)
    b.add(gauge("Memory used of maxmemory", "Used memory as a share of maxmemory. Empty when"
                " maxmemory is 0 (no limit): then Redis grows until the host runs out, so set"
                " one (the guide uses 1gb with allkeys-lru). Alert TmiRedisMemoryNearMax above"
                f" {pct(mem['ratio'])}.", m("instance:redis_memory_used:ratio"),
                "percentunit", thresholds=steps("green", (mem["ratio"], "red")),
                minimum=0, maximum=1), 4, 8)
    b.add(stat("Eviction policy", "maxmemory-policy: what Redis does at the limit (allkeys-lru"
                                  " evicts any key, noeviction refuses writes).",
               [(m("redis_instance_info"), "{{maxmemory_policy}}")], "none",
               text_mode="name", graph=False), 4, 4)
    b.add(stat("Fragmentation", "RSS divided by allocated memory; well above 1.5 wastes memory"
               " (activedefrag helps), below 1 means the OS swapped Redis out.",
               m("redis_mem_fragmentation_ratio"), "short", decimals=2), 6, 4)
    b.add(stat("Evicted keys (10 min)", "Keys evicted in the last 10 minutes because memory was"
               f" full. Alert TmiRedisEvictions at {num(ev['keys'])} or more.",
               increase(m("redis_evicted_keys_total"), "10m"), "short",
               thresholds=steps("green", (ev["keys"], "red"))), 4, 4)
    b.add(stat("Peak memory", "Highest memory allocated since start; size maxmemory and the host"
                              " for this, not for the current value.",
               m("redis_memory_used_peak_bytes"), "bytes"), 6, 4)
    b.add(timeseries("Memory by use", "Data set, internal overhead, Lua and scripts; overhead"
                                      " far above the data set means many tiny keys or client"
                                      " buffers.",
                     [(m("redis_memory_used_dataset_bytes"), "data set"),
                      (m("redis_memory_used_overhead_bytes"), "overhead"),
                      (m("redis_memory_used_lua_bytes"), "Lua"),
                      (m("redis_memory_used_scripts_bytes"), "scripts")], "bytes",
                     stack=True), 12, 8)
    b.add(timeseries("Evicted and expired keys per second", "Keys removed because memory was"
                     " full (evicted) or their TTL ran out (expired). " f"Alert"
                     f" TmiRedisEvictions at {num(ev['keys'])} or more evictions in 10 minutes.",
                     [(rate(m("redis_evicted_keys_total")), "evicted"),
                      (rate(m("redis_expired_keys_total")), "expired")], "ops"), 12, 8)

    b.row("Hit rate and keyspace")
    b.add(timeseries("Hit rate", "Lookups that found their key: over 5 minutes, and since"
                     " start (the guide's hit rate). A falling rate means cache keys expire"
                     " before they are read again or the cache is cleared. " + hit_alert,
                     [(m("instance:redis_keyspace_hits:ratio_rate5m"), "5 min"),
                      (m("redis_keyspace_hit_ratio"), "since start")], "percentunit",
                     thresholds=hit_steps, minimum=0, maximum=1), 8, 8)
    b.add(timeseries("Lookups per second", "Key lookups that hit and missed (the exporter's own"
                     " census lookups excluded).",
                     [(rate(m("redis_keyspace_hits_total")), "hits"),
                      (rate(m("redis_keyspace_misses_total")), "misses")], "ops"), 8, 8)
    b.add(timeseries("Keys per database", "Keys, and keys with a TTL, per database; all TMI"
                     " keys should have one.",
                     [(m("redis_db_keys"), "{{db}} keys"),
                      (m("redis_db_keys_expiring"), "{{db}} with TTL")], "short"), 8, 8)
    b.add(stat("Average TTL", "Average remaining TTL of the keys with a TTL, per database; it"
                              " should sit between the cache TTLs (minutes) and the session TTL"
                              " (24 h).",
               [(m("redis_db_avg_ttl_seconds"), "{{db}}")], "s"), 6, 4)

    b.row("Commands and latency")
    b.add(timeseries("Commands per second, top 10", "Calls per second by command; KEYS, FLUSHALL"
                                                    " or CONFIG here should not happen in"
                                                    " production.",
                     [(f"topk(10, {rate(m('redis_commands_total'))})", "{{cmd}}")], "ops"),
          8, 8)
    b.add(timeseries("Mean time per call, slowest 10", "Time per call by command. Redis runs"
                     " one command at a time: a slow command delays everyone.",
                     [(f"topk(10, {rate(m('redis_commands_duration_seconds_total'))}"
                       f" / ({rate(m('redis_commands_total'))} > 0))", "{{cmd}}")], "s"), 8, 8)
    b.add(timeseries("p99 latency by command", "99th percentile latency per command from INFO"
                     " latencystats (Redis 7 and later).",
                     [(f"topk(10, {m('redis_latency_percentiles_usec', P99)})",
                       "{{cmd}}")], "µs"), 8, 8)
    b.add(timeseries("Failed and rejected calls per second", "Calls refused before execution"
                     " (unknown command, ACL, OOM) and calls that failed while running.",
                     [(f"sum by (cmd) ({rate(m('redis_commands_rejected_calls_total'))})",
                       "rejected {{cmd}}"),
                      (f"sum by (cmd) ({rate(m('redis_commands_failed_calls_total'))})",
                       "failed {{cmd}}")], "ops"), 8, 8)
    b.add(timeseries("Error replies per second", "Error replies by error code (NOAUTH, OOM,"
                     " WRONGTYPE, ...); the exporter's own auth check adds one NOAUTH per"
                     " posture check when a password is required.",
                     [(rate(m("redis_errors_total")), "{{err}}")], "ops"), 8, 8)
    b.add(timeseries("Network traffic", "Bytes received from and sent to clients per second;"
                                        " output far above input means large values are read"
                                        " often.",
                     [(rate(m("redis_net_input_bytes_total")), "in"),
                      (rate(m("redis_net_output_bytes_total")), "out")], "Bps"), 8, 8)

    blocked = t["TmiRedisBlockedClients"]
    rejected = t["TmiRedisRejectedConnections"]
    b.row("Clients")
    b.add(timeseries("Connected clients vs maxclients", "Client connections and the maxclients"
                     " limit; at the limit Redis rejects new connections.",
                     [(m("redis_connected_clients"), "connected"),
                                 (m("redis_config_maxclients"), "maxclients")], "short"), 8, 8)
    b.add(timeseries("Blocked clients", "Clients waiting in BLPOP, WAIT and other blocking"
                     f" calls. Alert TmiRedisBlockedClients at {num(blocked['clients'])} or more"
                     " for a while.", [(m("redis_blocked_clients"), "blocked")], "short",
                     thresholds=steps("green", (blocked["clients"], "orange"))), 8, 8)
    b.add(timeseries("Rejected connections (5 min)", "Connections refused because maxclients"
                     " was reached. Find the client that leaks connections with CLIENT LIST."
                     f" Alert TmiRedisRejectedConnections at {num(rejected['connections'])} or"
                     " more.", [(increase(m("redis_rejected_connections_total"), "5m"),
                                 "rejected")], "short",
                     thresholds=steps("green", (rejected["connections"], "red"))), 8, 8)
    b.add(timeseries("New connections per second", "Connections accepted per second; many"
                     " means a client without connection pooling.",
                     [(rate(m("redis_connections_received_total")), "accepted")], "ops"), 12, 8)
    b.add(timeseries("Largest client buffers", "Largest client input and output buffers"
                     " lately; a huge output buffer is a slow consumer.",
                     [(m("redis_client_recent_max_input_buffer_bytes"), "input"),
                      (m("redis_client_recent_max_output_buffer_bytes"), "output")], "bytes"),
          12, 8)

    nottl = t["TmiRedisKeysWithoutTtl"]
    groups = nottl["key_groups"]
    b.row("TMI key groups")
    b.add(bargauge("Keys by group", "Keys of each TMI key pattern at the last key census"
                   " (session, cache, auth, rate_limit, lock; unclassified for the rest).",
                   [(m("redis_key_group_count"), "{{key_group}}")], "short"), 8, 8)
    b.add(bargauge("Keys without TTL", "Keys of each group without an expiry. Every TMI key"
                   " pattern carries a TTL, so these never disappear on their own (sessions"
                   " without TTL are the leak the guide cleans by hand). Alert"
                   f" TmiRedisKeysWithoutTtl at {num(nottl['keys'])} or more in {groups}.",
                   [(m("redis_key_group_keys_without_ttl", f'key_group=~"{groups}"'),
                     "{{key_group}}")], "short",
                   thresholds=steps("green", (nottl["keys"], "red"))), 8, 8)
    b.add(table("Remaining TTL by group", "Keys per group whose remaining TTL is at most the"
                " column's seconds (cumulative; +Inf = every key with a TTL). Sessions should"
                " sit below a day, cache entries below 15 minutes.",
                m("redis_key_group_keys_by_ttl"), "short", matrix=("key_group", "le")), 8, 8)
    b.add(timeseries("Memory by group (estimate)", "Estimated memory of each group's keys"
                     " (sampled MEMORY USAGE times keys).",
                     [(m("redis_key_group_memory_usage_bytes"), "{{key_group}}")], "bytes",
                     stack=True), 8, 8)
    b.add(timeseries("Keys by group over time", "Keys per group at each census; a group that"
                                                " only grows has keys that do not expire.",
                     [(m("redis_key_group_count"), "{{key_group}}")], "short"), 8, 8)
    b.add(stat("Census age", "Time since the last key census finished (it runs every"
               " key_census_interval, 5 minutes by default).",
               f"time() - {m('redis_key_census_last_finished_timestamp_seconds')}", "s",
               graph=False), 4, 4)
    b.add(stat("Census duration", "How long the last key census took; it pauses between SCAN"
                                  " steps, so long is fine, but it should finish well within"
                                  " key_census_interval.",
               m("redis_key_census_duration_seconds"), "s", graph=False), 4, 4)

    slowlog = t["TmiRedisSlowlogGrowing"]
    b.row("Slowlog")
    b.add(timeseries("Slowlog entries (10 min)", "Commands slower than slowlog-log-slower-than"
                     " in the last 10 minutes. Read them with SLOWLOG GET and look for KEYS,"
                     " large SMEMBERS/HGETALL or Lua scripts. Alert TmiRedisSlowlogGrowing at"
                     f" {num(slowlog['entries'])} or more.",
                     [(increase(m("redis_slowlog_entries_total"), "10m"), "entries")], "short",
                     thresholds=steps("green", (slowlog["entries"], "orange"))), 8, 8)
    b.add(table("Slow commands among the newest entries", "Per command: the longest duration"
                " and the number of entries among the newest slowlog entries. Empty while the"
                " slowlog is.",
                [(m("redis_slowlog_recent_max_duration_seconds"), ""),
                 (m("redis_slowlog_recent_entries"), "")], "s",
                columns={"Value #A": "longest", "Value #B": "entries"},
                units={"entries": "short"}), 8, 8)
    b.add(table("Latency spikes", "Latest spike per event from LATENCY LATEST (needs"
                " latency-monitor-threshold). Fork spikes come from BGSAVE/AOF rewrites.",
                [(m("redis_latency_spike_duration_seconds"), ""),
                 (f"{m('redis_latency_spike_last')} * 1000", "")], "s",
                columns={"Value #A": "duration", "Value #B": "when"},
                units={"when": "dateTimeFromNow"}), 8, 8)
    b.add(stat("Slowlog length", "Entries in the slowlog now; read them with SLOWLOG GET.",
               m("redis_slowlog_length"),
               "short"), 6, 4)
    b.add(stat("Newest slow command", "Duration of the newest slowlog entry; every client waited"
                                      " this long.",
               m("redis_last_slow_execution_duration_seconds"), "s"), 6, 4)
    b.add(stat("slowlog-log-slower-than", "The slowlog threshold (-1: slowlog off); the Redis"
                                          " default is 10 ms.",
               m("redis_config_slowlog_log_slower_than_seconds"), "s", graph=False), 6, 4)
    b.add(stat("slowlog-max-len", "Entries the slowlog keeps; older ones are dropped (the"
                                  " exporter counts them anyway).",
               m("redis_config_slowlog_max_len"),
               "short", graph=False), 6, 4)

    nosave = t["TmiRedisNoRecentSave"]
    b.row("Persistence")
    b.add(stat("Last RDB save", "Whether the last BGSAVE succeeded; after a failure Redis"
               " refuses writes (stop-writes-on-bgsave-error). Check disk space and the Redis"
               " log. Alert TmiRedisLastBgsaveFailed below 1.",
               m("redis_rdb_last_bgsave_status"), "none", mappings=OK_FAILED,
               thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    b.add(stat("Time since last save", "Time since the last successful RDB snapshot. Alert"
               f" TmiRedisNoRecentSave above {humanize_duration(nosave['seconds'])} while"
               " there are unsaved changes.",
               f"time() - {m('redis_rdb_last_save_timestamp_seconds')}", "s",
               thresholds=steps("green", (nosave["seconds"], "orange"))), 4, 4)
    b.add(stat("Changes since last save", "Writes since the last RDB snapshot: what a crash"
                                          " would lose without AOF.",
               m("redis_rdb_changes_since_last_save"), "short"), 4, 4)
    b.add(stat("AOF", "Whether append-only file persistence is on (the guide enables it:"
                      " appendonly yes).", m("redis_aof_enabled"),
               "bool_on_off", graph=False), 4, 4)
    b.add(stat("Last AOF write", "Whether the last write to the AOF succeeded. Alert"
               " TmiRedisAofWriteFailing below 1.", m("redis_aof_last_write_status"), "none",
               mappings=OK_FAILED, thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    b.add(stat("Latest fork", "Duration of the latest fork (BGSAVE, AOF rewrite); Redis stalls"
               " meanwhile.", m("redis_latest_fork_seconds"), "s"), 4, 4)
    b.add(timeseries("AOF size", "Current append-only file size and its size after the last"
                     " rewrite. Empty while AOF is off.",
                     [(m("redis_aof_current_size_bytes"), "current"),
                      (m("redis_aof_base_size_bytes"), "after last rewrite")], "bytes"), 12, 8)
    b.add(timeseries("Snapshots and rewrites per hour", "RDB saves and AOF rewrites per hour;"
                                                        " each one forks Redis, see the latest"
                                                        " fork time.",
                     [(increase(m("redis_rdb_saves_total"), "1h"), "RDB saves"),
                      (increase(m("redis_aof_rewrites_total"), "1h"), "AOF rewrites")], "short"),
          12, 8)

    b.row("Security posture")
    b.add(stat("Password required", "Whether a connection without credentials is refused."
               " No: set requirepass or an ACL default user with a password (the guide's"
               " Redis security). Alert TmiRedisAuthNotRequired below 1.",
               m("redis_security_auth_required"), "bool_yes_no",
               thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    b.add(stat("protected-mode", "Whether protected-mode is on (it only protects a Redis without"
                                 " a password).",
               m("redis_security_protected_mode"), "bool_on_off", graph=False), 4, 4)
    b.add(table("Dangerous commands", "Whether FLUSHDB, FLUSHALL, CONFIG and KEYS can still be"
                " called by their own names (renamed = no) and whether they are disabled"
                " altogether. Rename them in redis.conf (rename-command). Alert"
                " TmiRedisDangerousCommandsEnabled below 1 (not renamed).",
                [(m("redis_security_command_renamed"), ""),
                 (m("redis_security_command_disabled"), "")], "bool_yes_no",
                columns={"Value #A": "renamed", "Value #B": "disabled"},
                colored=("renamed",), thresholds=steps("red", (1, "green"))), 8, 8)
    b.add(table("Commands the exporter may use", "Commands tmi-db-exporter tried, and whether"
                " the server allowed them (ACL, rename-command); refused ones leave their"
                " metrics out.", m("tmi_db_exporter_redis_command_allowed"), "bool_yes_no",
                columns={"Value": "allowed"}), 8, 8)
    return b.json()


def overview(t: dict[str, Any]) -> dict[str, Any]:
    conn = t["TmiPostgresConnectionsNearMax"]
    mem = t["TmiRedisMemoryNearMax"]
    hit = t["TmiRedisLowHitRate"]
    slow = t["TmiPostgresSlowStatements"]
    backup = t["TmiDbBackupTooOld"]
    dead = t["TmiPostgresDeadTuplesHigh"]
    wrap = t["TmiPostgresXidWraparound"]
    nottl = t["TmiRedisKeysWithoutTtl"]
    failing = t["TmiDbCollectorFailing"]
    ttl_groups = f'key_group=~"{nottl["key_groups"]}"'
    b = Board("overview", "TMI / Database overview",
              "Is TMI's database layer healthy? One screen over PostgreSQL, Redis and the"
              " exporter, with links to the detailed dashboards.",
              variables("tmi_db_exporter_build_info"), [LINKS["postgres"], LINKS["redis"]])
    pg_link = panel_link("postgres", "PostgreSQL dashboard")
    redis_link = panel_link("redis", "Redis dashboard")

    b.row("Health")
    b.add(stat("Exporter scraped", "Whether Prometheus can scrape tmi-db-exporter. Down: every"
               " other panel is stale. Alert TmiDbExporterDown below 1.",
               'up{job="$job", instance=~"$instance"}', "none",
               thresholds=steps("red", (1, "green")), mappings=UP_DOWN, graph=False), 4, 4)
    b.add(stat("PostgreSQL", "Whether the exporter can connect to PostgreSQL and query it."
               " Alert TmiPostgresDown below 1.", m("pg_up"), "none",
               thresholds=steps("red", (1, "green")), mappings=UP_DOWN, graph=False,
               links=pg_link), 4, 4)
    b.add(stat("Redis", "Whether the exporter can reach and authenticate to Redis. Alert"
               " TmiRedisDown below 1.", m("redis_up"), "none",
               thresholds=steps("red", (1, "green")), mappings=UP_DOWN, graph=False,
               links=redis_link), 4, 4)
    b.add(stat("TMI alerts firing", "Alerts of the TMI database rules firing now, by severity."
               " The alert list in Grafana or Alertmanager names them; alerts/RUNBOOK.md says"
               " what to do.",
               [('count by (severity) (ALERTS{alertstate="firing", alertname=~"Tmi.*"})'
                 ' or on () vector(0)', "{{severity}}")], "short",
               thresholds=steps("green", (1, "red")), graph=False), 4, 4)
    b.add(stat("Exporter version", "tmi-db-exporter's version; compare with the release notes"
                                   " when a metric looks new or missing.",
               [(m("tmi_db_exporter_build_info"), "{{version}}")], "none", text_mode="name",
               graph=False), 4, 4)
    b.add(stat("Scrape duration", "How long Prometheus' last scrape of the exporter took. Close"
                                  " to the scrape timeout: raise the timeout or look at the"
                                  " slowest collectors below.",
               'scrape_duration_seconds{job="$job", instance=~"$instance"}', "s"), 4, 4)

    b.row("PostgreSQL")
    b.add(stat("Connection usage", "Share of the connection slots in use. Alert"
               f" TmiPostgresConnectionsNearMax: warning above {pct(conn['warning'])},"
               f" critical above {pct(conn['critical'])}.",
               m("instance:pg_connections_usage:ratio"), "percentunit",
               thresholds=steps("green", (conn["warning"], "orange"),
                                (conn["critical"], "red")), decimals=1, links=pg_link), 4, 4)
    b.add(stat("Slowest statement (10 min)", "Mean time per call of the slowest statement over"
               " the last 10 minutes. Alert TmiPostgresSlowStatements above"
               f" {humanize_duration(slow['mean_seconds'])}.",
               f"max(queryid:pg_stat_statements_mean_seconds:rate10m{{{SEL}}})", "s",
               thresholds=steps("green", (slow["mean_seconds"], "red")), links=pg_link), 4, 4)
    b.add(stat("Worst dead-row ratio", "Highest share of dead rows of any table. Alert"
               f" TmiPostgresDeadTuplesHigh above {pct(dead['ratio'])} (with enough dead rows"
               " and no vacuum).", f"max({m('pg_stat_user_tables_dead_ratio')})", "percentunit",
               thresholds=steps("green", (dead["ratio"], "red")), decimals=1, links=pg_link),
          4, 4)
    b.add(stat("Transaction ID wraparound", "Highest share of the XID range used by any"
               f" database. Alert TmiPostgresXidWraparound: warning above {pct(wrap['warning'])},"
               f" critical above {pct(wrap['critical'])}.",
               f"max({m('pg_database_wraparound_ratio')})", "percentunit",
               thresholds=steps("green", (wrap["warning"], "orange"),
                                (wrap["critical"], "red")), decimals=1, links=pg_link), 4, 4)
    b.add(stat("Newest backup age", "Age of the newest backup file (oldest among the backup"
               f" paths). Alert TmiDbBackupTooOld above {humanize_duration(backup['seconds'])}.",
               f"max({m('tmi_db_backup_newest_age_seconds')})", "s",
               thresholds=steps("green", (backup["seconds"], "red")), links=pg_link), 4, 4)
    b.add(stat("Transactions per second", "Commits and rollbacks per second, all databases. Zero"
                                          " while TMI is in use means TMI cannot reach PostgreSQL.",
               f"sum({rate(m('pg_stat_database_xact_commit'))}"
               f" + {rate(m('pg_stat_database_xact_rollback'))})", "ops", links=pg_link), 4, 4)

    b.row("Redis")
    b.add(stat("Memory of maxmemory", "Used memory as a share of maxmemory; empty when no"
               f" maxmemory is set. Alert TmiRedisMemoryNearMax above {pct(mem['ratio'])}.",
               m("instance:redis_memory_used:ratio"), "percentunit",
               thresholds=steps("green", (mem["ratio"], "red")), decimals=1, links=redis_link),
          4, 4)
    b.add(stat("Hit rate (5 min)", "Key lookups that found their key. Alert TmiRedisLowHitRate"
               f" below {pct(hit['ratio'])}.", m("instance:redis_keyspace_hits:ratio_rate5m"),
               "percentunit", thresholds=steps("red", (hit["ratio"], "green")), decimals=1,
               links=redis_link), 4, 4)
    b.add(stat("Keys without TTL", f"Keys of the TMI groups ({nottl['key_groups']}) without an"
               f" expiry. Alert TmiRedisKeysWithoutTtl at {num(nottl['keys'])} or more.",
               f"sum({m('redis_key_group_keys_without_ttl', ttl_groups)})",
               "short", thresholds=steps("green", (nottl["keys"], "red")), links=redis_link),
          4, 4)
    b.add(stat("Commands per second", "Commands Redis processes per second; a sudden drop while"
                                      " TMI is in use means TMI lost its Redis connection.",
               rate(m("redis_commands_processed_total")), "ops", links=redis_link), 4, 4)
    b.add(stat("Connected clients", "Client connections to Redis; a steady climb is a client"
                                    " that leaks connections (see CLIENT LIST).",
               m("redis_connected_clients"),
               "short", links=redis_link), 4, 4)
    b.add(stat("Memory used", "Memory allocated by Redis; the Redis dashboard shows which key"
                              " group holds it.", m("redis_memory_used_bytes"),
               "bytes", links=redis_link), 4, 4)

    b.row("Exporter")
    b.add(table("Collectors", "Each collector of the exporter: how long its last run took,"
                " how old the served result is, its series and its failures in the last hour."
                " A collector with failures: read the exporter log.",
                [(m("tmi_db_exporter_collector_duration_seconds"), ""),
                 (m("tmi_db_exporter_collector_age_seconds"), ""),
                 (m("tmi_db_exporter_collector_series"), ""),
                 (increase(m("tmi_db_exporter_collector_errors_total"), "1h"), "")], "s",
                columns={"Value #A": "last run", "Value #B": "result age", "Value #C": "series",
                         "Value #D": "failures (1 h)"},
                units={"series": "short", "failures (1 h)": "short"}), 12, 10)
    b.add(timeseries("Collector failures (10 min)", "Failed runs per collector in the last 10"
                     f" minutes. Alert TmiDbCollectorFailing at {num(failing['errors'])} or more"
                     " in every 10 minutes for a while.",
                     [(increase(m("tmi_db_exporter_collector_errors_total"), "10m"),
                       "{{collector}}")], "short",
                     thresholds=steps("green", (failing["errors"], "red"))), 12, 5)
    b.add(timeseries("Collector run time, slowest 10", "How long each collector's last run"
                     " took; near the scrape timeout, results arrive late.",
                     [(f"topk(10, {m('tmi_db_exporter_collector_duration_seconds')})",
                       "{{collector}}")], "s"), 12, 5)
    b.add(timeseries("Late collectors per second", "Scrapes that served a collector's previous"
                     " result because it was not done in time.",
                     [(rate(m("tmi_db_exporter_collector_deadline_misses_total")),
                       "{{collector}}")], "ops"), 12, 6)
    b.add(table("Skipped queries", "Collectors that cannot run on this server and why (for"
                " example a missing pg_stat_statements extension). Empty when everything can"
                " run.", m("tmi_db_exporter_query_skipped"), "none", hide=("Value",)), 12, 6)
    return b.json()


def dashboards(t: dict[str, Any] | None = None) -> dict[str, str]:
    """File name -> dashboard JSON text."""
    t = t or load_thresholds()
    return {f"{UIDS[key]}.json": json.dumps(make(t), indent=2, ensure_ascii=False) + "\n"
            for key, make in (("overview", overview), ("postgres", postgres), ("redis", redis))}


def main() -> int:
    from alerts.build import ROOT

    for name, text in dashboards().items():
        path = ROOT / "dashboards" / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
