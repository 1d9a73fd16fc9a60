"""Recording rules (shared by alerts and dashboards) and their promtool expression tests."""

from __future__ import annotations

from typing import Any

from monitoring.rules.model import Input, Recording, series

BY_DB = "job, instance, datname"


def recording_rules() -> list[Recording]:
    return [*_postgres_recordings(), *_redis_recordings()]


def _postgres_recordings() -> list[Recording]:
    return [
        Recording(
            record="instance:pg_connections_usage:ratio",
            expr="pg_connections_used / (pg_connections_available > 0)",
            meaning="Client connections as a share of the slots ordinary roles may use (0-1).",
        ),
        Recording(
            record="datname:pg_blks_hit:ratio_rate5m",
            expr=f"sum by ({BY_DB}) (rate(pg_stat_database_blks_hit[5m]))\n"
            f"/\n(sum by ({BY_DB}) (rate(pg_stat_database_blks_hit[5m])"
            " + rate(pg_stat_database_blks_read[5m])) > 0)",
            meaning="Share of block reads served from shared buffers over 5 minutes (0-1).",
        ),
        Recording(
            record="datname:pg_dead_tuples:ratio",
            expr=f"sum by ({BY_DB}) (pg_stat_user_tables_n_dead_tup)\n"
            f"/\n(sum by ({BY_DB}) (pg_stat_user_tables_n_dead_tup"
            " + pg_stat_user_tables_n_live_tup) > 0)",
            meaning="Dead rows as a share of all rows of the database's tables (0-1).",
        ),
        Recording(
            record="datname:pg_database_size:growth_ratio_per_day",
            expr="deriv(pg_database_size_bytes[6h]) * 86400 / (pg_database_size_bytes > 0)",
            meaning="Growth per day (6-hour linear trend) as a share of the current size.",
        ),
        Recording(
            record="queryid:pg_stat_statements_mean_seconds:rate10m",
            expr="rate(pg_stat_statements_seconds_total[10m])\n"
            "/\n(rate(pg_stat_statements_calls_total[10m]) > 0)",
            meaning="Mean execution time per call of each top statement over the last"
            " 10 minutes; absent for statements that did not run.",
        ),
    ]


def _redis_recordings() -> list[Recording]:
    return [
        Recording(
            record="instance:redis_keyspace_hits:ratio_rate5m",
            expr="sum by (job, instance) (rate(redis_keyspace_hits_total[5m]))\n"
            "/\n(sum by (job, instance) (rate(redis_keyspace_hits_total[5m])"
            " + rate(redis_keyspace_misses_total[5m])) > 0)",
            meaning="Key lookups that found their key over 5 minutes (0-1); absent without"
            " lookups.",
        ),
        Recording(
            record="instance:redis_keyspace_lookups:rate5m",
            expr="sum by (job, instance) (rate(redis_keyspace_hits_total[5m])"
            " + rate(redis_keyspace_misses_total[5m]))",
            meaning="Key lookups per second over 5 minutes.",
        ),
        Recording(
            record="instance:redis_memory_used:ratio",
            expr="redis_memory_used_bytes / (redis_memory_max_bytes > 0)",
            meaning="Memory used as a share of maxmemory (0-1); absent when maxmemory is 0 (no"
            " limit).",
        ),
    ]


# --- promtool tests -----------------------------------------------------------------------


def recording_tests() -> list[dict[str, Any]]:
    """promql_expr_test cases for the recording rules, the guards against 0 included."""
    return [*_redis_tests(), *_postgres_tests()]


def _expr_test(name: str, inputs: list[Input], expr: str,
               samples: list[tuple[str, float]]) -> dict[str, Any]:
    """A test that feeds `inputs` and expects `samples` (series, value) of `expr` at 20m."""
    return {
        "name": name,
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in inputs],
        "promql_expr_test": [{
            "expr": expr,
            "eval_time": "20m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }],
    }


def _redis_tests() -> list[dict[str, Any]]:
    used, limit = series("redis_memory_used_bytes"), series("redis_memory_max_bytes")
    hits, misses = series("redis_keyspace_hits_total"), series("redis_keyspace_misses_total")
    memory = "instance:redis_memory_used:ratio"
    hit_ratio = "instance:redis_keyspace_hits:ratio_rate5m"
    lookups = "instance:redis_keyspace_lookups:rate5m"
    return [
        _expr_test("redis memory ratio", [(used, "250x30"), (limit, "1000x30")], memory,
                   [(series(memory), 0.25)]),
        _expr_test("redis memory ratio is absent without maxmemory",
                   [(used, "250x30"), (limit, "0x30")], memory, []),
        _expr_test("redis hit ratio and lookups", [(hits, "0+75x30"), (misses, "0+25x30")],
                   hit_ratio, [(series(hit_ratio), 0.75)]),
        _expr_test("redis hit ratio is absent without lookups",
                   [(hits, "10x30"), (misses, "5x30")], hit_ratio, []),
        _expr_test("redis lookups per second", [(hits, "0+90x30"), (misses, "0+30x30")],
                   lookups, [(series(lookups), 2)]),
    ]


def _postgres_tests() -> list[dict[str, Any]]:
    return [
        _expr_test("connection usage", [
            (series("pg_connections_used"), "25x30"),
            (series("pg_connections_available"), "100x30")],
            "instance:pg_connections_usage:ratio",
            [(series("instance:pg_connections_usage:ratio"), 0.25)]),
        _expr_test("buffer cache hit ratio", [
            (series("pg_stat_database_blks_hit", datname="tmi"), "0+99x30"),
            (series("pg_stat_database_blks_read", datname="tmi"), "0+1x30")],
            "datname:pg_blks_hit:ratio_rate5m",
            [(series("datname:pg_blks_hit:ratio_rate5m", datname="tmi"), 0.99)]),
        _dead_tuples_test(),
        _expr_test("database growth per day", [
            (series("pg_database_size_bytes", datname="tmi"), "1000000+1000x30")],
            "datname:pg_database_size:growth_ratio_per_day",
            [(series("datname:pg_database_size:growth_ratio_per_day", datname="tmi"),
              1000 / 60 * 86400 / 1020000)]),
        *_statement_tests(),
    ]


def _dead_tuples_test() -> dict[str, Any]:
    def table(metric: str, relname: str) -> str:
        return series(metric, datname="tmi", schemaname="public", relname=relname)

    return _expr_test("dead tuple ratio of a database", [
        (table("pg_stat_user_tables_n_dead_tup", "threats"), "300x30"),
        (table("pg_stat_user_tables_n_live_tup", "threats"), "2700x30"),
        (table("pg_stat_user_tables_n_dead_tup", "users"), "0x30"),
        (table("pg_stat_user_tables_n_live_tup", "users"), "1000x30")],
        "datname:pg_dead_tuples:ratio",
        [(series("datname:pg_dead_tuples:ratio", datname="tmi"), 0.075)])


def _statement_tests() -> list[dict[str, Any]]:
    statement = {"queryid": "7", "datname": "tmi", "user": "tmi_user"}
    calls = series("pg_stat_statements_calls_total", **statement)
    seconds = series("pg_stat_statements_seconds_total", **statement)
    mean = "queryid:pg_stat_statements_mean_seconds:rate10m"
    return [
        _expr_test("mean statement time", [(calls, "0+240x30"), (seconds, "0+60x30")], mean,
                   [(series(mean, **statement), 0.25)]),
        _expr_test("mean statement time is absent for statements that did not run",
                   [(calls, "20x30"), (seconds, "1x30")], mean, []),
    ]
