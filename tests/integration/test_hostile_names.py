"""Hostile identifiers: names with quotes, backslashes, newlines, spaces, braces, unicode,
names at and over PostgreSQL's 63-byte limit, a database named like a connection string, and
names that are not even valid UTF-8 (from a SQL_ASCII database). They are created on real
servers, scraped, parsed back with prometheus_client (bench/exposition.py `Scrape`: valid text
format, no duplicate series) and their values checked.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from tests.support.postgres import pg_connect
from tests.support.scraping import Scrape, eventually, make_target, scrape, scrape_once
from tests.support.servers import pg_env, redis_env
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis

pytestmark = pytest.mark.integration

ERRORS = "tmi_db_exporter_collector_errors_total"

DATABASE = 'tmi "db" \\ back\\slash\nnext line ü 🚀'
CONNINFO_DATABASE = "host=192.0.2.1 port=1 dbname=postgres"  # must stay a name, not a conninfo
LONG_DATABASE = "d" + "ü" * 40  # 81 bytes: PostgreSQL keeps 63 (no half character)
SCHEMA = 'sch "ema" \\ x\ny {z}'
TABLE = "ta'ble \"x\" \\\\ \n {a=\"b\"}, é"
INDEX = "idx \"" + "é" * 40  # 85 bytes
ROLE = 'ro"le \\ \n ü'
APPLICATION = 'app "x" \\ {y}=,z'
HOSTILE = [DATABASE, CONNINFO_DATABASE, LONG_DATABASE, SCHEMA, TABLE, INDEX, ROLE, APPLICATION]


def connect(server: LocalPostgres, dbname: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Keyword arguments, never a DSN string: the names must reach libpq as they are."""
    options = {"host": server.host, "port": server.port, "user": server.user} | kwargs
    return psycopg.connect(dbname=dbname, autocommit=True, **options)


def flush_stats(conn: psycopg.Connection[Any]) -> None:
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")


def make_table(server: LocalPostgres, dbname: str, rows: int, deleted: int) -> None:
    ident = sql.Identifier
    with connect(server, dbname) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(SCHEMA)))
        conn.execute(sql.SQL(
            "CREATE TABLE {}.{} (id int, v int) WITH (autovacuum_enabled = off)"
        ).format(ident(SCHEMA), ident(TABLE)))
        conn.execute(sql.SQL("CREATE INDEX {} ON {}.{} (v)").format(
            ident(INDEX), ident(SCHEMA), ident(TABLE)))
        conn.execute(sql.SQL("INSERT INTO {}.{} SELECT g, g FROM generate_series(1, %s) g")
                     .format(ident(SCHEMA), ident(TABLE)), (rows,))
        conn.execute(sql.SQL("DELETE FROM {}.{} WHERE id <= %s")
                     .format(ident(SCHEMA), ident(TABLE)), (deleted,))
        flush_stats(conn)


def errors(result: Scrape) -> dict[str, float]:
    return {labels["collector"]: value for labels, value in result.series(ERRORS) if value}


async def test_hostile_postgres_names_round_trip_with_their_values(
    private_postgres: LocalPostgres,
) -> None:
    server = private_postgres
    with pg_connect(server) as conn:
        for name in (DATABASE, CONNINFO_DATABASE, LONG_DATABASE):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
        conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
            sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        # What PostgreSQL made of the names over 63 bytes.
        long_database, index = conn.execute("SELECT %s::name, %s::name",
                                            (LONG_DATABASE, INDEX)).fetchone()
    assert len(long_database.encode()) <= 63 and long_database.startswith("dü")
    assert len(index.encode()) <= 63 and index != INDEX
    make_table(server, DATABASE, rows=100, deleted=40)
    make_table(server, CONNINFO_DATABASE, rows=10, deleted=3)
    # A client with a hostile role and application name, idle in the hostile database.
    client = connect(server, DATABASE, user=ROLE, application_name=APPLICATION)
    exporter = make_target(pg_env(server))
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
        client.close()

    assert result.value("pg_up") == 1
    assert errors(result) == {}
    for datname in (DATABASE, CONNINFO_DATABASE, long_database):
        assert result.value("pg_database_size_bytes", datname=datname) > 1_000_000
    table = {"schemaname": SCHEMA, "relname": TABLE}
    assert result.value("pg_stat_user_tables_n_dead_tup", datname=DATABASE, **table) == 40
    assert result.value("pg_stat_user_tables_n_live_tup", datname=DATABASE, **table) == 60
    # The database named like a connection string was connected to by name: its own table.
    labels = {"datname": CONNINFO_DATABASE, **table}
    assert result.value("pg_stat_user_tables_n_dead_tup", **labels) == 3
    assert result.value("pg_stat_user_tables_n_live_tup", **labels) == 7
    index_labels = {"datname": DATABASE, "indexrelname": index, **table}
    assert result.value("pg_stat_user_indexes_idx_scan", **index_labels) == 0
    assert result.value("pg_stat_user_indexes_size_bytes", **index_labels) >= 8192
    assert result.value("pg_stat_user_indexes_unused", **index_labels) == 1
    assert result.value(
        "pg_stat_activity_connections",
        datname=DATABASE, usename=ROLE, state="idle", application_name=APPLICATION,
    ) == 1
    # Every hostile name came through whole: as a label value, exactly as given.
    labels_seen = {v for series in result.samples.values() for lbls, _ in series
                   for v in lbls.values()}
    assert {DATABASE, CONNINFO_DATABASE, long_database, SCHEMA, TABLE, index, ROLE,
            APPLICATION} <= labels_seen


async def test_hostile_statement_text_is_exported_intact(private_postgres: LocalPostgres) -> None:
    """pg_stat_statements_query (off by default) puts statement text into a label."""
    alias = 'q"u\\o\nte {x="y"} ü 🚀'
    with pg_connect(private_postgres) as conn:
        conn.execute(sql.SQL("SELECT 42 AS {}").format(sql.Identifier(alias)))
        queryid, expected = conn.execute(
            "SELECT queryid::text, left(regexp_replace(query, '\\s+', ' ', 'g'), 60)"
            " FROM pg_stat_statements WHERE query LIKE %s", ("%te {x=%",)
        ).fetchone()
    flags = {"postgres.enable_queries": "pg_stat_statements_query",
             "postgres.statement_text_length": "60"}
    exporter = make_target(pg_env(private_postgres), flags)
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
    assert '"' in expected and "\\" in expected and "ü" in expected
    assert result.value("pg_stat_statements_query_info", queryid=queryid, query=expected) == 1


NOT_UTF8_DATABASE = b"evil\xff\xfe db"
NOT_UTF8_ROLE = b"role\xff"
NOT_UTF8_TABLE = b"bad\xfename \"x\""


def make_not_utf8_names(server: LocalPostgres) -> None:
    """A SQL_ASCII database takes any bytes as names, and from there they reach the shared
    catalogs (pg_database, pg_roles) that every database's queries read."""
    with pg_connect(server) as conn:
        conn.execute("CREATE DATABASE tmi_sql_ascii ENCODING 'SQL_ASCII' TEMPLATE template0"
                     " LC_COLLATE 'C' LC_CTYPE 'C'")
    with connect(server, "tmi_sql_ascii") as conn:
        conn.execute(b'CREATE DATABASE "' + NOT_UTF8_DATABASE + b'"')
        conn.execute(b'CREATE ROLE "' + NOT_UTF8_ROLE + b'" LOGIN')
        conn.execute(b'CREATE TABLE "' + NOT_UTF8_TABLE.replace(b'"', b'""')
                     + b'" (id int) WITH (autovacuum_enabled = off)')
        conn.execute(b'INSERT INTO "' + NOT_UTF8_TABLE.replace(b'"', b'""')
                     + b'" SELECT generate_series(1, 10)')
        conn.execute(b'DELETE FROM "' + NOT_UTF8_TABLE.replace(b'"', b'""') + b'" WHERE id <= 4')
        flush_stats(conn)


async def test_names_that_are_not_utf8_do_not_take_the_exporter_down(
    private_postgres: LocalPostgres,
) -> None:
    make_not_utf8_names(private_postgres)
    exporter = make_target(pg_env(private_postgres))
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
    assert result.value("pg_up") == 1
    assert result.value("pg_settings_max_connections") == 100
    # The undecodable bytes are shown as \xNN; everything else is exported as usual.
    shown_database = NOT_UTF8_DATABASE.decode("utf-8", "backslashreplace")
    assert result.value("pg_database_size_bytes", datname=shown_database) > 1_000_000
    assert result.value("pg_database_size_bytes", datname="postgres") > 1_000_000
    table = {"datname": "tmi_sql_ascii", "schemaname": "public",
             "relname": NOT_UTF8_TABLE.decode("utf-8", "backslashreplace")}
    assert result.value("pg_stat_user_tables_n_dead_tup", **table) == 4
    assert result.value("pg_stat_user_tables_n_live_tup", **table) == 6
    assert result.value("pg_stat_activity_count", datname="postgres", state="active") >= 1
    # A database whose name is not UTF-8 cannot be connected to (libpq takes text): only the
    # per-database collectors say so.
    per_database = {"pg:pg_stat_user_tables", "pg:pg_table", "pg:pg_sequences",
                    "pg:pg_schema_migrations_table", "pg:pg_schema_migrations",
                    "pg:pg_stat_user_indexes"}
    assert set(errors(result)) <= per_database


async def test_statement_counters_survive_a_statement_that_is_not_utf8(
    private_postgres: LocalPostgres,
) -> None:
    make_not_utf8_names(private_postgres)
    flags = {"postgres.include_databases": "postgres,tmi_sql_ascii"}
    exporter = make_target(pg_env(private_postgres), flags)
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
    assert errors(result) == {}
    assert result.value("pg_stat_statements_slow_statements") >= 0


# --- Redis ------------------------------------------------------------------------------------

KEY_GROUPS = {  # name -> (glob in Redis MATCH syntax, keys it must count)
    "quoted": ('say "hi"*', [b'say "hi" 1', b'say "hi"\n2']),
    "backslash": ("back\\\\slash:*", [b"back\\slash:1", b"back\\slash:\\2"]),
    "newline": ("line\n*", [b"line\nbreak", b"line\n"]),
    "unicode": ("ünï 🚀:*", ["ünï 🚀:1".encode(), "ünï 🚀:2".encode(), "ünï 🚀:3".encode()]),
    "binary": ("bin:*", [b"bin:\xff\xfe", b"bin:\x00\x01", b"bin:\r\n"]),
    "brackets": ("\\[x\\]*", [b"[x]1"]),
    "literal_star": ("lit\\*:*", [b"lit*:1", b"lit*:2"]),
    "comma": ("a,b=c:*", [b"a,b=c:1"]),
}
UNCLASSIFIED = [b"litX:1", b"say hi", b"back\\slash", b"\xff\xfe", b"[y]1"]


async def test_hostile_key_groups_and_keys_are_counted(tmp_path: Any) -> None:
    with LocalRedis() as server:
        client = redis.Redis(host=server.host, port=server.port)
        for _, keys in KEY_GROUPS.values():
            for key in keys:
                client.set(key, b"\x00value")
        for key in UNCLASSIFIED:
            client.set(key, b"x")
        client.close()
        groups = [f"{name}={glob}" for name, (glob, _) in KEY_GROUPS.items()]
        # A list, not a comma-separated string: one glob has a comma in it.
        exporter = make_target(redis_env(server), {"redis.key_groups": groups})
        try:
            result = await eventually(  # the census runs in the background
                lambda: scrape(exporter, timeout=30),
                lambda r: bool(r.series("redis_key_census_last_finished_timestamp_seconds")),
            )
        finally:
            await exporter.close()
    for name, (_, keys) in KEY_GROUPS.items():
        assert result.value("redis_key_group_count", db="db0", key_group=name) == len(keys), name
    assert result.value("redis_key_group_count", db="db0", key_group="unclassified") == len(
        UNCLASSIFIED
    )
    assert result.value("redis_db_keys", db="db0") == sum(
        len(keys) for _, keys in KEY_GROUPS.values()
    ) + len(UNCLASSIFIED)


async def test_hostile_redis_error_codes_round_trip(private_redis: LocalRedis) -> None:
    """A Lua script chooses the error code Redis counts in INFO errorstats (its first word)."""
    codes = {'WEIRD"ERR': 2, "ÜNI🚀": 1, 'A{b="c"},d': 1, "BACK\\SLASH": 3}
    client = redis.Redis(host=private_redis.host, port=private_redis.port,
                         password=private_redis.password)
    for code, times in codes.items():
        for _ in range(times):
            with pytest.raises(redis.ResponseError):
                client.eval("return redis.error_reply(ARGV[1])", 0, f"{code} boom")
    client.close()
    result = await scrape_once(redis_env(private_redis))
    for code, times in codes.items():
        assert result.value("redis_errors_total", err=code) == times


def test_the_hostile_names_are_hostile() -> None:
    """(What the names above exercise, so that nobody tames them by accident.)"""
    joined = "".join(HOSTILE)
    for char in ('"', "\\", "\n", " ", "{", "}", "=", ",", "'", "ü", "🚀"):
        assert char in joined, char
    assert len(LONG_DATABASE.encode()) > 63 and len(INDEX.encode()) > 63
