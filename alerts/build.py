"""Alert rules, recording rules and their promtool unit tests, built from `thresholds.toml`.

The thresholds file is the one place where alerting is tuned; the rule files, the promtool tests,
the runbook's threshold table and the dashboards' threshold colours all derive from it. Keeping
the rules as data here (and not as hand-edited YAML) is what lets one number change everywhere
at once: the unit tests are generated with inputs on both sides of each threshold, and their
expected annotations are rendered with the same humanize functions Prometheus uses, so a test
checks the template text too.

    python -m alerts.build          # rewrite every generated file
    python -m alerts.build --check  # exit 1 if any generated file is out of date
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THRESHOLDS = HERE / "thresholds.toml"
RUNBOOK = HERE / "RUNBOOK.md"
TESTS_DIR = HERE / "tests"

GROUPS = ("recording", "exporter", "postgres", "redis")
DASHBOARD_OF_GROUP = {
    "exporter": "tmi-db-overview",
    "postgres": "tmi-db-postgres",
    "redis": "tmi-db-redis",
}
SEVERITIES = ("critical", "warning", "info")

# Labels every test series carries, as Prometheus adds them to the exporter's samples.
JOB, INSTANCE = "tmi-db", "db-exporter:9432"


# --- thresholds ---------------------------------------------------------------------------


def load_thresholds(path: Path = THRESHOLDS) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def num(value: float | int) -> str:
    """A threshold as PromQL (and Grafana) literal: 0.8, 1073741824, 1e-05."""
    if isinstance(value, bool):
        raise TypeError("a threshold is a number, not a boolean")
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value))


def minutes(duration: str) -> int:
    """Minutes of a Prometheus duration as used for `for` ("0m", "90s", "15m", "1h")."""
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r} (use e.g. 0m, 5m, 1h)")
    n, unit = int(match.group(1)), match.group(2)
    return math.ceil(n * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit])


# --- Prometheus' template functions, for the expected annotations of the unit tests ---------


def _g4(v: float) -> str:
    return f"{v:.4g}"


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        total = int(v)
        seconds, minutes_, hours, days = (
            total % 60, total // 60 % 60, total // 3600 % 24, total // 86400)
        if days:
            return f"{sign}{days}d {hours}h {minutes_}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes_}m {seconds}s"
        if minutes_:
            return f"{sign}{minutes_}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


FILTERS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
}


def lbl(name: str) -> str:
    return "{{ $labels." + name + " }}"


def val(fn: str) -> str:
    assert fn in FILTERS
    return "{{ $value | " + fn + " }}"


def render(template: str, labels: dict[str, str], value: float) -> str:
    """Render the small template subset the rules use, as Prometheus would."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("$labels."):
            return labels.get(inner[len("$labels."):], "")
        target, _, fn = (part.strip() for part in inner.partition("|"))
        assert target == "$value" and fn in FILTERS, inner
        return FILTERS[fn](value)

    return re.sub(r"\{\{\s*(.*?)\s*\}\}", one, template)


# --- the rules ----------------------------------------------------------------------------


@dataclass
class Recording:
    record: str
    expr: str
    meaning: str


@dataclass
class Expect:
    """An alert a test case expects, with the labels of its series and its value."""

    labels: dict[str, str]
    value: float
    severity: str | None = None  # None: the alert's own severity


@dataclass
class Case:
    title: str
    series: list[tuple[str, str]]
    fires: list[Expect]
    eval_minutes: int | None = None  # default: the alert's `for` plus 20 minutes


@dataclass
class Alert:
    name: str
    group: str
    severity: str
    expr: str
    for_: str
    summary: str
    description: str
    condition: str  # the default threshold in words, for the runbook table
    cases: list[Case] = field(default_factory=list)
    # (severity, expr) of a second, stricter rule under the same alert name
    escalation: tuple[str, str] | None = None


def series(metric: str, **labels: str) -> str:
    base = {"job": JOB, "instance": INSTANCE, **labels}
    body = ",".join(f'{k}="{v}"' for k, v in base.items())
    return f"{metric}{{{body}}}"


def labels_of(**labels: str) -> dict[str, str]:
    return {"job": JOB, "instance": INSTANCE, **labels}


def recording_rules() -> list[Recording]:
    by_db = "job, instance, datname"
    return [
        Recording(
            "instance:pg_connections_usage:ratio",
            "pg_connections_used / (pg_connections_available > 0)",
            "Client connections as a share of the slots ordinary roles may use (0-1).",
        ),
        Recording(
            "datname:pg_blks_hit:ratio_rate5m",
            f"sum by ({by_db}) (rate(pg_stat_database_blks_hit[5m]))\n"
            f"/\n(sum by ({by_db}) (rate(pg_stat_database_blks_hit[5m])"
            " + rate(pg_stat_database_blks_read[5m])) > 0)",
            "Share of block reads served from shared buffers over 5 minutes (0-1).",
        ),
        Recording(
            "datname:pg_dead_tuples:ratio",
            f"sum by ({by_db}) (pg_stat_user_tables_n_dead_tup)\n"
            f"/\n(sum by ({by_db}) (pg_stat_user_tables_n_dead_tup"
            " + pg_stat_user_tables_n_live_tup) > 0)",
            "Dead rows as a share of all rows of the database's tables (0-1).",
        ),
        Recording(
            "datname:pg_database_size:growth_ratio_per_day",
            "deriv(pg_database_size_bytes[6h]) * 86400 / (pg_database_size_bytes > 0)",
            "Growth per day (6-hour linear trend) as a share of the current size.",
        ),
        Recording(
            "queryid:pg_stat_statements_mean_seconds:rate10m",
            "rate(pg_stat_statements_seconds_total[10m])\n"
            "/\n(rate(pg_stat_statements_calls_total[10m]) > 0)",
            "Mean execution time per call of each top statement over the last 10 minutes;"
            " absent for statements that did not run.",
        ),
        Recording(
            "instance:redis_keyspace_hits:ratio_rate5m",
            "sum by (job, instance) (rate(redis_keyspace_hits_total[5m]))\n"
            "/\n(sum by (job, instance) (rate(redis_keyspace_hits_total[5m])"
            " + rate(redis_keyspace_misses_total[5m])) > 0)",
            "Key lookups that found their key over 5 minutes (0-1); absent without lookups.",
        ),
        Recording(
            "instance:redis_keyspace_lookups:rate5m",
            "sum by (job, instance) (rate(redis_keyspace_hits_total[5m])"
            " + rate(redis_keyspace_misses_total[5m]))",
            "Key lookups per second over 5 minutes.",
        ),
        Recording(
            "instance:redis_memory_used:ratio",
            "redis_memory_used_bytes / (redis_memory_max_bytes > 0)",
            "Memory used as a share of maxmemory (0-1); absent when maxmemory is 0 (no limit).",
        ),
    ]


def alerts(t: dict[str, Any]) -> list[Alert]:
    job = t["settings"]["exporter_job"]
    out: list[Alert] = []

    def add(alert: Alert) -> Alert:
        cfg = t[alert.name]
        alert.for_ = cfg["for"]
        out.append(alert)
        return alert

    # --- exporter -------------------------------------------------------------------------
    add(Alert(
        "TmiDbExporterDown", "exporter", "critical", f'up{{job="{job}"}} < 1', "",
        "Prometheus cannot scrape tmi-db-exporter on " + lbl("instance"),
        "The scrape of " + lbl("instance") + " (job " + lbl("job") + ") fails: no database"
        " metric is being collected and every other TMI database alert is blind.",
        f'up{{job="{job}"}} is 0',
        cases=[
            Case("down", [(series("up", job=job), "0x30")], [Expect(labels_of(job=job), 0)]),
            Case("up, and another job's target down", [
                (series("up", job=job), "1x30"), (series("up", job="other"), "0x30")], []),
        ],
    ))
    c = t["TmiDbCollectorFailing"]
    add(Alert(
        "TmiDbCollectorFailing", "exporter", "warning",
        f"increase(tmi_db_exporter_collector_errors_total[10m]) >= {num(c['errors'])}", "",
        "Collector " + lbl("collector") + " of tmi-db-exporter keeps failing",
        "Collector " + lbl("collector") + " on " + lbl("instance") + " failed "
        + val("humanize") + " times in the last 10 minutes; its metrics are stale or missing."
        " The exporter log names the error.",
        f"at least {num(c['errors'])} failed run(s) in every 10 minutes",
        cases=[
            Case("failing every minute", [
                (series("tmi_db_exporter_collector_errors_total", collector="pg:pg_table"),
                 "0+1x40")], [Expect(labels_of(collector="pg:pg_table"), 10)]),
            Case("no errors", [
                (series("tmi_db_exporter_collector_errors_total", collector="pg:pg_table"),
                 "3x40")], []),
        ],
    ))

    # --- PostgreSQL -----------------------------------------------------------------------
    add(Alert(
        "TmiPostgresDown", "postgres", "critical", "pg_up < 1", "",
        "PostgreSQL is unreachable from " + lbl("instance"),
        "tmi-db-exporter on " + lbl("instance") + " cannot connect to PostgreSQL or run a"
        " query (pg_up is 0). TMI cannot read or save threat models.",
        "pg_up is 0",
        cases=[
            Case("down", [(series("pg_up"), "0x30")], [Expect(labels_of(), 0)]),
            Case("up", [(series("pg_up"), "1x30")], []),
        ],
    ))
    c = t["TmiPostgresConnectionsNearMax"]
    add(Alert(
        "TmiPostgresConnectionsNearMax", "postgres", "warning",
        f"instance:pg_connections_usage:ratio > {num(c['warning'])}", "",
        "PostgreSQL connections at " + val("humanizePercentage") + " of the limit",
        "PostgreSQL behind " + lbl("instance") + " uses " + val("humanizePercentage")
        + " of the connection slots ordinary roles may use. When they run out, TMI gets"
        " \"too many clients\" errors.",
        f"usage above {humanize_percentage(c['warning'])} (critical above"
        f" {humanize_percentage(c['critical'])})",
        escalation=("critical", f"instance:pg_connections_usage:ratio > {num(c['critical'])}"),
        cases=[
            Case("between warning and critical", [
                (series("pg_connections_used"), "90x30"),
                (series("pg_connections_available"), "100x30")],
                [Expect(labels_of(), 0.9, "warning")]),
            Case("above critical", [
                (series("pg_connections_used"), "97x30"),
                (series("pg_connections_available"), "100x30")],
                [Expect(labels_of(), 0.97, "critical"), Expect(labels_of(), 0.97, "warning")]),
            Case("half used", [
                (series("pg_connections_used"), "50x30"),
                (series("pg_connections_available"), "100x30")], []),
        ],
    ))
    c = t["TmiPostgresIdleInTransaction"]
    add(Alert(
        "TmiPostgresIdleInTransaction", "postgres", "warning",
        f"pg_activity_idle_in_transaction_max_seconds > {num(c['seconds'])}", "",
        "A session in " + lbl("datname") + " is idle in transaction for "
        + val("humanizeDuration"),
        "A client of database " + lbl("datname") + " opened a transaction and has done nothing"
        " for " + val("humanizeDuration") + ". It holds its locks and keeps vacuum from removing"
        " dead rows.",
        f"idle in transaction longer than {humanize_duration(c['seconds'])}",
        cases=[
            Case("idle for 10 minutes", [
                (series("pg_activity_idle_in_transaction_max_seconds", datname="tmi"), "600x30")],
                [Expect(labels_of(datname="tmi"), 600)]),
            Case("idle for a second", [
                (series("pg_activity_idle_in_transaction_max_seconds", datname="tmi"), "1x30")],
                []),
        ],
    ))
    c = t["TmiPostgresLongRunningQuery"]
    add(Alert(
        "TmiPostgresLongRunningQuery", "postgres", "warning",
        f"pg_activity_longest_query_seconds > {num(c['seconds'])}", "",
        "A statement in " + lbl("datname") + " has been running for " + val("humanizeDuration"),
        "The longest running statement in database " + lbl("datname") + " started "
        + val("humanizeDuration") + " ago; it may hold locks other requests wait for.",
        f"a statement running longer than {humanize_duration(c['seconds'])}",
        cases=[
            Case("running 400 s", [
                (series("pg_activity_longest_query_seconds", datname="tmi"), "400x30")],
                [Expect(labels_of(datname="tmi"), 400)]),
            Case("running 2 s", [
                (series("pg_activity_longest_query_seconds", datname="tmi"), "2x30")], []),
        ],
    ))
    c = t["TmiPostgresLongTransaction"]
    add(Alert(
        "TmiPostgresLongTransaction", "postgres", "warning",
        f"pg_activity_longest_transaction_seconds > {num(c['seconds'])}", "",
        "A transaction in " + lbl("datname") + " has been open for " + val("humanizeDuration"),
        "The oldest open transaction in database " + lbl("datname") + " started "
        + val("humanizeDuration") + " ago. Until it ends, vacuum cannot remove rows that died"
        " after it began, anywhere in the cluster.",
        f"a transaction open longer than {humanize_duration(c['seconds'])}",
        cases=[
            Case("open 2000 s", [
                (series("pg_activity_longest_transaction_seconds", datname="tmi"), "2000x40")],
                [Expect(labels_of(datname="tmi"), 2000)]),
            Case("open 60 s", [
                (series("pg_activity_longest_transaction_seconds", datname="tmi"), "60x40")],
                []),
        ],
    ))
    c = t["TmiPostgresBlockedSessions"]
    add(Alert(
        "TmiPostgresBlockedSessions", "postgres", "warning",
        f"pg_activity_blocked >= {num(c['sessions'])}", "",
        val("humanize") + " session(s) in " + lbl("datname") + " blocked by locks",
        val("humanize") + " session(s) of database " + lbl("datname") + " have been waiting"
        " for a lock held by another session for a while; the TMI requests behind them hang.",
        f"at least {num(c['sessions'])} blocked session(s)",
        cases=[
            Case("two blocked", [(series("pg_activity_blocked", datname="tmi"), "2x30")],
                 [Expect(labels_of(datname="tmi"), 2)]),
            Case("none blocked", [(series("pg_activity_blocked", datname="tmi"), "0x30")], []),
        ],
    ))
    c = t["TmiPostgresSlowStatements"]
    add(Alert(
        "TmiPostgresSlowStatements", "postgres", "warning",
        f"queryid:pg_stat_statements_mean_seconds:rate10m > {num(c['mean_seconds'])}", "",
        "Statement " + lbl("queryid") + " in " + lbl("datname") + " takes "
        + val("humanizeDuration") + " per call",
        "Statement " + lbl("queryid") + " (user " + lbl("user") + ", database "
        + lbl("datname") + ") took " + val("humanizeDuration") + " per call on average over"
        " the last 10 minutes.",
        f"mean time per call above {humanize_duration(c['mean_seconds'])} over 10 minutes",
        cases=[
            Case("200 ms per call", [
                (series("pg_stat_statements_calls_total", queryid="42", datname="tmi",
                        user="tmi_user"), "0+10x60"),
                (series("pg_stat_statements_seconds_total", queryid="42", datname="tmi",
                        user="tmi_user"), "0+2x60")],
                [Expect(labels_of(queryid="42", datname="tmi", user="tmi_user"), 0.2)]),
            Case("5 ms per call", [
                (series("pg_stat_statements_calls_total", queryid="42", datname="tmi",
                        user="tmi_user"), "0+100x60"),
                (series("pg_stat_statements_seconds_total", queryid="42", datname="tmi",
                        user="tmi_user"), "0+0.5x60")], []),
        ],
    ))
    c = t["TmiPostgresDeadTuplesHigh"]
    table = {"schemaname": "public", "relname": "threats", "datname": "tmi"}
    add(Alert(
        "TmiPostgresDeadTuplesHigh", "postgres", "warning",
        f"pg_stat_user_tables_dead_ratio > {num(c['ratio'])}\n"
        f"and pg_stat_user_tables_n_dead_tup > {num(c['min_dead_rows'])}\n"
        f"and time() - pg_stat_user_tables_last_autovacuum > {num(c['no_vacuum_seconds'])}\n"
        f"and time() - pg_stat_user_tables_last_vacuum > {num(c['no_vacuum_seconds'])}", "",
        "Table " + lbl("datname") + "." + lbl("schemaname") + "." + lbl("relname") + " is "
        + val("humanizePercentage") + " dead rows and is not being vacuumed",
        val("humanizePercentage") + " of the rows of " + lbl("schemaname") + "."
        + lbl("relname") + " (database " + lbl("datname") + ") are dead, and neither"
        " autovacuum nor a manual VACUUM has processed the table for a while: autovacuum is"
        " off, starved or blocked.",
        f"dead ratio above {humanize_percentage(c['ratio'])}, more than"
        f" {humanize(c['min_dead_rows'])} dead rows, no vacuum for"
        f" {humanize_duration(c['no_vacuum_seconds'])}",
        cases=[
            Case("30 % dead, never vacuumed", [
                (series("pg_stat_user_tables_dead_ratio", **table), "0.3x130"),
                (series("pg_stat_user_tables_n_dead_tup", **table), "50000x130"),
                (series("pg_stat_user_tables_last_autovacuum", **table), "0x130"),
                (series("pg_stat_user_tables_last_vacuum", **table), "0x130")],
                [Expect(labels_of(**table), 0.3)], eval_minutes=120),
            Case("30 % dead but autovacuum keeps running", [
                (series("pg_stat_user_tables_dead_ratio", **table), "0.3x130"),
                (series("pg_stat_user_tables_n_dead_tup", **table), "50000x130"),
                (series("pg_stat_user_tables_last_autovacuum", **table), "0+60x130"),
                (series("pg_stat_user_tables_last_vacuum", **table), "0x130")],
                [], eval_minutes=120),
            Case("a small table", [
                (series("pg_stat_user_tables_dead_ratio", **table), "0.5x130"),
                (series("pg_stat_user_tables_n_dead_tup", **table), "50x130"),
                (series("pg_stat_user_tables_last_autovacuum", **table), "0x130"),
                (series("pg_stat_user_tables_last_vacuum", **table), "0x130")],
                [], eval_minutes=120),
        ],
    ))
    c = t["TmiPostgresDatabaseGrowth"]
    add(Alert(
        "TmiPostgresDatabaseGrowth", "postgres", "warning",
        f"datname:pg_database_size:growth_ratio_per_day > {num(c['ratio_per_day'])}\n"
        f"and pg_database_size_bytes > {num(c['min_size_bytes'])}", "",
        "Database " + lbl("datname") + " grows " + val("humanizePercentage") + " per day",
        "Database " + lbl("datname") + " grew at a rate of " + val("humanizePercentage")
        + " of its size per day over the last 6 hours; at that pace the disk fills early.",
        f"growth above {humanize_percentage(c['ratio_per_day'])} per day, size above"
        f" {humanize1024(c['min_size_bytes'])}B",
        cases=[
            # 2.5 GB growing 720 MB a day; chosen so that the ratio reads the same at the
            # evaluation time and one step earlier (rules may see the previous recording)
            Case("2.5 GB growing 720 MB a day", [
                (series("pg_database_size_bytes", datname="tmi"), "2500000000+500000x100")],
                [Expect(labels_of(datname="tmi"), 7.2e8 / (2.5e9 + 80 * 5e5))]),
            Case("2 GB growing 144 MB a day", [
                (series("pg_database_size_bytes", datname="tmi"), "2000000000+100000x100")], []),
            Case("a small database doubling", [
                (series("pg_database_size_bytes", datname="tmi"), "100000000+100000x100")], []),
        ],
    ))
    c = t["TmiPostgresReplicationLag"]
    replica = {"application_name": "standby1", "client_addr": "10.0.0.6", "state": "streaming"}
    add(Alert(
        "TmiPostgresReplicationLag", "postgres", "warning",
        f"pg_stat_replication_replay_lag_seconds > {num(c['seconds'])}\n"
        f"or (pg_replication_lag_seconds > {num(c['seconds'])}"
        " and pg_replication_replay_lag_bytes > 0)", "",
        "PostgreSQL replica lags " + val("humanizeDuration") + " behind",
        "A standby of " + lbl("instance") + " " + lbl("application_name") + " replays WAL "
        + val("humanizeDuration") + " behind the primary; reads from it are stale and a"
        " failover would lose recent writes.",
        f"replay lag above {humanize_duration(c['seconds'])}",
        cases=[
            Case("primary: a replica 45 s behind", [
                (series("pg_stat_replication_replay_lag_seconds", **replica), "45x30")],
                [Expect(labels_of(**replica), 45)]),
            Case("standby: 45 s behind with WAL waiting", [
                (series("pg_replication_lag_seconds"), "45x30"),
                (series("pg_replication_replay_lag_bytes"), "1000x30")],
                [Expect(labels_of(), 45)]),
            Case("standby of an idle primary", [
                (series("pg_replication_lag_seconds"), "600x30"),
                (series("pg_replication_replay_lag_bytes"), "0x30"),
                (series("pg_stat_replication_replay_lag_seconds", **replica), "0x30")], []),
        ],
    ))
    c = t["TmiPostgresReplicationSlotRetainingWal"]
    slot = {"slot_name": "standby1", "slot_type": "physical"}  # no database: physical
    add(Alert(
        "TmiPostgresReplicationSlotRetainingWal", "postgres", "warning",
        f"pg_replication_slots_retained_bytes > {num(c['bytes'])}", "",
        "Replication slot " + lbl("slot_name") + " holds " + val("humanize1024") + "B of WAL",
        "Slot " + lbl("slot_name") + " (" + lbl("slot_type") + ") on " + lbl("instance")
        + " keeps " + val("humanize1024") + "B of WAL on disk because its consumer has not"
        " confirmed it. An abandoned slot grows until the disk is full.",
        f"more than {humanize1024(c['bytes'])}B of WAL retained",
        cases=[
            Case("2 GiB retained", [
                (series("pg_replication_slots_retained_bytes", **slot), "2147483648x30")],
                [Expect(labels_of(**slot), 2147483648)]),
            Case("16 MiB retained", [
                (series("pg_replication_slots_retained_bytes", **slot), "16777216x30")], []),
        ],
    ))
    c = t["TmiPostgresWalArchiveFailing"]
    add(Alert(
        "TmiPostgresWalArchiveFailing", "postgres", "warning",
        f"increase(pg_stat_archiver_failed_count[10m]) >= {num(c['failures'])}\n"
        "and pg_stat_archiver_last_failed_time > pg_stat_archiver_last_archive_time", "",
        "WAL archiving fails on " + lbl("instance"),
        "archive_command failed " + val("humanize") + " times in the last 10 minutes and the"
        " latest attempt failed. WAL piles up in pg_wal and point-in-time recovery has a gap.",
        f"at least {num(c['failures'])} failure(s) in 10 minutes and the latest attempt failed",
        cases=[
            Case("failing", [
                (series("pg_stat_archiver_failed_count"), "0+1x30"),
                (series("pg_stat_archiver_last_failed_time"), "2000x30"),
                (series("pg_stat_archiver_last_archive_time"), "1000x30")],
                [Expect(labels_of(), 10)]),
            Case("failed, then recovered", [
                (series("pg_stat_archiver_failed_count"), "0+1x30"),
                (series("pg_stat_archiver_last_failed_time"), "2000x30"),
                (series("pg_stat_archiver_last_archive_time"), "3000x30")], []),
        ],
    ))
    c = t["TmiDbBackupTooOld"]
    path = {"path": "/var/backups/postgresql/tmi"}
    add(Alert(
        "TmiDbBackupTooOld", "postgres", "warning",
        f"tmi_db_backup_newest_age_seconds > {num(c['seconds'])}", "",
        "Newest backup in " + lbl("path") + " is " + val("humanizeDuration") + " old",
        "The newest file in " + lbl("path") + " was written " + val("humanizeDuration")
        + " ago: the backup job has stopped or fails before writing.",
        f"newest backup older than {humanize_duration(c['seconds'])}",
        cases=[
            Case("27 hours old", [
                (series("tmi_db_backup_newest_age_seconds", **path), "100000x40")],
                [Expect(labels_of(**path), 100000)]),
            Case("2 hours old", [
                (series("tmi_db_backup_newest_age_seconds", **path), "7200x40")], []),
        ],
    ))
    add(Alert(
        "TmiDbBackupMissing", "postgres", "warning", "tmi_db_backup_files < 1", "",
        "No backup file in " + lbl("path"),
        "tmi-db-exporter finds no file in " + lbl("path") + ": backups are written elsewhere,"
        " the path is wrong, or retention removed everything.",
        "no file matches a backup path",
        cases=[
            Case("no files", [(series("tmi_db_backup_files", **path), "0x40")],
                 [Expect(labels_of(**path), 0)]),
            Case("seven files", [(series("tmi_db_backup_files", **path), "7x40")], []),
        ],
    ))
    add(Alert(
        "TmiDbBackupEmpty", "postgres", "warning", "tmi_db_backup_newest_size_bytes < 1", "",
        "Newest backup in " + lbl("path") + " is empty",
        "The newest file in " + lbl("path") + " has 0 bytes: the last dump failed after"
        " creating its file.",
        "the newest backup file has 0 bytes",
        cases=[
            Case("0 bytes", [(series("tmi_db_backup_newest_size_bytes", **path), "0x40")],
                 [Expect(labels_of(**path), 0)]),
            Case("5 MB", [(series("tmi_db_backup_newest_size_bytes", **path), "5000000x40")],
                 []),
        ],
    ))
    add(Alert(
        "TmiPostgresMigrationDirty", "postgres", "critical", "pg_schema_migrations_dirty >= 1",
        "",
        "Schema migration of " + lbl("datname") + " is dirty",
        "golang-migrate marked the schema of database " + lbl("datname") + " dirty: a"
        " migration stopped half-way. TMI refuses to migrate further until it is fixed by hand.",
        "schema_migrations.dirty is true",
        cases=[
            Case("dirty", [(series("pg_schema_migrations_dirty", datname="tmi"), "1x40")],
                 [Expect(labels_of(datname="tmi"), 1)]),
            Case("clean", [(series("pg_schema_migrations_dirty", datname="tmi"), "0x40")], []),
        ],
    ))
    c = t["TmiPostgresConnectionsWithoutSsl"]
    add(Alert(
        "TmiPostgresConnectionsWithoutSsl", "postgres", "warning",
        "sum by (job, instance, datname, usename) (pg_stat_ssl_connections{ssl=\"false\"})"
        f" >= {num(c['connections'])}", "",
        val("humanize") + " connection(s) of " + lbl("usename") + " to " + lbl("datname")
        + " without TLS",
        "User " + lbl("usename") + " has " + val("humanize") + " connection(s) to database "
        + lbl("datname") + " in clear text. The guide asks for POSTGRES_SSL_MODE=require.",
        f"at least {num(c['connections'])} connection(s) without TLS",
        cases=[
            Case("three in clear text", [
                (series("pg_stat_ssl_connections", datname="tmi", usename="tmi_user",
                        ssl="false", tls_version=""), "3x40"),
                (series("pg_stat_ssl_connections", datname="tmi", usename="tmi_user",
                        ssl="true", tls_version="TLSv1.3"), "5x40")],
                [Expect(labels_of(datname="tmi", usename="tmi_user"), 3)]),
            Case("all encrypted", [
                (series("pg_stat_ssl_connections", datname="tmi", usename="tmi_user",
                        ssl="true", tls_version="TLSv1.3"), "5x40")], []),
        ],
    ))
    c = t["TmiPostgresXidWraparound"]
    add(Alert(
        "TmiPostgresXidWraparound", "postgres", "warning",
        f"pg_database_wraparound_ratio > {num(c['warning'])}", "",
        "Database " + lbl("datname") + " used " + val("humanizePercentage")
        + " of its transaction IDs",
        "The oldest unfrozen transaction ID of database " + lbl("datname") + " is "
        + val("humanizePercentage") + " of the way to wraparound. Freezing is not keeping up;"
        " at 100 % PostgreSQL stops accepting writes.",
        f"above {humanize_percentage(c['warning'])} of the way to wraparound (critical above"
        f" {humanize_percentage(c['critical'])})",
        escalation=("critical", f"pg_database_wraparound_ratio > {num(c['critical'])}"),
        cases=[
            Case("60 %", [(series("pg_database_wraparound_ratio", datname="tmi"), "0.6x40")],
                 [Expect(labels_of(datname="tmi"), 0.6, "warning")]),
            Case("80 %", [(series("pg_database_wraparound_ratio", datname="tmi"), "0.8x40")],
                 [Expect(labels_of(datname="tmi"), 0.8, "critical"),
                  Expect(labels_of(datname="tmi"), 0.8, "warning")]),
            Case("5 %", [(series("pg_database_wraparound_ratio", datname="tmi"), "0.05x40")],
                 []),
        ],
    ))
    c = t["TmiPostgresSequenceNearExhaustion"]
    seq = {"schemaname": "public", "sequencename": "threat_number_seq", "datname": "tmi"}
    add(Alert(
        "TmiPostgresSequenceNearExhaustion", "postgres", "warning",
        f"pg_sequence_used_ratio > {num(c['warning'])}", "",
        "Sequence " + lbl("schemaname") + "." + lbl("sequencename") + " used "
        + val("humanizePercentage") + " of its range",
        "Sequence " + lbl("schemaname") + "." + lbl("sequencename") + " in database "
        + lbl("datname") + " has used " + val("humanizePercentage") + " of its range; when it"
        " is exhausted, inserts that need a new value fail.",
        f"above {humanize_percentage(c['warning'])} of the range used (critical above"
        f" {humanize_percentage(c['critical'])})",
        escalation=("critical", f"pg_sequence_used_ratio > {num(c['critical'])}"),
        cases=[
            Case("85 %", [(series("pg_sequence_used_ratio", **seq), "0.85x40")],
                 [Expect(labels_of(**seq), 0.85, "warning")]),
            Case("97 %", [(series("pg_sequence_used_ratio", **seq), "0.97x40")],
                 [Expect(labels_of(**seq), 0.97, "critical"),
                  Expect(labels_of(**seq), 0.97, "warning")]),
            Case("1 %", [(series("pg_sequence_used_ratio", **seq), "0.01x40")], []),
        ],
    ))
    add(Alert(
        "TmiPostgresPendingRestart", "postgres", "info", "pg_settings_pending_restart >= 1", "",
        val("humanize") + " PostgreSQL setting(s) wait for a restart",
        val("humanize") + " changed setting(s) on the server behind " + lbl("instance")
        + " only take effect after a restart; until then the running server differs from its"
        " configuration files.",
        "at least one setting waits for a restart",
        cases=[
            Case("two pending", [(series("pg_settings_pending_restart"), "2x90")],
                 [Expect(labels_of(), 2)]),
            Case("none pending", [(series("pg_settings_pending_restart"), "0x90")], []),
        ],
    ))

    # --- Redis ----------------------------------------------------------------------------
    add(Alert(
        "TmiRedisDown", "redis", "critical", "redis_up < 1", "",
        "Redis is unreachable from " + lbl("instance"),
        "tmi-db-exporter on " + lbl("instance") + " cannot reach or authenticate to Redis"
        " (redis_up is 0). TMI sessions, caches and rate limits are unavailable.",
        "redis_up is 0",
        cases=[
            Case("down", [(series("redis_up"), "0x30")], [Expect(labels_of(), 0)]),
            Case("up", [(series("redis_up"), "1x30")], []),
        ],
    ))
    c = t["TmiRedisMemoryNearMax"]
    add(Alert(
        "TmiRedisMemoryNearMax", "redis", "warning",
        f"instance:redis_memory_used:ratio > {num(c['ratio'])}", "",
        "Redis uses " + val("humanizePercentage") + " of maxmemory",
        "Redis behind " + lbl("instance") + " uses " + val("humanizePercentage")
        + " of its maxmemory. At the limit it evicts keys (sessions too) or, with"
        " noeviction, refuses writes.",
        f"above {humanize_percentage(c['ratio'])} of maxmemory (never without a maxmemory)",
        cases=[
            Case("95 % of 1 GB", [
                (series("redis_memory_used_bytes"), "950000000x40"),
                (series("redis_memory_max_bytes"), "1000000000x40")],
                [Expect(labels_of(), 0.95)]),
            Case("50 % of 1 GB", [
                (series("redis_memory_used_bytes"), "500000000x40"),
                (series("redis_memory_max_bytes"), "1000000000x40")], []),
            Case("no maxmemory set", [
                (series("redis_memory_used_bytes"), "950000000x40"),
                (series("redis_memory_max_bytes"), "0x40")], []),
        ],
    ))
    c = t["TmiRedisEvictions"]
    add(Alert(
        "TmiRedisEvictions", "redis", "warning",
        f"increase(redis_evicted_keys_total[10m]) >= {num(c['keys'])}", "",
        "Redis evicted " + val("humanize") + " keys in 10 minutes",
        "Redis behind " + lbl("instance") + " evicted " + val("humanize") + " keys in the last"
        " 10 minutes because it reached maxmemory. Evicted sessions log TMI users out.",
        f"at least {num(c['keys'])} key(s) evicted in 10 minutes",
        cases=[
            Case("one eviction a minute", [(series("redis_evicted_keys_total"), "0+1x40")],
                 [Expect(labels_of(), 10)]),
            Case("no evictions", [(series("redis_evicted_keys_total"), "12x40")], []),
        ],
    ))
    c = t["TmiRedisLowHitRate"]
    add(Alert(
        "TmiRedisLowHitRate", "redis", "warning",
        f"instance:redis_keyspace_hits:ratio_rate5m < {num(c['ratio'])}\n"
        f"and instance:redis_keyspace_lookups:rate5m > {num(c['min_lookups_per_second'])}", "",
        "Redis hit rate is " + val("humanizePercentage"),
        "Only " + val("humanizePercentage") + " of key lookups on " + lbl("instance") + " found"
        " their key over the last 5 minutes: TMI reads from PostgreSQL what it should find in"
        " its cache.",
        f"hit rate below {humanize_percentage(c['ratio'])} with more than"
        f" {num(c['min_lookups_per_second'])} lookup(s) per second",
        cases=[
            Case("70 % hits", [
                (series("redis_keyspace_hits_total"), "0+70x40"),
                (series("redis_keyspace_misses_total"), "0+30x40")],
                [Expect(labels_of(), 0.7)]),
            Case("90 % hits", [
                (series("redis_keyspace_hits_total"), "0+90x40"),
                (series("redis_keyspace_misses_total"), "0+10x40")], []),
            Case("50 % hits, but hardly any lookups", [
                (series("redis_keyspace_hits_total"), "0+5x40"),
                (series("redis_keyspace_misses_total"), "0+5x40")], []),
        ],
    ))
    c = t["TmiRedisRejectedConnections"]
    add(Alert(
        "TmiRedisRejectedConnections", "redis", "warning",
        f"increase(redis_rejected_connections_total[5m]) >= {num(c['connections'])}", "",
        "Redis rejected " + val("humanize") + " connections (maxclients)",
        "Redis behind " + lbl("instance") + " refused " + val("humanize") + " connections in"
        " the last 5 minutes because it reached maxclients; TMI requests fail.",
        f"at least {num(c['connections'])} connection(s) rejected in 5 minutes",
        cases=[
            Case("rejecting", [(series("redis_rejected_connections_total"), "0+1x30")],
                 [Expect(labels_of(), 5)]),
            Case("none rejected", [(series("redis_rejected_connections_total"), "4x30")], []),
        ],
    ))
    c = t["TmiRedisBlockedClients"]
    add(Alert(
        "TmiRedisBlockedClients", "redis", "warning",
        f"redis_blocked_clients >= {num(c['clients'])}", "",
        val("humanize") + " Redis client(s) blocked",
        val("humanize") + " client(s) of Redis behind " + lbl("instance") + " have been waiting"
        " in a blocking command (BLPOP, WAIT, ...) for a while.",
        f"at least {num(c['clients'])} blocked client(s)",
        cases=[
            Case("three blocked", [(series("redis_blocked_clients"), "3x40")],
                 [Expect(labels_of(), 3)]),
            Case("none blocked", [(series("redis_blocked_clients"), "0x40")], []),
        ],
    ))
    add(Alert(
        "TmiRedisLastBgsaveFailed", "redis", "critical", "redis_rdb_last_bgsave_status < 1", "",
        "Redis could not write its last RDB snapshot",
        "The last background save of Redis behind " + lbl("instance") + " failed. With"
        " stop-writes-on-bgsave-error (the default) Redis now refuses every write.",
        "the last BGSAVE failed",
        cases=[
            Case("failed", [(series("redis_rdb_last_bgsave_status"), "0x20")],
                 [Expect(labels_of(), 0)]),
            Case("ok", [(series("redis_rdb_last_bgsave_status"), "1x20")], []),
        ],
    ))
    c = t["TmiRedisNoRecentSave"]
    add(Alert(
        "TmiRedisNoRecentSave", "redis", "warning",
        f"time() - redis_rdb_last_save_timestamp_seconds > {num(c['seconds'])}\n"
        "and redis_rdb_changes_since_last_save >= 1", "",
        "Redis has not saved a snapshot for " + val("humanizeDuration"),
        "Redis behind " + lbl("instance") + " last wrote an RDB snapshot "
        + val("humanizeDuration") + " ago and has unsaved changes; a restart now loses them.",
        f"no snapshot for {humanize_duration(c['seconds'])} while there are changes",
        cases=[
            Case("never saved since start", [
                (series("redis_rdb_last_save_timestamp_seconds"), "0x110"),
                (series("redis_rdb_changes_since_last_save"), "500x110")],
                [Expect(labels_of(), 6000)], eval_minutes=100),
            Case("saving every minute", [
                (series("redis_rdb_last_save_timestamp_seconds"), "0+60x110"),
                (series("redis_rdb_changes_since_last_save"), "500x110")], [], eval_minutes=100),
            Case("old snapshot but nothing changed", [
                (series("redis_rdb_last_save_timestamp_seconds"), "0x110"),
                (series("redis_rdb_changes_since_last_save"), "0x110")], [], eval_minutes=100),
        ],
    ))
    add(Alert(
        "TmiRedisAofWriteFailing", "redis", "critical", "redis_aof_last_write_status < 1", "",
        "Redis cannot write its append-only file",
        "The last write to the AOF of Redis behind " + lbl("instance") + " failed (disk full or"
        " read-only?). Redis refuses writes until it can write the AOF again.",
        "the last AOF write failed",
        cases=[
            Case("failed", [(series("redis_aof_last_write_status"), "0x20")],
                 [Expect(labels_of(), 0)]),
            Case("ok", [(series("redis_aof_last_write_status"), "1x20")], []),
        ],
    ))
    c = t["TmiRedisSlowlogGrowing"]
    add(Alert(
        "TmiRedisSlowlogGrowing", "redis", "warning",
        f"increase(redis_slowlog_entries_total[10m]) >= {num(c['entries'])}", "",
        "Redis logged " + val("humanize") + " slow commands in 10 minutes",
        "Redis behind " + lbl("instance") + " wrote " + val("humanize") + " slowlog entries in"
        " the last 10 minutes; every one of them blocked all other clients while it ran.",
        f"at least {num(c['entries'])} slowlog entries in 10 minutes",
        cases=[
            Case("two per minute", [(series("redis_slowlog_entries_total"), "0+2x40")],
                 [Expect(labels_of(), 20)]),
            Case("one every two minutes", [(series("redis_slowlog_entries_total"), "0+0.5x40")],
                 []),
        ],
    ))
    c = t["TmiRedisKeysWithoutTtl"]
    add(Alert(
        "TmiRedisKeysWithoutTtl", "redis", "warning",
        f'redis_key_group_keys_without_ttl{{key_group=~"{c["key_groups"]}"}}'
        f" >= {num(c['keys'])}", "",
        val("humanize") + " " + lbl("key_group") + " keys in Redis have no TTL",
        "The key census found " + val("humanize") + " keys of group " + lbl("key_group")
        + " in " + lbl("db") + " without an expiry. Every TMI key pattern carries a TTL; these"
        " keys never go away on their own (for sessions: a leak of logged-in sessions).",
        f"at least {num(c['keys'])} key(s) without TTL in groups {c['key_groups']}",
        cases=[
            Case("15 sessions without TTL", [
                (series("redis_key_group_keys_without_ttl", db="db0", key_group="session"),
                 "15x60")],
                [Expect(labels_of(db="db0", key_group="session"), 15)]),
            Case("only unclassified keys without TTL", [
                (series("redis_key_group_keys_without_ttl", db="db0", key_group="session"),
                 "0x60"),
                (series("redis_key_group_keys_without_ttl", db="db0", key_group="unclassified"),
                 "100x60")], []),
        ],
    ))
    add(Alert(
        "TmiRedisDangerousCommandsEnabled", "redis", "warning",
        "redis_security_command_renamed < 1", "",
        "Redis command " + lbl("command") + " is callable by its own name",
        "Anyone who can authenticate to Redis behind " + lbl("instance") + " can run "
        + lbl("command") + ". The guide renames FLUSHDB, FLUSHALL, CONFIG and KEYS.",
        "a dangerous command is not renamed",
        cases=[
            Case("FLUSHALL not renamed", [
                (series("redis_security_command_renamed", command="FLUSHALL"), "0x40")],
                [Expect(labels_of(command="FLUSHALL"), 0)]),
            Case("FLUSHALL renamed", [
                (series("redis_security_command_renamed", command="FLUSHALL"), "1x40")], []),
        ],
    ))
    add(Alert(
        "TmiRedisAuthNotRequired", "redis", "critical", "redis_security_auth_required < 1", "",
        "Redis accepts commands without a password",
        "A connection to Redis behind " + lbl("instance") + " without credentials can run"
        " commands: anyone who reaches the port can read TMI sessions and auth tokens.",
        "a PING without credentials succeeds",
        cases=[
            Case("open", [(series("redis_security_auth_required"), "0x40")],
                 [Expect(labels_of(), 0)]),
            Case("password required", [(series("redis_security_auth_required"), "1x40")], []),
        ],
    ))
    return out


# --- rendering ----------------------------------------------------------------------------


def runbook_anchor(name: str) -> str:
    return name.lower()


def annotations(t: dict[str, Any], alert: Alert) -> dict[str, str]:
    settings = t["settings"]
    return {
        "summary": alert.summary,
        "description": alert.description,
        "runbook_url": f"{settings['runbook_url']}#{runbook_anchor(alert.name)}",
        "dashboard": f"{settings['grafana_url']}/d/{DASHBOARD_OF_GROUP[alert.group]}",
    }


def rule_entries(t: dict[str, Any], alert: Alert) -> list[dict[str, Any]]:
    variants = [(alert.severity, alert.expr)]
    if alert.escalation:
        variants.insert(0, alert.escalation)
    return [
        {
            "alert": alert.name,
            "expr": expr,
            "for": alert.for_,
            "labels": {"severity": severity},
            "annotations": annotations(t, alert),
        }
        for severity, expr in variants
    ]


def rule_files(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> rule file content."""
    files = {
        "recording.rules.yml": {"groups": [{
            "name": "tmi-db-recording",
            "rules": [{"record": r.record, "expr": r.expr} for r in recording_rules()],
        }]},
    }
    all_alerts = alerts(t)
    for group in GROUPS[1:]:
        rules: list[dict[str, Any]] = []
        for alert in all_alerts:
            if alert.group == group:
                rules += rule_entries(t, alert)
        files[f"{group}.rules.yml"] = {"groups": [{"name": f"tmi-db-{group}", "rules": rules}]}
    return files


def _expected(t: dict[str, Any], alert: Alert, expect: Expect) -> dict[str, Any]:
    labels = {**expect.labels, "severity": expect.severity or alert.severity}
    notes = annotations(t, alert)
    notes["summary"] = render(alert.summary, expect.labels, expect.value)
    notes["description"] = render(alert.description, expect.labels, expect.value)
    return {"exp_labels": labels, "exp_annotations": notes}


def recording_tests() -> list[dict[str, Any]]:
    """promql_expr_test cases for the recording rules, the guards against 0 included."""

    def case(name: str, inputs: list[tuple[str, str]], expr: str,
             samples: list[tuple[str, float]]) -> dict[str, Any]:
        return {
            "name": name,
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in inputs],
            "promql_expr_test": [{
                "expr": expr,
                "eval_time": "20m",
                "exp_samples": [{"labels": lbls, "value": value} for lbls, value in samples],
            }],
        }

    def named(metric: str, **labels: str) -> str:
        return series(metric, **labels)

    return [
        case("redis memory ratio", [
            (series("redis_memory_used_bytes"), "250x30"),
            (series("redis_memory_max_bytes"), "1000x30")],
            "instance:redis_memory_used:ratio",
            [(named("instance:redis_memory_used:ratio"), 0.25)]),
        case("redis memory ratio is absent without maxmemory", [
            (series("redis_memory_used_bytes"), "250x30"),
            (series("redis_memory_max_bytes"), "0x30")],
            "instance:redis_memory_used:ratio", []),
        case("redis hit ratio and lookups", [
            (series("redis_keyspace_hits_total"), "0+75x30"),
            (series("redis_keyspace_misses_total"), "0+25x30")],
            "instance:redis_keyspace_hits:ratio_rate5m",
            [(named("instance:redis_keyspace_hits:ratio_rate5m"), 0.75)]),
        case("redis hit ratio is absent without lookups", [
            (series("redis_keyspace_hits_total"), "10x30"),
            (series("redis_keyspace_misses_total"), "5x30")],
            "instance:redis_keyspace_hits:ratio_rate5m", []),
        case("redis lookups per second", [
            (series("redis_keyspace_hits_total"), "0+90x30"),
            (series("redis_keyspace_misses_total"), "0+30x30")],
            "instance:redis_keyspace_lookups:rate5m",
            [(named("instance:redis_keyspace_lookups:rate5m"), 2)]),
        case("connection usage", [
            (series("pg_connections_used"), "25x30"),
            (series("pg_connections_available"), "100x30")],
            "instance:pg_connections_usage:ratio",
            [(named("instance:pg_connections_usage:ratio"), 0.25)]),
        case("buffer cache hit ratio", [
            (series("pg_stat_database_blks_hit", datname="tmi"), "0+99x30"),
            (series("pg_stat_database_blks_read", datname="tmi"), "0+1x30")],
            "datname:pg_blks_hit:ratio_rate5m",
            [(named("datname:pg_blks_hit:ratio_rate5m", datname="tmi"), 0.99)]),
        case("dead tuple ratio of a database", [
            (series("pg_stat_user_tables_n_dead_tup", datname="tmi", schemaname="public",
                    relname="threats"), "300x30"),
            (series("pg_stat_user_tables_n_live_tup", datname="tmi", schemaname="public",
                    relname="threats"), "2700x30"),
            (series("pg_stat_user_tables_n_dead_tup", datname="tmi", schemaname="public",
                    relname="users"), "0x30"),
            (series("pg_stat_user_tables_n_live_tup", datname="tmi", schemaname="public",
                    relname="users"), "1000x30")],
            "datname:pg_dead_tuples:ratio",
            [(named("datname:pg_dead_tuples:ratio", datname="tmi"), 0.075)]),
        case("database growth per day", [
            (series("pg_database_size_bytes", datname="tmi"), "1000000+1000x30")],
            "datname:pg_database_size:growth_ratio_per_day",
            [(named("datname:pg_database_size:growth_ratio_per_day", datname="tmi"),
              1000 / 60 * 86400 / 1020000)]),
        case("mean statement time", [
            (series("pg_stat_statements_calls_total", queryid="7", datname="tmi",
                    user="tmi_user"), "0+240x30"),
            (series("pg_stat_statements_seconds_total", queryid="7", datname="tmi",
                    user="tmi_user"), "0+60x30")],
            "queryid:pg_stat_statements_mean_seconds:rate10m",
            [(named("queryid:pg_stat_statements_mean_seconds:rate10m", queryid="7",
                    datname="tmi", user="tmi_user"), 0.25)]),
        case("mean statement time is absent for statements that did not run", [
            (series("pg_stat_statements_calls_total", queryid="7", datname="tmi",
                    user="tmi_user"), "20x30"),
            (series("pg_stat_statements_seconds_total", queryid="7", datname="tmi",
                    user="tmi_user"), "1x30")],
            "queryid:pg_stat_statements_mean_seconds:rate10m", []),
    ]


def test_files(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name (under tests/) -> promtool unit test file."""
    rule_paths = [f"../{name}" for name in rule_files(t)]
    all_alerts = alerts(t)
    files = {"recording.test.yml": {
        "rule_files": rule_paths, "evaluation_interval": "1m", "tests": recording_tests()}}
    for group in GROUPS[1:]:
        tests = []
        for alert in (a for a in all_alerts if a.group == group):
            for case in alert.cases:
                eval_minutes = case.eval_minutes or minutes(alert.for_) + 20
                tests.append({
                    "name": f"{alert.name}: {case.title}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in case.series],
                    "alert_rule_test": [{
                        "eval_time": f"{eval_minutes}m",
                        "alertname": alert.name,
                        "exp_alerts": [_expected(t, alert, e) for e in case.fires],
                    }],
                })
        files[f"{group}.test.yml"] = {
            "rule_files": rule_paths, "evaluation_interval": "1m", "tests": tests}
    return files


def runbook_table(t: dict[str, Any]) -> str:
    lines = ["| alert | severity | fires when (default) | for |", "|---|---|---|---|"]
    for alert in alerts(t):
        severity = alert.severity
        if alert.escalation:
            severity = f"{alert.severity}, {alert.escalation[0]}"
        condition = alert.condition.replace("|", "\\|")  # a regex must not split the cell
        lines.append(f"| [`{alert.name}`](#{runbook_anchor(alert.name)}) | {severity} |"
                     f" {condition} | {alert.for_} |")
    return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = ("# Generated by `python -m alerts.build` from alerts/thresholds.toml; edit that file,"
          " not this one.\n")


def dump(doc: dict[str, Any]) -> str:
    return HEADER + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000,
                              allow_unicode=True)


def refresh_runbook(text: str, t: dict[str, Any]) -> str:
    pattern = re.compile(r"(<!-- thresholds:begin -->\n).*?(<!-- thresholds:end -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError("RUNBOOK.md has no <!-- thresholds:begin/end --> section")
    return pattern.sub(lambda m: m.group(1) + runbook_table(t) + "\n" + m.group(2), text)


def outputs(t: dict[str, Any] | None = None) -> dict[Path, str]:
    """Every generated file (path -> content) under the current thresholds."""
    t = t or load_thresholds()
    files = {HERE / name: dump(doc) for name, doc in rule_files(t).items()}
    files |= {TESTS_DIR / name: dump(doc) for name, doc in test_files(t).items()}
    files[RUNBOOK] = refresh_runbook(RUNBOOK.read_text(), t)
    from dashboards.build import dashboards  # dashboards import this module

    for name, doc in dashboards(t).items():
        files[ROOT / "dashboards" / name] = doc
    return files


def stale(files: Iterable[tuple[Path, str]]) -> list[Path]:
    return [p for p, text in files if not p.exists() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report out-of-date files")
    args = parser.parse_args(argv)
    files = outputs()
    out_of_date = stale(files.items())
    if args.check:
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if out_of_date else 0
    for path in out_of_date:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
