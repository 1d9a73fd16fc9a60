"""A test's own connection to PostgreSQL, to make the values the exporter must then report."""

from __future__ import annotations

from typing import Any

import psycopg

from tmi_db_exporter.demo.servers import LocalPostgres


def pg_connect(server: LocalPostgres, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(server.dsn(dbname), autocommit=True)


def flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Statistics reach the views asynchronously; PG 15+ can be told to flush now."""
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT 1")
