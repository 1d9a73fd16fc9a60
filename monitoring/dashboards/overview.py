"""TMI / Database overview: is TMI's database layer healthy? One screen over PostgreSQL, Redis and
the exporter, whose stats link to the detailed dashboards; one function per row."""

from __future__ import annotations

from typing import Any

from monitoring.dashboards.board import LINKS, Board, panel_link, variables
from monitoring.dashboards.panels import (
    SEL,
    UP_DOWN,
    increase,
    metric_selector,
    pct,
    rate,
    stat,
    steps,
    table,
    timeseries,
)
from monitoring.thresholds import Thresholds, humanize_duration, num

PG_LINK = panel_link("postgres", "PostgreSQL dashboard")
REDIS_LINK = panel_link("redis", "Redis dashboard")


def overview_dashboard(thresholds: Thresholds) -> dict[str, Any]:
    board = Board("overview", "TMI / Database overview",
                  "Is TMI's database layer healthy? One screen over PostgreSQL, Redis and the"
                  " exporter, with links to the detailed dashboards.",
                  variables("tmi_db_exporter_build_info"), [LINKS["postgres"], LINKS["redis"]])
    for row in (_health_row, _postgres_row, _redis_row, _exporter_row):
        row(board, thresholds)
    return board.json()


def _health_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Health")
    board.add(stat(
        "Exporter scraped", "Whether Prometheus can scrape tmi-db-exporter. Down: every other"
        " panel is stale. Alert TmiDbExporterDown below 1.",
        'up{job="$job", instance=~"$instance"}', "none", thresholds=steps("red", (1, "green")),
        mappings=UP_DOWN, graph=False), 4, 4)
    board.add(stat(
        "PostgreSQL", "Whether the exporter can connect to PostgreSQL and query it. Alert"
        " TmiPostgresDown below 1.",
        metric_selector("pg_up"), "none", thresholds=steps("red", (1, "green")),
        mappings=UP_DOWN, graph=False, links=PG_LINK), 4, 4)
    board.add(stat(
        "Redis", "Whether the exporter can reach and authenticate to Redis. Alert TmiRedisDown"
        " below 1.",
        metric_selector("redis_up"), "none", thresholds=steps("red", (1, "green")),
        mappings=UP_DOWN, graph=False, links=REDIS_LINK), 4, 4)
    board.add(stat(
        "TMI alerts firing", "Alerts of the TMI database rules firing now, by severity. The"
        " alert list in Grafana or Alertmanager names them; alerts/RUNBOOK.md says what to do.",
        [('count by (severity) (ALERTS{alertstate="firing", alertname=~"Tmi.*"})'
          ' or on () vector(0)', "{{severity}}")], "short",
        thresholds=steps("green", (1, "red")), graph=False), 4, 4)
    board.add(stat(
        "Exporter version", "tmi-db-exporter's version; compare with the release notes when a"
        " metric looks new or missing.",
        [(metric_selector("tmi_db_exporter_build_info"), "{{version}}")], "none",
        text_mode="name", graph=False), 4, 4)
    board.add(stat(
        "Scrape duration", "How long Prometheus' last scrape of the exporter took. Close to the"
        " scrape timeout: raise the timeout or look at the slowest collectors below.",
        'scrape_duration_seconds{job="$job", instance=~"$instance"}', "s"), 4, 4)


def _postgres_row(board: Board, thresholds: Thresholds) -> None:
    conn = thresholds["TmiPostgresConnectionsNearMax"]
    slow = thresholds["TmiPostgresSlowStatements"]
    dead = thresholds["TmiPostgresDeadTuplesHigh"]
    wrap = thresholds["TmiPostgresXidWraparound"]
    backup = thresholds["TmiDbBackupTooOld"]
    board.row("PostgreSQL")
    board.add(stat(
        "Connection usage", "Share of the connection slots in use. Alert"
        f" TmiPostgresConnectionsNearMax: warning above {pct(conn['warning'])}, critical above"
        f" {pct(conn['critical'])}.",
        metric_selector("instance:pg_connections_usage:ratio"), "percentunit",
        thresholds=steps("green", (conn["warning"], "orange"), (conn["critical"], "red")),
        decimals=1, links=PG_LINK), 4, 4)
    board.add(stat(
        "Slowest statement (10 min)", "Mean time per call of the slowest statement over the"
        " last 10 minutes. Alert TmiPostgresSlowStatements above"
        f" {humanize_duration(slow['mean_seconds'])}.",
        f"max(queryid:pg_stat_statements_mean_seconds:rate10m{{{SEL}}})", "s",
        thresholds=steps("green", (slow["mean_seconds"], "red")), links=PG_LINK), 4, 4)
    board.add(stat(
        "Worst dead-row ratio", "Highest share of dead rows of any table. Alert"
        f" TmiPostgresDeadTuplesHigh above {pct(dead['ratio'])} (with enough dead rows and no"
        " vacuum).",
        f"max({metric_selector('pg_stat_user_tables_dead_ratio')})", "percentunit",
        thresholds=steps("green", (dead["ratio"], "red")), decimals=1, links=PG_LINK), 4, 4)
    board.add(stat(
        "Transaction ID wraparound", "Highest share of the XID range used by any database."
        f" Alert TmiPostgresXidWraparound: warning above {pct(wrap['warning'])}, critical above"
        f" {pct(wrap['critical'])}.",
        f"max({metric_selector('pg_database_wraparound_ratio')})", "percentunit",
        thresholds=steps("green", (wrap["warning"], "orange"), (wrap["critical"], "red")),
        decimals=1, links=PG_LINK), 4, 4)
    board.add(stat(
        "Newest backup age", "Age of the newest backup file (oldest among the backup paths)."
        f" Alert TmiDbBackupTooOld above {humanize_duration(backup['seconds'])}.",
        f"max({metric_selector('tmi_db_backup_newest_age_seconds')})", "s",
        thresholds=steps("green", (backup["seconds"], "red")), links=PG_LINK), 4, 4)
    board.add(stat(
        "Transactions per second", "Commits and rollbacks per second, all databases. Zero while"
        " TMI is in use means TMI cannot reach PostgreSQL.",
        f"sum({rate(metric_selector('pg_stat_database_xact_commit'))}"
        f" + {rate(metric_selector('pg_stat_database_xact_rollback'))})", "ops",
        links=PG_LINK), 4, 4)


def _redis_row(board: Board, thresholds: Thresholds) -> None:
    memory = thresholds["TmiRedisMemoryNearMax"]
    hit = thresholds["TmiRedisLowHitRate"]
    no_ttl = thresholds["TmiRedisKeysWithoutTtl"]
    ttl_groups = f'key_group=~"{no_ttl["key_groups"]}"'
    board.row("Redis")
    board.add(stat(
        "Memory of maxmemory", "Used memory as a share of maxmemory; empty when no maxmemory is"
        f" set. Alert TmiRedisMemoryNearMax above {pct(memory['ratio'])}.",
        metric_selector("instance:redis_memory_used:ratio"), "percentunit",
        thresholds=steps("green", (memory["ratio"], "red")), decimals=1, links=REDIS_LINK),
        4, 4)
    board.add(stat(
        "Hit rate (5 min)", "Key lookups that found their key. Alert TmiRedisLowHitRate below"
        f" {pct(hit['ratio'])}.",
        metric_selector("instance:redis_keyspace_hits:ratio_rate5m"), "percentunit",
        thresholds=steps("red", (hit["ratio"], "green")), decimals=1, links=REDIS_LINK), 4, 4)
    board.add(stat(
        "Keys without TTL", f"Keys of the TMI groups ({no_ttl['key_groups']}) without an"
        f" expiry. Alert TmiRedisKeysWithoutTtl at {num(no_ttl['keys'])} or more.",
        f"sum({metric_selector('redis_key_group_keys_without_ttl', ttl_groups)})", "short",
        thresholds=steps("green", (no_ttl["keys"], "red")), links=REDIS_LINK), 4, 4)
    board.add(stat(
        "Commands per second", "Commands Redis processes per second; a sudden drop while TMI is"
        " in use means TMI lost its Redis connection.",
        rate(metric_selector("redis_commands_processed_total")), "ops", links=REDIS_LINK), 4, 4)
    board.add(stat(
        "Connected clients", "Client connections to Redis; a steady climb is a client that"
        " leaks connections (see CLIENT LIST).",
        metric_selector("redis_connected_clients"), "short", links=REDIS_LINK), 4, 4)
    board.add(stat(
        "Memory used", "Memory allocated by Redis; the Redis dashboard shows which key group"
        " holds it.",
        metric_selector("redis_memory_used_bytes"), "bytes", links=REDIS_LINK), 4, 4)


def _exporter_row(board: Board, thresholds: Thresholds) -> None:
    failing = thresholds["TmiDbCollectorFailing"]
    errors = metric_selector("tmi_db_exporter_collector_errors_total")
    board.row("Exporter")
    board.add(table(
        "Collectors", "Each collector of the exporter: how long its last run took, how old the"
        " served result is, its series and its failures in the last hour. A collector with"
        " failures: read the exporter log.",
        [(metric_selector("tmi_db_exporter_collector_duration_seconds"), ""),
         (metric_selector("tmi_db_exporter_collector_age_seconds"), ""),
         (metric_selector("tmi_db_exporter_collector_series"), ""),
         (increase(errors, "1h"), "")], "s",
        columns={"Value #A": "last run", "Value #B": "result age", "Value #C": "series",
                 "Value #D": "failures (1 h)"},
        units={"series": "short", "failures (1 h)": "short"}), 12, 10)
    board.add(timeseries(
        "Collector failures (10 min)", "Failed runs per collector in the last 10 minutes. Alert"
        f" TmiDbCollectorFailing at {num(failing['errors'])} or more in every 10 minutes for a"
        " while.",
        [(increase(errors, "10m"), "{{collector}}")], "short",
        thresholds=steps("green", (failing["errors"], "red"))), 12, 5)
    board.add(timeseries(
        "Collector run time, slowest 10", "How long each collector's last run took; near the"
        " scrape timeout, results arrive late.",
        [(f"topk(10, {metric_selector('tmi_db_exporter_collector_duration_seconds')})",
          "{{collector}}")], "s"), 12, 5)
    board.add(timeseries(
        "Late collectors per second", "Scrapes that served a collector's previous result"
        " because it was not done in time.",
        [(rate(metric_selector("tmi_db_exporter_collector_deadline_misses_total")),
          "{{collector}}")], "ops"), 12, 6)
    board.add(table(
        "Skipped queries", "Collectors that cannot run on this server and why (for example a"
        " missing pg_stat_statements extension). Empty when everything can run.",
        metric_selector("tmi_db_exporter_query_skipped"), "none", hide=("Value",)), 12, 6)
