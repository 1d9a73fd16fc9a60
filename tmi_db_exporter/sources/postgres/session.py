"""One long-lived connection to one database, and what the server gives back on it.

Opened once and reused (never one per scrape), named `tmi-db-exporter` in pg_stat_activity,
read-only, with a statement and lock timeout on everything. What the server is (version,
installed extensions) is learned once per connection, so each spec runs only the SQL variant
that fits and a missing extension is a quiet skip, not an error on every scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.sources.postgres.budgets import BUSY_CLOSE_WAIT, LOCK_TIMEOUT_MS


class LenientTextLoader(TextLoader):
    """Text as `str` whatever its bytes. In a SQL_ASCII database names may be any bytes, and a
    database or role created from one puts them into the shared catalogs, where they would
    fail every query that reads pg_database or pg_roles (a hostile name must not take the
    exporter down). Bytes that are not valid in the connection's encoding (UTF-8 for SQL_ASCII)
    are shown as `\\xNN`."""

    def load(self, data: Any) -> str:
        return bytes(data).decode(self._encoding or "utf-8", "backslashreplace")


class QueryFailed(psycopg.Error):
    """The server refused an entry's SQL (a mistake in the entry, not an outage); the message
    names the file, line and field of the entry, as a configuration error would."""


_TEXT_TYPES = ("text", "varchar", "name", "bpchar", '"char"', 0)  # 0: unknown (literals)


class Session:
    """One connection to one database plus what was learned about it on connect."""

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], dbname: str, extensions: set[str]
    ) -> None:
        self.conn = conn
        self.dbname = dbname
        self.version: int = conn.info.server_version
        self.extensions = extensions
        self._lock = asyncio.Lock()
        self._timeout_ms: int | None = None

    @classmethod
    async def open(cls, settings: PostgresSettings, dbname: str) -> Session:
        options = (
            "-c default_transaction_read_only=on"
            f" -c statement_timeout={round(settings.statement_timeout * 1000)}"
            f" -c lock_timeout={LOCK_TIMEOUT_MS}"
        )
        conn = await psycopg.AsyncConnection.connect(
            **settings.conninfo(dbname), autocommit=True, options=options
        )
        for text_type in _TEXT_TYPES:
            conn.adapters.register_loader(text_type, LenientTextLoader)
        try:
            cur = await conn.execute("SELECT extname FROM pg_extension")
            extensions = {row[0] for row in await cur.fetchall()}
        except BaseException:
            await conn.close()
            raise
        session = cls(conn, dbname, extensions)
        session._timeout_ms = round(settings.statement_timeout * 1000)
        return session

    @property
    def broken(self) -> bool:
        return self.conn.closed or self.conn.broken

    @property
    def busy(self) -> bool:
        """A query is running on it (closing it now would pull the socket from under it)."""
        return self._lock.locked()

    async def query(self, sql: str, timeout: float, limit: int | None = None) -> QueryResult:
        """Run one statement with its own statement_timeout (set only when it changes)."""
        async with self._lock:
            timeout_ms = max(1, round(timeout * 1000))
            try:
                if timeout_ms != self._timeout_ms:
                    await self.conn.execute(f"SET statement_timeout = {timeout_ms}")
                    self._timeout_ms = timeout_ms
                cur = await self.conn.execute(sql)
                rows = await (cur.fetchmany(limit) if limit else cur.fetchall())
            except asyncio.CancelledError:
                # Cut off mid-protocol: the connection's state is unknown, start afresh.
                await self._finish()
                raise
            columns = [d.name for d in cur.description or ()]
            return QueryResult(columns, rows)

    async def close(self) -> None:
        """Close the connection, bounded. A query running on it in another task is cut off
        first by shutting its socket down, so that it fails as a lost connection: freeing
        libpq's connection while that task is suspended in the middle of it is a
        use-after-free in C (seen as a hang inside PQconsumeInput, the event loop with it)."""
        if self.busy:
            self._shut_socket()
            try:
                async with asyncio.timeout(BUSY_CLOSE_WAIT):
                    await self._lock.acquire()
            except TimeoutError:
                return  # its socket is shut; freeing it under the task is the one unsafe step
            self._lock.release()
        await self._finish()

    def _shut_socket(self) -> None:
        with contextlib.suppress(Exception):  # already closed or broken: nothing to cut
            duplicate = socket.socket(fileno=os.dup(self.conn.fileno()))
            with duplicate:  # closing the duplicate leaves libpq's own descriptor alone
                duplicate.shutdown(socket.SHUT_RDWR)

    async def _finish(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection may fail to close: it is gone
            await self.conn.close()


@dataclass
class QueryResult:
    """A statement's column names and rows, as loaded by psycopg."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def to_number(value: Any) -> float | None:
    """A metric value from a column value; None (SQL NULL or not numeric) means no sample."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return None
