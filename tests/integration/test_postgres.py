"""PostgreSQL collectors against real servers of every required major: values made on purpose."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.postgres import flush_stats, pg_connect
from tests.support.scraping import eventually, make_target, scrape, scrape_once
from tests.support.servers import pg_env
from tmi_db_exporter.demo.servers import LocalPostgres

pytestmark = pytest.mark.integration


async def test_up_version_and_connections(postgres: LocalPostgres) -> None:
    result = await scrape_once(pg_env(postgres))
    assert result.value("pg_up") == 1
    (labels, _), = result.series("pg_static")
    assert labels["short_version"].startswith(f"{postgres.major}.")
    assert result.value("pg_settings_max_connections") == 100
    # The exporter's own connection is an active client of database postgres.
    assert result.value("pg_stat_activity_count", datname="postgres", state="active") >= 1
    # States without sessions are 0, not missing.
    idle = {"datname": "postgres", "state": "fastpath function call"}
    assert result.value("pg_stat_activity_count", **idle) == 0
    assert result.value("pg_database_size_bytes", datname="postgres") > 1_000_000
    assert result.types["pg_stat_statements_calls"] == "counter"


async def test_dead_tuples_are_counted(postgres: LocalPostgres) -> None:
    table = f"dead_{uuid.uuid4().hex[:8]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE TABLE {table} (id int) WITH (autovacuum_enabled = off)")
        conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 100)")
        conn.execute(f"DELETE FROM {table} WHERE id <= 40")
        flush_stats(conn)
    result = await scrape_once(pg_env(postgres))
    labels = {"datname": "postgres", "schemaname": "public", "relname": table}
    assert result.value("pg_stat_user_tables_n_dead_tup", **labels) == 40
    assert result.value("pg_stat_user_tables_n_live_tup", **labels) == 60
    assert result.value("pg_stat_user_tables_last_vacuum", **labels) == 0


async def test_slow_statement_is_ranked_with_its_mean(postgres: LocalPostgres) -> None:
    """pg_sleep(x) statements of other tests share one normalized query id, and other tests run
    slower ones: so the check is against the server's own figures at the same moment."""
    with pg_connect(postgres) as conn:
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.3)")
    result = await scrape_once(pg_env(postgres))
    with pg_connect(postgres) as conn:
        queryid, calls, mean_ms = conn.execute(
            "SELECT queryid::text, calls, mean_exec_time FROM pg_stat_statements"
            " WHERE query LIKE 'SELECT pg_sleep%'"
        ).fetchone()
        (top_id,) = conn.execute(
            "SELECT queryid::text FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 1"
        ).fetchone()
    assert calls >= 2 and mean_ms >= 100
    assert result.value("pg_stat_statements_calls_total", queryid=queryid) == calls
    mean = result.value("pg_stat_statements_mean_seconds", queryid=queryid)
    assert mean == pytest.approx(mean_ms / 1000)
    totals = result.series("pg_stat_statements_seconds_total")
    top = max(totals, key=lambda item: item[1])
    assert top[0]["queryid"] == top_id
    mine = result.series("pg_stat_statements_seconds_total", queryid=queryid)
    assert mine and mine[0][0]["datname"] == "postgres" and mine[0][0]["user"] == "postgres"
    assert mine[0][1] >= 0.6


async def test_unused_index_shows_zero_scans_and_its_size(postgres: LocalPostgres) -> None:
    table = f"idx_{uuid.uuid4().hex[:8]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v int)")
        conn.execute(f"CREATE INDEX {table}_v ON {table} (v)")
        conn.execute(f"INSERT INTO {table} SELECT g, g FROM generate_series(1, 1000) g")
        conn.execute("SET enable_seqscan = off")
        for i in range(3):
            conn.execute(f"SELECT * FROM {table} WHERE id = {i}")
        flush_stats(conn)
    result = await scrape_once(pg_env(postgres))
    unused = {"datname": "postgres", "relname": table, "indexrelname": f"{table}_v"}
    used = {"datname": "postgres", "relname": table, "indexrelname": f"{table}_pkey"}
    assert result.value("pg_stat_user_indexes_idx_scan", **unused) == 0
    assert result.value("pg_stat_user_indexes_idx_scan", **used) >= 3
    assert result.value("pg_stat_user_indexes_size_bytes", **unused) >= 8192


async def test_missing_extension_is_a_skip_not_an_error(postgres: LocalPostgres) -> None:
    database = f"noext_{uuid.uuid4().hex[:8]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    flags = {"postgres.auto_discover_databases": "false"}
    exporter = make_target(pg_env(postgres, database), flags)
    try:
        for _ in range(2):
            result = await scrape(exporter)
    finally:
        await exporter.close()
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP DATABASE {database}")
    assert result.value("pg_up") == 1
    assert result.series("pg_stat_statements_calls_total") == []
    skipped = result.series("tmi_db_exporter_query_skipped", collector="pg:pg_stat_statements")
    (labels, value), = skipped
    assert labels == {
        "collector": "pg:pg_stat_statements",
        "reason": "extension pg_stat_statements is not installed",
    } and value == 1
    errors = "tmi_db_exporter_collector_errors_total"
    assert result.value(errors, collector="pg:pg_stat_statements") == 0


async def test_every_database_is_discovered(postgres: LocalPostgres) -> None:
    database = f"second_{uuid.uuid4().hex[:8]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    try:
        with pg_connect(postgres, database) as conn:
            conn.execute("CREATE TABLE threats (id int)")
            conn.execute("INSERT INTO threats SELECT generate_series(1, 10)")
            conn.execute("DELETE FROM threats WHERE id <= 3")
            flush_stats(conn)
        exporter = make_target(pg_env(postgres))
        try:
            result = await scrape(exporter)
        finally:
            await exporter.close()
        assert result.value(
            "pg_stat_user_tables_n_dead_tup", datname=database, relname="threats"
        ) == 3
        # Cluster-wide entries run once, not once per database.
        assert len(result.series("pg_settings_max_connections")) == 1
    finally:
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP DATABASE {database} WITH (FORCE)")


async def test_pg_up_follows_the_server_without_restarting_the_exporter(
    private_postgres: LocalPostgres,
) -> None:
    exporter = make_target(pg_env(private_postgres))
    try:
        assert (await scrape(exporter)).value("pg_up") == 1
        private_postgres.kill()
        down = await scrape(exporter)
        assert down.value("pg_up") == 0
        assert down.series("pg_stat_activity_count") == []  # nothing stale is passed off as live
        assert down.value("tmi_db_exporter_build_info", version=down.series(
            "tmi_db_exporter_build_info")[0][0]["version"]) == 1
        private_postgres.start_again()
        result = await eventually(lambda: scrape(exporter), lambda r: r.value("pg_up") == 1)
        assert result.value("pg_up") == 1
        assert result.value("pg_settings_max_connections") == 100
    finally:
        await exporter.close()


async def test_connections_are_reused_named_and_read_only(
    postgres: LocalPostgres, tmp_path
) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS exporter_must_not_touch")
    writer = tmp_path / "writer.yaml"
    writer.write_text(
        "pg_writer:\n  help: Tries to write.\n"
        "  sql: SELECT nextval('exporter_must_not_touch') AS x\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    flags = {"postgres.auto_discover_databases": "false", "extra_queries_files": str(writer)}
    exporter = make_target(pg_env(postgres), flags)
    try:
        for _ in range(5):
            result = await scrape(exporter)
        with pg_connect(postgres) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tmi-db-exporter'"
            ).fetchone()
            (called,) = conn.execute(
                "SELECT is_called FROM exporter_must_not_touch"
            ).fetchone()
        assert count == 1  # one connection, reused by every scrape
        assert called is False  # the read-only transaction refused nextval()
        assert result.value("tmi_db_exporter_collector_errors_total", collector="pg:pg_writer") == 5
        assert result.series("pg_writer_x") == []
    finally:
        await exporter.close()


async def test_a_failing_query_does_not_hide_the_others(postgres: LocalPostgres, tmp_path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "pg_broken:\n  help: Broken.\n  sql: SELECT * FROM no_such_table\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    exporter = make_target(pg_env(postgres), {"extra_queries_files": str(broken)})
    try:
        result = await asyncio.wait_for(scrape(exporter), 15)
    finally:
        await exporter.close()
    assert result.value("tmi_db_exporter_collector_errors_total", collector="pg:pg_broken") == 1
    assert result.value("pg_up") == 1
    assert result.value("pg_settings_max_connections") == 100


async def test_scrapers_close_together_share_one_collection(postgres: LocalPostgres) -> None:
    """Two Prometheus servers cost the database what one does: scrapes within `min_ttl` of a
    collection reuse it, even for TTL-0 data; without the window each scrape pays again."""
    role = f"shared_{uuid.uuid4().hex[:6]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor")

    def statements() -> int:
        with pg_connect(postgres) as conn:
            (calls,) = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                f" WHERE userid = '{role}'::regrole"
            ).fetchone()
        return int(calls)

    async def cost(min_ttl: str) -> tuple[int, int]:
        """Statements of one scrape, then of two scrapes in a row, on a warm exporter."""
        flags = {"postgres.auto_discover_databases": "false", "min_ttl": min_ttl}
        exporter = make_target(pg_env(postgres) | {"POSTGRES_USER": role}, flags)
        try:
            await scrape(exporter)  # cold: every TTL collected once
            window = float(min_ttl)
            await asyncio.sleep(window)
            before = statements()
            await scrape(exporter)
            one = statements() - before
            await asyncio.sleep(window)
            before = statements()
            await scrape(exporter)
            await scrape(exporter)
            return one, statements() - before
        finally:
            await exporter.close()

    try:
        one, two = await cost("2")
        assert one >= 5  # pg_up's probe and the TTL-0 entries ran again after the window
        assert two == one
        one, two = await cost("0")
        assert two == 2 * one
    finally:
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP ROLE {role}")
