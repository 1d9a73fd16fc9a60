"""Throwaway TMI-shaped PostgreSQL and Redis for `tmi-db-exporter demo` and the tests.

Starts private servers (see `servers`), fills them (see `data`) and keeps a light load running
(see `load`). Everything is torn down on exit, including on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tmi_db_exporter.config.settings import PostgresSettings, RedisSettings, Settings
from tmi_db_exporter.demo.data import seed_postgres, seed_redis
from tmi_db_exporter.demo.load import run_load
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, find_postgres_binaries

log = logging.getLogger(__name__)


@dataclass
class DemoEnvironment:
    """Where the demo servers listen; fields are None for a server that was not started."""

    postgres_host: str | None = None
    postgres_port: int | None = None
    postgres_user: str | None = None
    postgres_database: str | None = "tmi"
    redis_host: str | None = None
    redis_port: int | None = None
    redis_url: str | None = None
    postgres_dsn: str | None = None  # libpq keyword DSN for database tmi

    def settings(self, listen_address: str, listen_port: int) -> Settings:
        """The exporter's settings for these servers."""
        postgres = redis = None
        if self.postgres_port is not None:
            postgres = PostgresSettings(
                host=self.postgres_host,
                port=self.postgres_port,
                user=self.postgres_user,
                database=self.postgres_database,
                ssl_mode="disable",
            )
        if self.redis_port is not None:
            redis = RedisSettings(host=self.redis_host, port=self.redis_port)
        return Settings(
            listen_address=listen_address, listen_port=listen_port, postgres=postgres, redis=redis
        )


async def _start_all(servers: Iterable[LocalPostgres | LocalRedis]) -> None:
    """Start servers in threads. Even when cancelled, wait for every start to finish, so
    that the caller's stop() sees (and ends) whatever was launched."""
    starts = [asyncio.ensure_future(asyncio.to_thread(s.start)) for s in servers]
    if not starts:
        return
    finished = asyncio.ensure_future(asyncio.wait(starts))
    try:
        await asyncio.shield(finished)
    finally:
        if not finished.done():
            await finished
        errors = [t.exception() for t in starts if t.done() and not t.cancelled()]
    for error in errors:
        if error is not None:
            raise error


def _stop_quietly(server: LocalPostgres | LocalRedis) -> None:
    try:
        server.stop()
    except Exception:  # keep stopping the others
        log.warning("could not stop %r", server, exc_info=True)


@asynccontextmanager
async def demo_environment(*, postgres: bool = True,
                           redis: bool = True) -> AsyncIterator[DemoEnvironment]:
    """Start, seed and load demo servers; stop everything on exit, whatever the reason."""
    pg: LocalPostgres | None = None
    if postgres:
        binaries = find_postgres_binaries()
        if not binaries:
            raise RuntimeError("demo: no PostgreSQL server binaries found (initdb, postgres)")
        pg = LocalPostgres(binaries=binaries[0])
    rd = LocalRedis() if redis else None
    servers: list[LocalPostgres | LocalRedis] = [s for s in (pg, rd) if s is not None]
    try:
        await _start_all(servers)
        env = DemoEnvironment(postgres_database=None)
        if pg is not None:
            env.postgres_host, env.postgres_port, env.postgres_user = pg.host, pg.port, pg.user
            env.postgres_database, env.postgres_dsn = "tmi", pg.dsn("tmi")
            await seed_postgres(pg.dsn("postgres"))
        if rd is not None:
            env.redis_host, env.redis_port, env.redis_url = rd.host, rd.port, rd.url
            await seed_redis(rd.url)
        stop = asyncio.Event()
        load = asyncio.create_task(run_load(env.postgres_dsn, env.redis_url, stop))
        try:
            yield env
        finally:
            stop.set()
            await asyncio.gather(load, return_exceptions=True)
    finally:
        stopping = [asyncio.to_thread(_stop_quietly, s) for s in servers]
        await asyncio.shield(asyncio.gather(*stopping, return_exceptions=True))
