"""PostgreSQL source: long-lived connections that run the queries.yaml specs.

One connection per monitored database, opened once and reused (never one per scrape), named
`tmi-db-exporter` in pg_stat_activity, read-only, with a statement and lock timeout on
everything. What the server is (version, installed extensions) is learned once per connection,
so each spec runs only the SQL variant that fits and a missing extension is a quiet skip, not an
error on every scrape. A probe, shared by all collectors of one scrape, decides `pg_up` and
reconnects with backoff after a failure, so a restarted server is picked up without restarting
the exporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.contract import PartialFailure, Skipped, Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.core.reachability import backoff
from tmi_db_exporter.sources.postgres.queries import QuerySpec, fill_placeholders

log = logging.getLogger(__name__)

METRICS = MetricGroup('PostgreSQL (built in)', __name__)
PG_UP = METRICS.define("pg_up", "1 if the exporter can reach and query PostgreSQL, else 0.")
PG_STATIC = METRICS.define(
    "pg_static",
    "Server version as labels; always 1.",
    labels=("short_version", "version"),
)
PG_START_TIME = METRICS.define(
    "pg_postmaster_start_time_seconds", "When the server started, seconds since the epoch."
)
PG_IN_RECOVERY = METRICS.define(
    "pg_is_in_recovery", "1 when the server is a standby (in recovery), 0 on a primary."
)

PROBE_REUSE_SECONDS = 1.0  # a probe serves all collectors of a scrape and concurrent scrapes
LOCK_TIMEOUT_MS = 1000  # monitoring must never queue behind an application's lock

_PROBE_SQL = (
    "SELECT extract(epoch FROM pg_postmaster_start_time())::float8, pg_is_in_recovery(),"
    " version()"
)


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

    def __init__(self, conn: psycopg.AsyncConnection[Any], dbname: str, extensions: set[str]):
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
                await self.close()
                raise
            columns = [d.name for d in cur.description or ()]
            return QueryResult(columns, rows)

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection may fail to close: it is gone
            await self.conn.close()


@dataclass
class QueryResult:
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


class PostgresSource:
    """All PostgreSQL collectors of one server."""

    def __init__(self, settings: PostgresSettings, specs: list[QuerySpec]) -> None:
        self.settings = settings
        self.specs = specs
        self.placeholders = placeholder_values(settings)
        self.up = False
        self._sessions: dict[str, Session] = {}
        self._databases: list[str] = [settings.database]
        self._discovered_at = float("-inf")
        self._probe_task: asyncio.Task[bool] | None = None
        self._probed_at = float("-inf")
        self._probe_values: tuple[Any, ...] = ()
        self._failures = 0
        self._retry_at = float("-inf")
        self._last_error: str | None = None
        self._db_retry_at: dict[str, float] = {}
        self._db_failures: dict[str, int] = {}
        self._connect_locks: dict[str, asyncio.Lock] = {}
        self._per_database: list[CachedCollector] = []

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        timeout = self.settings.connect_timeout + 1
        collectors = [
            CachedCollector(
                "pg_up", self._collect_up, ttl=0, timeout=timeout, fallback=self._up_fallback,
                min_ttl=min_ttl,
            ),
            CachedCollector(
                "pg_settings", self._collect_settings, ttl=60, timeout=timeout, min_ttl=min_ttl
            ),
        ]
        for spec in self.specs:

            async def collect(spec: QuerySpec = spec) -> list[Family]:
                return await self._collect_spec(spec)

            # The backstop timeout covers every database of a database-scope spec.
            backstop = spec.timeout * 4 + 2
            collectors.append(
                CachedCollector(
                    f"pg:{spec.name}", collect, spec.ttl, backstop, background=spec.background,
                    min_ttl=min_ttl,
                )
            )
            if spec.scope == "database":
                self._per_database.append(collectors[-1])
        return collectors

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    # --- reachability ------------------------------------------------------------------------

    async def ready(self, fresh: bool = False) -> bool:
        """Whether the server answers. `fresh` (the pg_up collector, first of every scrape)
        starts a new probe; the other collectors share the one in flight or a recent one."""
        now = time.monotonic()
        in_flight = self._probe_task is not None and not self._probe_task.done()
        stale = now - self._probed_at >= PROBE_REUSE_SECONDS
        if self._probe_task is None or (not in_flight and (fresh or stale)):
            self._probed_at = now
            self._probe_task = asyncio.create_task(self._probe(), name="postgres probe")
        try:
            # The probe gives up after connect_timeout, but psycopg may take a while longer to
            # abandon a hung query (it tries to cancel it on the server first): not our wait.
            return await asyncio.wait_for(
                asyncio.shield(self._probe_task), self.settings.connect_timeout + 0.5
            )
        except TimeoutError:
            return self._mark_down()

    def _up_fallback(self) -> list[Family]:
        """pg_up when even the probe could not finish in time: down."""
        self._mark_down()
        up = PG_UP.family()
        up.add(0)
        return [up]

    async def _probe(self) -> bool:
        """One round trip on the main connection (reconnecting when it is gone), within
        connect_timeout: a server or link that hangs must read as down, not stall pg_up."""
        timeout = self.settings.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._probe_once()
        except TimeoutError:
            main = self._sessions.get(self.settings.database)
            if main is not None and main.broken:  # cancelled mid-query: it was closed
                await self._drop(main)
            return self._mark(TimeoutError(f"no answer within {timeout:g}s"))

    async def _probe_once(self) -> bool:
        main = self._sessions.get(self.settings.database)
        if main is not None and not main.broken:
            try:
                result = await main.query(_PROBE_SQL, self.settings.connect_timeout)
                self._probe_values = result.rows[0]
                await self._discover(main)
                return self._mark(None)
            except psycopg.Error as exc:
                if not main.broken:  # the server answered, with an error: keep the connection
                    return self._mark(exc)
                # Restarted server or cut link: the other connections are gone as well; drop
                # the idle ones now rather than failing a collector on each of them later.
                for session in list(self._sessions.values()):
                    if session is main or not session.busy:
                        await self._drop(session)
        if time.monotonic() < self._retry_at:
            return self._mark_down()
        try:
            async with self._connecting(self.settings.database):
                main = self._sessions.get(self.settings.database)
                if main is None or main.broken:  # (a collector may have just reconnected)
                    main = await self._connect(self.settings.database)
            result = await main.query(_PROBE_SQL, self.settings.connect_timeout)
            self._probe_values = result.rows[0]
            await self._discover(main)
            return self._mark(None)
        except (psycopg.Error, OSError) as exc:
            return self._mark(exc)

    def _mark(self, error: BaseException | None) -> bool:
        if error is None:
            if not self.up:
                log.info("PostgreSQL %s is up", self.settings.describe())
            self.up, self._failures, self._last_error = True, 0, None
            return True
        self._failures += 1
        self._retry_at = time.monotonic() + backoff(self._failures)
        message = str(error).strip() or type(error).__name__
        if message != self._last_error:
            log.warning("PostgreSQL %s is unreachable: %s", self.settings.describe(), message)
        self._last_error = message
        return self._mark_down()

    def _mark_down(self) -> bool:
        self.up = False
        return False

    def _connecting(self, dbname: str) -> asyncio.Lock:
        """Held while deciding whether to connect to `dbname` and doing it: the collectors of
        a scrape run concurrently, and each must not open its own connection (all but one
        would be left over)."""
        return self._connect_locks.setdefault(dbname, asyncio.Lock())

    async def _connect(self, dbname: str) -> Session:
        session = await Session.open(self.settings, dbname)
        self._sessions[dbname] = session
        return session

    async def _drop(self, session: Session) -> None:
        if self._sessions.get(session.dbname) is session:
            del self._sessions[session.dbname]
        await session.close()

    async def _discover(self, main: Session) -> None:
        """Keep the list of databases current: new ones appear, dropped ones are forgotten."""
        s = self.settings
        if not s.auto_discover_databases or time.monotonic() - self._discovered_at < (
            s.discovery_interval
        ):
            return
        result = await main.query(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
            " ORDER BY datname",
            s.statement_timeout,
        )
        names = [
            row[0]
            for row in result.rows
            if row[0] not in s.exclude_databases
            and (not s.include_databases or row[0] in s.include_databases)
        ]
        if s.database not in names:
            names.insert(0, s.database)
        for gone in set(self._sessions) - set(names):
            await self._drop(self._sessions[gone])
        if names != self._databases:
            for collector in self._per_database:  # a new database should not wait for a TTL
                collector.invalidate()
        self._databases = names
        self._discovered_at = time.monotonic()

    async def _session(self, dbname: str) -> Session | None:
        """A connection to `dbname`, or None while it cannot be reached (retried later)."""
        session = self._sessions.get(dbname)
        if session is not None and not session.broken:
            return session
        async with self._connecting(dbname):
            session = self._sessions.get(dbname)
            if session is not None and not session.broken:  # another collector connected
                return session
            if session is not None:
                await self._drop(session)
            if time.monotonic() < self._db_retry_at.get(dbname, float("-inf")):
                return None
            try:
                session = await self._connect(dbname)
            except (psycopg.Error, OSError) as exc:
                failures = self._db_failures[dbname] = self._db_failures.get(dbname, 0) + 1
                self._db_retry_at[dbname] = time.monotonic() + backoff(failures)
                raise PartialFailure([], f"cannot connect to database {dbname}: {exc}") from None
            self._db_retry_at.pop(dbname, None)
            self._db_failures.pop(dbname, None)
            return session

    # --- collectors ---------------------------------------------------------------------------

    async def _collect_up(self) -> list[Family]:
        up = PG_UP.family()
        ok = await self.ready(fresh=True)
        up.add(1 if ok else 0)
        families = [up]
        if ok and self._probe_values:
            start, in_recovery, version = self._probe_values
            main = self._sessions.get(self.settings.database)
            static = PG_STATIC.family()
            if main is not None:
                short = _short_version(main.version)
                static.add(1, (("short_version", short), ("version", version)))
            start_time = PG_START_TIME.family()
            start_time.add(start)
            recovery = PG_IN_RECOVERY.family()
            recovery.add(1 if in_recovery else 0)
            families += [static, start_time, recovery]
        return families

    async def _collect_spec(self, spec: QuerySpec) -> list[Family]:
        if not await self.ready():
            raise Unavailable
        families = [Family(spec.metric_name(m), m.help, m.type) for m in spec.metrics]
        if spec.left_out:
            families.append(
                Family(spec.left_out_name(), f"Rows of {spec.name} not exported (over the limit).")
            )
        if spec.scope == "cluster":
            session = await self._cluster_session(spec)
            if spec.requires_table and not await self._readable(session, spec):
                raise Skipped(f"table {spec.requires_table} is missing or not readable")
            await self._run(spec, session, families, ())
            return families
        errors = []
        for dbname in list(self._databases):
            try:
                session = await self._session(dbname)
                if session is None:
                    continue
                if spec.requires_extension and spec.requires_extension not in session.extensions:
                    continue
                if spec.requires_table and not await self._readable(session, spec):
                    continue
                await self._run(spec, session, families, (("datname", dbname),))
            except PartialFailure as exc:
                errors.append(str(exc))
            except psycopg.Error as exc:
                errors.append(f"{dbname}: {exc}".strip())
        if errors:
            raise PartialFailure(families, "; ".join(errors))
        return families

    async def _readable(self, session: Session, spec: QuerySpec) -> bool:
        """Whether `requires_table` exists here and we may read it (checked on every run:
        an application may create it at any time, e.g. its migrations on first start)."""
        assert spec.requires_table is not None
        table = fill_placeholders(spec.requires_table, self.placeholders).replace("'", "''")
        result = await session.query(
            f"SELECT coalesce(has_table_privilege(to_regclass('{table}'), 'SELECT'), false)",
            spec.timeout,
        )
        return bool(result.rows[0][0])

    async def _main_session(self) -> Session:
        """The main connection; lost since the probe (a cut link), it is opened again."""
        main = await self._session(self.settings.database)
        if main is None:  # reconnecting is backing off: the next probe says pg_up 0
            raise Unavailable
        return main

    async def _cluster_session(self, spec: QuerySpec) -> Session:
        """The main connection, or for an extension's view any database that has it."""
        main = await self._main_session()
        if not spec.requires_extension or spec.requires_extension in main.extensions:
            return main
        for session in self._sessions.values():
            if spec.requires_extension in session.extensions and not session.broken:
                return session
        raise Skipped(
            f"extension {spec.requires_extension} is not installed",
            hint=f"(to enable: load it in shared_preload_libraries where it needs that, and run"
            f" CREATE EXTENSION {spec.requires_extension} in database {self.settings.database})",
        )

    async def _run(
        self,
        spec: QuerySpec,
        session: Session,
        families: list[Family],
        extra_labels: tuple[tuple[str, str], ...],
    ) -> None:
        variant = spec.variant_for(session.version)
        if variant is None:
            raise Skipped(f"no SQL for server version {session.version}")
        values = self.placeholders | ({"limit": str(spec.limit)} if spec.limit else {})
        sql = fill_placeholders(variant.sql, values)
        try:
            try:
                result = await session.query(sql, spec.timeout, spec.limit)
            except psycopg.OperationalError:
                # A statement or lock timeout leaves the connection fine: keep it (reconnecting
                # would churn connections, and may fail on a server that is out of slots).
                if not session.broken:
                    raise
                # The link was lost since the last probe (a cut, a server restart): one new
                # connection and one more try, so that a collector running on its own schedule
                # does not fail on a connection that is merely stale.
                await self._drop(session)
                fresh = await self._session(session.dbname)
                if fresh is None:
                    raise
                result = await fresh.query(sql, spec.timeout, spec.limit)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # syntax, missing relation or column, privileges, ...
            message = f"{type(exc).__name__}: {exc}".strip()
            raise QueryFailed(f"{spec.source}: {spec.name}.sql: {message}") from None
        index = {name: i for i, name in enumerate(result.columns)}
        wanted = spec.labels + [m.column for m in spec.metrics]
        missing = [c for c in wanted + (["total_rows"] if spec.left_out else []) if c not in index]
        if missing:
            raise QueryFailed(
                f"{spec.source}: {spec.name}.sql: the query returned no column(s)"
                f" {', '.join(missing)}"
            )
        label_idx = [(name, index[name]) for name in spec.labels]
        metric_idx = [
            (index[m.column], m.scale, fam)
            for m, fam in zip(spec.metrics, families[: len(spec.metrics)], strict=True)
        ]
        for row in result.rows:
            labels = tuple(
                (name, "" if row[i] is None else str(row[i])) for name, i in label_idx
            ) + extra_labels
            for i, scale, family in metric_idx:
                value = to_number(row[i])
                if value is not None:
                    family.add(value * scale, labels)
        if spec.left_out:
            total = result.rows[0][index["total_rows"]] if result.rows else 0
            families[-1].add(max(0, total - len(result.rows)), extra_labels)


    async def _collect_settings(self) -> list[Family]:
        """Every numeric server setting as pg_settings_<name>, in base units, named as
        postgres_exporter names them; names a queries.yaml entry already makes are left out."""
        if not await self.ready():
            raise Unavailable
        main = await self._main_session()
        result = await main.query(_SETTINGS_SQL, self.settings.statement_timeout)
        taken = {spec.metric_name(m) for spec in self.specs for m in spec.metrics}
        families = []
        for name, setting, unit, vartype, description in result.rows:
            converted = setting_value(setting, unit, vartype)
            if converted is None:
                continue
            value, suffix = converted
            metric = "pg_settings_" + name.replace(".", "_") + suffix
            if metric in taken:
                continue
            family = Family(metric, f"Server setting {name}: {description}")
            family.add(value)
            families.append(family)
        return families


# The exporter sets these for its own session, so pg_settings would show our values, not the
# server's: they are left out rather than reported wrongly.
_SESSION_SETTINGS = ("statement_timeout", "lock_timeout", "default_transaction_read_only")
_SETTINGS_SQL = (
    "SELECT name, setting, coalesce(unit, ''), vartype, short_desc FROM pg_settings"
    " WHERE vartype IN ('bool', 'integer', 'real')"
    f" AND name NOT IN ({', '.join(repr(n) for n in _SESSION_SETTINGS)})"
)

# unit -> (factor to the base unit, metric name suffix), as postgres_exporter converts them
_SETTING_UNITS: dict[str, tuple[float, str]] = {
    "": (1, ""),
    "ms": (0.001, "_seconds"),
    "s": (1, "_seconds"),
    "min": (60, "_seconds"),
    "h": (3600, "_seconds"),
    "d": (86400, "_seconds"),
    "B": (1, "_bytes"),
    "kB": (1024, "_bytes"),
    "8kB": (8192, "_bytes"),
    "16kB": (16384, "_bytes"),
    "32kB": (32768, "_bytes"),
    "MB": (1024**2, "_bytes"),
    "16MB": (16 * 1024**2, "_bytes"),
    "32MB": (32 * 1024**2, "_bytes"),
    "64MB": (64 * 1024**2, "_bytes"),
    "GB": (1024**3, "_bytes"),
    "TB": (1024**4, "_bytes"),
}


def setting_value(setting: str, unit: str, vartype: str) -> tuple[float, str] | None:
    """(value in base units, name suffix) of a pg_settings row; -1 ("off") stays -1."""
    if vartype == "bool":
        return (1.0 if setting == "on" else 0.0), ""
    if unit not in _SETTING_UNITS:
        return None
    try:
        raw = float(setting)
    except ValueError:
        return None
    factor, suffix = _SETTING_UNITS[unit]
    return (raw if raw == -1 else raw * factor), suffix


def placeholder_values(settings: PostgresSettings) -> dict[str, str]:
    """What queries.yaml's `{placeholders}` stand for (integers or a validated identifier)."""
    return {
        "statements_limit": str(settings.statements_limit),
        "slow_statement_ms": str(round(settings.slow_statement_threshold * 1000, 3)),
        "statement_text_length": str(settings.statement_text_length),
        "tables_limit": str(settings.tables_limit),
        "indexes_limit": str(settings.indexes_limit),
        "sequences_limit": str(settings.sequences_limit),
        "applications_limit": str(settings.applications_limit),
        "migrations_table": settings.migrations_table,
    }


def _short_version(version_num: int) -> str:
    major = version_num // 10000
    if major >= 10:
        return f"{major}.{version_num % 10000}.0"
    return f"{major}.{version_num // 100 % 100}.{version_num % 100}"
