"""Every PostgreSQL procedure of the operations guide, proven on real servers with values made
on purpose: connections and locks, slow statements, vacuum, sizes, indexes, scans, database
counters, replication, archiving and backups, migrations, TLS, wraparound and settings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support.postgres import flush_stats, pg_connect
from tests.support.scraping import Scrape, eventually, make_target, scrape, scrape_once
from tests.support.servers import pg_env
from tmi_db_exporter.demo.servers import LocalPostgres

pytestmark = pytest.mark.integration

SINGLE_DB = {"postgres.auto_discover_databases": "false"}


async def collect(server: LocalPostgres, flags: dict[str, Any] | None = None,
                  database: str = "postgres", env: dict[str, str] | None = None) -> Scrape:
    return await scrape_once(pg_env(server, database) | (env or {}), flags)


def errors(result: Scrape) -> dict[str, float]:
    return {
        labels["collector"]: value
        for labels, value in result.series("tmi_db_exporter_collector_errors_total")
        if value
    }


@pytest.fixture
def scratch_db(postgres: LocalPostgres) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield name
    with pg_connect(postgres) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


# --- 1. connections, waiting and blocked sessions, idle transactions, locks -------------------


async def test_connections_by_application_bounded_and_usage_ratio(postgres: LocalPostgres) -> None:
    apps = {"a1": 5, "a2": 4, "a3": 1, "a4": 1}
    conns = [
        psycopg.connect(postgres.dsn(), application_name=app)
        for app, count in apps.items()
        for _ in range(count)
    ]
    try:
        result = await collect(postgres, SINGLE_DB | {"postgres.applications_limit": "2"})
    finally:
        for conn in conns:
            conn.close()
    by_app: dict[str, float] = {}
    for labels, value in result.series("pg_stat_activity_connections", datname="postgres"):
        by_app[labels["application_name"]] = by_app.get(labels["application_name"], 0) + value
    assert by_app["a1"] == 5 and by_app["a2"] == 4
    assert "a3" not in by_app and "a4" not in by_app
    assert by_app["other"] >= 3  # a3, a4 and the exporter itself
    used, available = result.value("pg_connections_used"), result.value("pg_connections_available")
    assert used >= 12 and available == 97
    assert result.value("pg_connections_usage_ratio") == pytest.approx(used / available)
    assert result.value("pg_settings_max_connections") == 100


async def test_waiting_blocked_idle_in_transaction_and_locks(scratch_db: str,
                                                            postgres: LocalPostgres) -> None:
    with pg_connect(postgres, scratch_db) as setup:
        setup.execute("CREATE TABLE accounts (id int)")
    holder = psycopg.connect(postgres.dsn(scratch_db))  # not autocommit: stays in a transaction
    holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
    waiter_done = threading.Event()

    def wait_for_lock() -> None:
        with pg_connect(postgres, scratch_db) as conn:
            conn.execute("SELECT count(*) FROM accounts")
        waiter_done.set()

    waiter = threading.Thread(target=wait_for_lock)
    waiter.start()
    try:
        await asyncio.sleep(1.2)
        result = await collect(postgres, SINGLE_DB)
    finally:
        holder.rollback()
        holder.close()
        waiter.join(10)
    assert waiter_done.is_set()
    labels = {"datname": scratch_db}
    assert result.value("pg_activity_waiting_on_locks", **labels) == 1
    assert result.value("pg_activity_blocked", **labels) == 1
    assert result.value("pg_activity_idle_in_transaction", **labels) == 1
    assert result.value("pg_activity_idle_in_transaction_max_seconds", **labels) >= 1.0
    assert result.value("pg_activity_longest_transaction_seconds", **labels) >= 1.0
    assert result.value("pg_activity_longest_query_seconds", **labels) >= 1.0
    assert result.value("pg_locks_count", datname=scratch_db, mode="accessexclusivelock") >= 1
    assert result.value("pg_locks_count", datname=scratch_db, mode="sharelock") == 0
    assert result.value("pg_stat_activity_count", datname=scratch_db,
                        state="idle in transaction") == 1


# --- 2. slow statements -------------------------------------------------------------------


async def test_slow_statements_count_limit_and_optional_text(postgres: LocalPostgres) -> None:
    with pg_connect(postgres) as conn:
        conn.execute("SELECT pg_sleep(0.25)")
    result = await collect(postgres, SINGLE_DB)
    assert result.value("pg_stat_statements_slow_statements") >= 1
    assert result.value("pg_stat_statements_slow_threshold_seconds") == 0.1
    assert result.series("pg_stat_statements_query_info") == []  # text is off by default

    strict = await collect(postgres, SINGLE_DB | {"postgres.slow_statement_threshold": "1h"})
    assert strict.value("pg_stat_statements_slow_statements") == 0

    limited = await collect(
        postgres,
        SINGLE_DB | {"postgres.statements_limit": "1",
                     "postgres.enable_queries": "pg_stat_statements_query",
                     "postgres.statement_text_length": "20"},
    )
    assert len(limited.series("pg_stat_statements_calls_total")) == 1
    assert limited.value("pg_stat_statements_left_out") >= 1
    (labels, value), = limited.series("pg_stat_statements_query_info")
    assert value == 1 and 0 < len(labels["query"]) <= 20
    assert labels["queryid"] == limited.series("pg_stat_statements_calls_total")[0][0]["queryid"]


# --- 3-6. vacuum, sizes, indexes, sequential scans ----------------------------------------


async def test_table_statistics_sizes_indexes_and_scans(scratch_db: str,
                                                       postgres: LocalPostgres) -> None:
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE TABLE threats (id int PRIMARY KEY, tag text, body text)"
                     " WITH (autovacuum_enabled = off)")
        conn.execute("CREATE INDEX threats_body ON threats (tag)")
        conn.execute("INSERT INTO threats SELECT g, g::text, md5(g::text)"
                     " FROM generate_series(1, 100) g")
        # An incompressible value larger than a page goes to TOAST.
        conn.execute("INSERT INTO threats SELECT 1000, 'big', string_agg(md5(random()::text), '')"
                     " FROM generate_series(1, 400)")
        conn.execute("DELETE FROM threats WHERE id <= 41")
        conn.execute("CREATE TABLE diagrams (id int)")
        conn.execute("VACUUM ANALYZE diagrams")
        for _ in range(2):
            conn.execute("SELECT count(*) FROM threats")
        flush_stats(conn)
    result = await collect(postgres, database=scratch_db)
    t = {"datname": scratch_db, "schemaname": "public", "relname": "threats"}
    assert result.value("pg_stat_user_tables_n_dead_tup", **t) == 41
    assert result.value("pg_stat_user_tables_n_live_tup", **t) == 60
    assert result.value("pg_stat_user_tables_dead_ratio", **t) == pytest.approx(41 / 101)
    assert result.value("pg_stat_user_tables_n_mod_since_analyze", **t) == 142
    assert result.value("pg_stat_user_tables_seq_scan", **t) >= 2
    assert result.value("pg_stat_user_tables_seq_tup_read", **t) >= 2 * 60
    d = {"datname": scratch_db, "schemaname": "public", "relname": "diagrams"}
    assert result.value("pg_stat_user_tables_last_vacuum", **d) > time.time() - 600
    assert result.value("pg_stat_user_tables_vacuum_count", **d) == 1
    assert result.value("pg_stat_user_tables_last_analyze", **d) > time.time() - 600
    assert result.series("pg_stat_user_tables_idx_scan", **d) == []  # no index at all

    heap = result.value("pg_table_heap_size_bytes", **t)
    indexes = result.value("pg_table_indexes_size_bytes", **t)
    toast = result.value("pg_table_toast_size_bytes", **t)
    assert heap >= 8192 and indexes >= 2 * 8192 and toast >= 8192
    assert result.value("pg_table_total_size_bytes", **t) == heap + indexes + toast

    i = {"datname": scratch_db, "relname": "threats"}
    assert result.value("pg_stat_user_indexes_unused", indexrelname="threats_body", **i) == 1
    assert result.value("pg_stat_user_indexes_unused", indexrelname="threats_pkey", **i) == 0
    assert result.value("pg_stat_user_indexes_idx_scan", indexrelname="threats_body", **i) == 0
    assert result.value("pg_stat_database_stats_reset", datname=scratch_db) >= 0
    assert result.value("pg_stat_user_tables_left_out", datname=scratch_db) == 0

    capped = await collect(postgres, {"postgres.tables_limit": "1"}, database=scratch_db)
    assert len(capped.series("pg_stat_user_tables_n_dead_tup", datname=scratch_db)) == 1
    assert capped.value("pg_stat_user_tables_left_out", datname=scratch_db) == 1
    (kept, _), = capped.series("pg_stat_user_tables_n_dead_tup", datname=scratch_db)
    assert kept["relname"] == "threats"  # most dead tuples first


# --- 7. database counters: transactions, deadlocks, temp files, cache ----------------------


async def test_database_counters_move(scratch_db: str, postgres: LocalPostgres) -> None:
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE TABLE pair (id int PRIMARY KEY)")
        conn.execute("INSERT INTO pair VALUES (1), (2)")
    before = await collect(postgres, SINGLE_DB)
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("SET work_mem = '64kB'")
        conn.execute("SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC LIMIT 1")
        with contextlib.suppress(psycopg.Error):
            conn.execute("BEGIN")
            conn.execute("SELECT 1/0")
        conn.execute("ROLLBACK")
    # A deadlock: two sessions lock the two rows in opposite order.
    a, b = (psycopg.connect(postgres.dsn(scratch_db)) for _ in range(2))
    a.execute("UPDATE pair SET id = id WHERE id = 1")
    b.execute("UPDATE pair SET id = id WHERE id = 2")
    failures: list[Exception] = []

    def second_lock(conn: psycopg.Connection[Any], row: int) -> None:
        try:
            conn.execute(f"UPDATE pair SET id = id WHERE id = {row}")
        except psycopg.errors.DeadlockDetected as exc:
            failures.append(exc)
        conn.rollback()

    threads = [threading.Thread(target=second_lock, args=(a, 2)),
               threading.Thread(target=second_lock, args=(b, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    a.close()
    b.close()
    assert len(failures) == 1
    with pg_connect(postgres, scratch_db) as conn:
        flush_stats(conn)
    after = await collect(postgres, SINGLE_DB)
    db = {"datname": scratch_db}

    def delta(name: str) -> float:
        return after.value(name, **db) - before.value(name, **db)

    assert delta("pg_stat_database_deadlocks") == 1
    assert delta("pg_stat_database_temp_files") >= 1
    assert delta("pg_stat_database_temp_bytes") > 0
    assert delta("pg_stat_database_xact_rollback") >= 2
    assert delta("pg_stat_database_xact_commit") >= 1
    assert after.value("pg_stat_database_blks_hit", **db) > 0
    assert after.types["pg_stat_database_xact_commit"] == "counter"


# --- 8. replication and WAL ---------------------------------------------------------------


async def test_replication_slots_wal_and_standby(private_postgres: LocalPostgres) -> None:
    with pg_connect(private_postgres) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot('abandoned', true)")
    with LocalPostgres(primary=private_postgres) as standby:
        with pg_connect(private_postgres) as conn:
            conn.execute("CREATE TABLE wal_maker AS SELECT generate_series(1, 20000) AS g")
        primary = await collect(private_postgres, SINGLE_DB)
        replica = await collect(standby, SINGLE_DB)
    (labels, lag), = primary.series("pg_stat_replication_lag_bytes")
    assert labels["state"] == "streaming" and labels["client_addr"] == "127.0.0.1"
    assert lag >= 0
    slot = {"slot_name": "abandoned", "slot_type": "physical"}
    assert primary.value("pg_replication_slots_active", **slot) == 0
    assert primary.value("pg_replication_slots_retained_bytes", **slot) > 100_000
    assert primary.value("pg_wal_position_bytes") > 0
    assert primary.value("pg_is_in_recovery") == 0
    assert primary.series("pg_replication_lag_seconds") == []  # only on a standby
    assert replica.value("pg_is_in_recovery") == 1
    assert replica.value("pg_replication_lag_seconds") >= 0
    assert replica.value("pg_replication_replay_lag_bytes") >= 0
    assert errors(primary) == {} and errors(replica) == {}


# --- 9. archiving and backups -------------------------------------------------------------


async def test_archiver_failures_then_successes(private_postgres: LocalPostgres) -> None:
    # archive_mode needs a restart, so this test builds its own server.
    with LocalPostgres(private_postgres.binaries,
                       extra_config={"archive_mode": "on", "archive_command": "'false'"}) as pg:
        with pg_connect(pg) as conn:
            conn.execute("CREATE TABLE w AS SELECT 1 AS x")
            conn.execute("SELECT pg_switch_wal()")
        failing = await eventually(
            lambda: collect(pg, SINGLE_DB), lambda r: r.value("pg_stat_archiver_failed_count") >= 1
        )
        assert failing.value("pg_stat_archiver_failed_count") >= 1
        assert failing.value("pg_stat_archiver_last_failed_time") > time.time() - 120
        assert failing.value("pg_stat_archiver_archive_mode") == 1
        with pg_connect(pg) as conn:
            conn.execute("ALTER SYSTEM SET archive_command = 'true'")
            conn.execute("SELECT pg_reload_conf()")
        working = await eventually(
            lambda: collect(pg, SINGLE_DB),
            lambda r: r.value("pg_stat_archiver_archived_count") >= 1,
        )
        assert working.value("pg_stat_archiver_archived_count") >= 1
        assert working.value("pg_stat_archiver_last_archive_time") > time.time() - 120


async def test_backup_freshness(tmp_path, postgres: LocalPostgres) -> None:
    dumps = tmp_path / "postgresql"
    dumps.mkdir()
    for day, size in ((3, 100), (2, 300)):
        path = dumps / f"tmi_2026110{day}.dump"
        path.write_bytes(b"x" * size)
        old = time.time() - day * 3600
        os.utime(path, (old, old))
    (tmp_path / "redis").mkdir()
    paths = f"{dumps},{tmp_path}/redis/*.rdb,{tmp_path}/nowhere"
    result = await collect(postgres, SINGLE_DB | {"backup_paths": paths})
    assert result.value("tmi_db_backup_files", path=str(dumps)) == 2
    assert result.value("tmi_db_backup_newest_age_seconds", path=str(dumps)) == pytest.approx(
        7200, abs=60
    )
    assert result.value("tmi_db_backup_newest_size_bytes", path=str(dumps)) == 300
    assert result.value("tmi_db_backup_files", path=f"{tmp_path}/redis/*.rdb") == 0
    assert result.series("tmi_db_backup_newest_age_seconds", path=f"{tmp_path}/nowhere") == []


# --- 10. migrations -----------------------------------------------------------------------


async def test_schema_migrations_version_dirty_and_absent(scratch_db: str,
                                                         postgres: LocalPostgres) -> None:
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY,"
                     " dirty boolean NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (8, false)")
    clean = await collect(postgres)
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("UPDATE schema_migrations SET version = 9, dirty = true")
    dirty = await collect(postgres)
    assert clean.value("pg_schema_migrations_present", datname=scratch_db) == 1
    assert clean.value("pg_schema_migrations_version", datname=scratch_db) == 8
    assert clean.value("pg_schema_migrations_dirty", datname=scratch_db) == 0
    assert dirty.value("pg_schema_migrations_version", datname=scratch_db) == 9
    assert dirty.value("pg_schema_migrations_dirty", datname=scratch_db) == 1
    # The postgres database has no such table: present 0, no version, no error.
    assert dirty.value("pg_schema_migrations_present", datname="postgres") == 0
    assert dirty.series("pg_schema_migrations_version", datname="postgres") == []
    assert "pg:pg_schema_migrations" not in errors(dirty)


async def test_migrations_table_name_is_a_setting(scratch_db: str,
                                                  postgres: LocalPostgres) -> None:
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE SCHEMA ops")
        conn.execute("CREATE TABLE ops.migrations (version bigint, dirty boolean)")
        conn.execute("INSERT INTO ops.migrations VALUES (3, false)")
    result = await collect(postgres, {"postgres.migrations_table": "ops.migrations"})
    assert result.value("pg_schema_migrations_version", datname=scratch_db) == 3


# --- 11. TLS posture ----------------------------------------------------------------------


async def test_connections_without_tls_are_counted(postgres: LocalPostgres) -> None:
    with psycopg.connect(postgres.dsn(), sslmode="disable", application_name="clear"):
        result = await collect(postgres, SINGLE_DB)
    plain = result.series("pg_stat_ssl_connections", datname="postgres", usename="postgres",
                          ssl="false")
    assert sum(v for _, v in plain) >= 2  # ours and the exporter's
    assert result.series("pg_stat_ssl_connections", ssl="true") == []
    assert result.value("pg_settings_ssl") == 0


# --- 12. wraparound, sequences, settings, checkpoints --------------------------------------


async def test_wraparound_sequences_settings_and_checkpoints(
    scratch_db: str, postgres: LocalPostgres
) -> None:
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE SEQUENCE ticket MAXVALUE 100")
        for _ in range(90):
            conn.execute("SELECT nextval('ticket')")
        conn.execute("CREATE SEQUENCE unused_seq")  # never called: no last_value, not shown
        conn.execute("CHECKPOINT")
    result = await collect(postgres)
    seq = {"datname": scratch_db, "schemaname": "public", "sequencename": "ticket"}
    assert result.value("pg_sequence_used_ratio", **seq) == pytest.approx(89 / 99)
    assert result.series("pg_sequence_used_ratio", sequencename="unused_seq") == []
    age = result.value("pg_database_frozen_xid_age", datname=scratch_db)
    assert age > 0
    assert result.value("pg_database_wraparound_ratio", datname=scratch_db) == pytest.approx(
        age / 2147483647
    )
    assert result.value("pg_settings_shared_buffers_bytes") == 128 * 1024 * 1024
    assert result.value("pg_settings_deadlock_timeout_seconds") == 1
    assert result.series("pg_settings_statement_timeout_seconds") == []  # ours, not the server's
    assert result.value("pg_settings_fsync") == 0  # the test server runs with fsync = off
    assert result.value("pg_stat_bgwriter_checkpoints_req_total") >= 1
    assert result.value("pg_settings_pending_restart") == 0


async def test_pending_restart(private_postgres: LocalPostgres) -> None:
    with pg_connect(private_postgres) as conn:
        conn.execute("ALTER SYSTEM SET shared_buffers = '64MB'")
        conn.execute("SELECT pg_reload_conf()")
    result = await eventually(
        lambda: collect(private_postgres, SINGLE_DB),
        lambda r: r.value("pg_settings_pending_restart") == 1,
        attempts=20,
        pause=0.25,
    )
    assert result.value("pg_settings_pending_restart") == 1


# --- 13. discovery ------------------------------------------------------------------------


async def test_discovery_follows_new_and_dropped_databases(postgres: LocalPostgres) -> None:
    name = f"late_{uuid.uuid4().hex[:8]}"
    exporter = make_target(pg_env(postgres), {"postgres.discovery_interval": "1s"})
    try:
        first = await scrape(exporter)
        assert first.series("pg_stat_user_tables_left_out", datname=name) == []
        with pg_connect(postgres) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        await asyncio.sleep(1.2)
        await scrape(exporter)  # discovery runs here and wakes the per-database collectors
        seen = await eventually(
            lambda: scrape(exporter),
            lambda r: bool(r.series("pg_stat_user_tables_left_out", datname=name)),
            attempts=50,
            pause=0.1,
        )
        assert seen.value("pg_stat_user_tables_left_out", datname=name) == 0
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await asyncio.sleep(1.2)
        gone = await eventually(
            lambda: scrape(exporter),
            lambda r: not r.series("pg_stat_user_tables_left_out", datname=name),
            attempts=50,
            pause=0.1,
        )
        assert gone.series("pg_stat_user_tables_left_out", datname=name) == []
    finally:
        await exporter.close()


async def test_include_and_exclude_databases(scratch_db: str, postgres: LocalPostgres) -> None:
    only = await collect(postgres, {"postgres.include_databases": scratch_db})
    assert {lbl["datname"] for lbl, _ in only.series("pg_stat_user_tables_left_out")} == {
        "postgres", scratch_db  # the configured database is always included
    }
    without = await collect(postgres, {"postgres.exclude_databases": scratch_db})
    assert without.series("pg_stat_user_tables_left_out", datname=scratch_db) == []
    # Cluster-wide entries are not per discovered database: one series per database row.
    assert len(without.series("pg_database_size_bytes", datname=scratch_db)) == 1


# --- 14. least privilege ------------------------------------------------------------------


async def test_pg_monitor_role_is_enough(scratch_db: str, postgres: LocalPostgres) -> None:
    role = f"monitor_{uuid.uuid4().hex[:6]}"
    with pg_connect(postgres) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN IN ROLE pg_monitor")
        conn.execute(f"GRANT CONNECT ON DATABASE {scratch_db} TO {role}")
    with pg_connect(postgres, scratch_db) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint, dirty boolean)")
        conn.execute("INSERT INTO schema_migrations VALUES (8, false)")
        conn.execute(f"GRANT SELECT ON schema_migrations TO {role}")
        conn.execute("CREATE TABLE owned_by_app (id int)")
        conn.execute("INSERT INTO owned_by_app VALUES (1)")
        conn.execute("DELETE FROM owned_by_app")
        flush_stats(conn)
    with pg_connect(postgres) as conn:
        conn.execute("SELECT pg_sleep(0.11)")
    try:
        result = await collect(postgres, env={"POSTGRES_USER": role})
    finally:
        with pg_connect(postgres) as conn:
            conn.execute(f"DROP OWNED BY {role} CASCADE")
            with pg_connect(postgres, scratch_db) as inner:
                inner.execute(f"DROP OWNED BY {role} CASCADE")
            conn.execute(f"DROP ROLE {role}")
    assert result.value("pg_up") == 1
    assert errors(result) == {}
    assert result.value("pg_stat_user_tables_n_dead_tup", datname=scratch_db,
                        relname="owned_by_app") == 1
    assert result.value("pg_schema_migrations_version", datname=scratch_db) == 8
    assert result.value("pg_stat_statements_slow_statements") >= 1
    users = {lbl["user"] for lbl, _ in result.series("pg_stat_statements_calls_total")}
    assert "postgres" in users  # pg_read_all_stats sees other roles' statements
