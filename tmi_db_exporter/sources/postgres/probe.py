"""`pg_up` and the probe behind it: whether PostgreSQL answers, asked once per scrape.

A probe, shared by all collectors of one scrape, decides `pg_up` and reconnects with backoff
after a failure, so a restarted server is picked up without restarting the exporter. Its
answer also gives the server's version, start time and recovery state.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.contract import Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.sources.postgres.budgets import (
    BUSY_CLOSE_WAIT,
    PROBE_REUSE_SECONDS,
    probe_wait,
)
from tmi_db_exporter.sources.postgres.connections import Connections
from tmi_db_exporter.sources.postgres.discovery import Databases
from tmi_db_exporter.sources.postgres.session import Session

METRICS = MetricGroup("PostgreSQL (built in)", __name__)
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

_PROBE_SQL = (
    "SELECT extract(epoch FROM pg_postmaster_start_time())::float8, pg_is_in_recovery(),"
    " version()"
)


class Probe:
    """Whether the server answers, with reconnect and backoff, and the `pg_up` collector."""

    def __init__(
        self, settings: PostgresSettings, connections: Connections, databases: Databases
    ) -> None:
        self.settings = settings
        self.reachability = Reachability("PostgreSQL", settings.describe())
        self._connections = connections
        self._databases = databases
        self._task: asyncio.Task[bool] | None = None
        self._started_at = float("-inf")  # monotonic
        self._answer: tuple[Any, ...] = ()  # the last successful probe's row

    @property
    def up(self) -> bool:
        return self.reachability.up

    async def ready(self, fresh: bool = False) -> bool:
        """Whether the server answers. `fresh` (the pg_up collector, first of every scrape)
        starts a new probe; the other collectors share the one in flight or a recent one."""
        now = time.monotonic()
        in_flight = self._task is not None and not self._task.done()
        stale = now - self._started_at >= PROBE_REUSE_SECONDS
        if self._task is None or (not in_flight and (fresh or stale)):
            self._started_at = now
            self._task = asyncio.create_task(self._probe(), name="postgres probe")
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), probe_wait(self.settings))
        except TimeoutError:
            return self.reachability.down()

    async def close(self) -> None:
        """Stop a probe in flight: collectors wait for it through a shield, so closing them
        leaves it running (and reconnecting) on its own."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=BUSY_CLOSE_WAIT)

    async def require_up(self) -> None:
        """Raise Unavailable (pg_up says why) unless the server answers."""
        if not await self.ready():
            raise Unavailable

    async def _probe(self) -> bool:
        """One round trip on the main connection (reconnecting when it is gone), within
        connect_timeout: a server or link that hangs must read as down, not stall pg_up."""
        timeout = self.settings.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._probe_once()
        except TimeoutError:
            main = self._connections.main
            if main is not None and main.broken:  # cancelled mid-query: it was closed
                await self._connections.drop(main)
            return self.reachability.failed(TimeoutError(f"no answer within {timeout:g}s"))

    async def _probe_once(self) -> bool:
        main = self._connections.main
        if main is not None and not main.broken:
            try:
                return await self._ask(main)
            except psycopg.Error as exc:
                if not main.broken:  # the server answered, with an error: keep the connection
                    return self.reachability.failed(exc)
                await self._connections.drop_idle(main)
        if self.reachability.backoff.waiting:
            return self.reachability.down()
        try:
            return await self._ask(await self._connections.reopen_main())
        except (psycopg.Error, OSError) as exc:
            return self.reachability.failed(exc)

    async def _ask(self, main: Session) -> bool:
        """The probe's round trip; a server that answers also gets its databases listed."""
        result = await main.query(_PROBE_SQL, self.settings.connect_timeout)
        self._answer = result.rows[0]
        await self._databases.discover(main)
        return self.reachability.succeeded()

    async def collect_up(self) -> list[Family]:
        up = PG_UP.family()
        ok = await self.ready(fresh=True)
        up.add(1 if ok else 0)
        families = [up]
        if ok and self._answer:
            start, in_recovery, version = self._answer
            main = self._connections.main
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

    def up_fallback(self) -> list[Family]:
        """pg_up when even the probe could not finish in time: down."""
        self.reachability.down()
        up = PG_UP.family()
        up.add(0)
        return [up]


def _short_version(version_num: int) -> str:
    """`server_version_num` as postgres_exporter's short_version label writes it."""
    major = version_num // 10000
    if major >= 10:
        return f"{major}.{version_num % 10000}.0"
    return f"{major}.{version_num // 100 % 100}.{version_num % 100}"
