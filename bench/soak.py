"""Soak: many fault cycles while scraping continuously, then check that nothing leaked.

    python -m bench.soak                      # 1,000 cycles (a few minutes)
    python -m bench.soak --cycles 200 --restart-every 10

One run starts a throwaway PostgreSQL (newest major found) and Redis, puts a TCP proxy
(bench/faults.py) between them and the exporter, and scrapes without pause while fault cycles
follow one another. A cycle is one fault and the recovery from it:

- `cut`: every connection to both servers is closed at once (a dropped link; the exporter
  reconnects within the next scrape, without a backoff wait, since nothing failed to connect);
- `outage`: both links refuse new connections and existing ones are cut, until a scrape has
  seen `pg_up 0` and `redis_up 0`; then the link comes back (the exporter waits out its backoff);
- `restart`: both servers are really stopped, a scrape sees them down, they are started again.

Measured on the 2-core test machine: a cut cycle takes about 0.1 s, an outage about 0.7 s (the
first backoff step is 0.5 s), a real restart of both servers about 1 s. 200 real restarts
would take several minutes, so the cycles rotate cut / outage and every `--restart-every`-th
cycle is a real restart (default every 10th: 20 real restarts in 200 cycles).

Every scrape must complete and parse (prometheus_client; no duplicate series) with `pg_up` and
`redis_up`; every cycle must end with both up again. After the last cycle the exporter's
connections on PostgreSQL (pg_stat_activity, application_name) and on Redis (CLIENT LIST, by
name and in total) must be back to what they were after warm-up, and the file descriptors and
the RSS of the process (exporter, proxy and scraper share it) must be flat. The exporter is
scraped in-process (`Target.scrape`, what `/metrics` serves), not over HTTP.

Prints the figures and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
import redis
import redis.asyncio.connection

from bench.exposition import Scrape
from bench.faults import (
    APPLICATION_NAME,
    FaultProxy,
    open_fds,
    pg_exporter_connections,
    redis_exporter_clients,
    rss_bytes,
)
from bench.soak_figures import Figures
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.config.loading import load_settings
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, find_postgres_binaries
from tmi_db_exporter.sources.postgres.queries import load_specs

SCRAPE_TIMEOUT = 5.0
RECOVERY_LIMIT = 60.0  # seconds a cycle may take to be seen recovered before it counts failed
SOAK_DATABASE = "soak_app"
PER_DATABASE_QUERY = """\
soak_db:
  help: One per database and scrape (keeps a connection to every database busy).
  scope: database
  sql: SELECT count(*) AS relations FROM pg_class
  metrics:
    - {column: relations, type: gauge, help: Relations in the database.}
"""


class Scraper:
    """Scrapes without pause; every scrape must complete, parse and say pg_up and redis_up."""

    def __init__(self, exporter: Target, figures: Figures) -> None:
        self.exporter = exporter
        self.figures = figures
        self.latest: tuple[float, float, float] = (float("-inf"), -1, -1)  # started, pg, redis
        self._stop = asyncio.Event()
        self._go = asyncio.Event()  # cleared: pause after the scrape in flight
        self._go.set()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        self._go.set()
        if self._task is not None:
            await self._task

    async def pause(self) -> None:
        """Return once the scrape in flight (if any) has finished; no new one starts."""
        self._idle.clear()
        self._go.clear()
        await self._idle.wait()

    def resume(self) -> None:
        self._go.set()

    async def _run(self) -> None:
        while not self._stop.is_set():
            if not self._go.is_set():
                self._idle.set()
                await self._go.wait()
                continue
            started = time.monotonic()
            try:
                blocks = await asyncio.wait_for(
                    self.exporter.scrape(SCRAPE_TIMEOUT), SCRAPE_TIMEOUT + 5
                )
                result = Scrape(b"".join(b.text for b in blocks).decode())
                self.latest = (started, result.value("pg_up"), result.value("redis_up"))
            except Exception as exc:  # a failed scrape is the finding, not a crash
                self.figures.failed_scrapes += 1
                if len(self.figures.failures) < 20:
                    self.figures.failures.append(f"{type(exc).__name__}: {exc}"[:500])
            self.figures.scrapes += 1
            await asyncio.sleep(0.005)  # let the fault driver and the proxy run
        self._idle.set()

    async def seen(self, since: float, up: float) -> bool:
        """Wait for a scrape started after `since` that says pg_up == redis_up == up."""
        deadline = time.monotonic() + RECOVERY_LIMIT
        while time.monotonic() < deadline:
            started, pg_up, redis_up = self.latest
            if started >= since and pg_up == up and redis_up == up:
                return True
            await asyncio.sleep(0.01)
        return False


def _pg_clients(server: LocalPostgres) -> int:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()"
        ).fetchone()
    return count


def _redis_clients(server: LocalRedis) -> int:
    client = redis.Redis(host=server.host, port=server.port, password=server.password)
    try:
        return len(client.client_list()) - 1
    finally:
        client.close()


STEADY = (
    {"postgres": 1, SOAK_DATABASE: 1},  # one connection per database
    2,  # and no other client backend
    {APPLICATION_NAME: 1, f"{APPLICATION_NAME}-census": 1},  # INFO and the key census
    2,  # and no other Redis client
)


async def _settled(pg: LocalPostgres, rd: LocalRedis) -> None:
    """Wait (bounded) for the steady state: a connection that a fault cut is replaced on its
    next use (the key census' every 2 s), a little after the cycle was seen recovered."""
    for _ in range(150):
        state = await asyncio.to_thread(lambda: (
            pg_exporter_connections(pg), _pg_clients(pg),
            redis_exporter_clients(rd), _redis_clients(rd),
        ))
        if state == STEADY:
            return
        await asyncio.sleep(0.1)


async def run_soak(
    pg: LocalPostgres,
    rd: LocalRedis,
    cycles: int,
    restart_every: int = 10,
    warmup: int = 10,
    workdir: Path | None = None,
    progress: Any = None,
) -> Figures:
    """`cycles` fault cycles against running servers `pg` and `rd` (both restarted on the way);
    the first `warmup` cycles come before the 'before' figures are taken."""
    figures = Figures()
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {SOAK_DATABASE}")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        queries = workdir / "soak_queries.yaml"
        queries.write_text(PER_DATABASE_QUERY)
        async with FaultProxy(pg.port) as pg_proxy, FaultProxy(rd.port) as redis_proxy:
            env = {
                "POSTGRES_HOST": pg_proxy.host, "POSTGRES_PORT": str(pg_proxy.port),
                "POSTGRES_USER": pg.user, "POSTGRES_SSL_MODE": "disable",
                "POSTGRES_CONNECT_TIMEOUT": "2", "POSTGRES_DISCOVERY_INTERVAL": "1s",
                "REDIS_HOST": redis_proxy.host, "REDIS_PORT": str(redis_proxy.port),
                "REDIS_TIMEOUT": "1", "REDIS_SLOWLOG_INTERVAL": "1s",
                "REDIS_POSTURE_INTERVAL": "2s", "REDIS_KEY_CENSUS_INTERVAL": "2s",
                "TMI_EXPORTER_EXTRA_QUERIES_FILES": str(queries),
                # Every scrape reaches the servers, so that each fault meets a query at once.
                "TMI_EXPORTER_MIN_TTL": "0",
            }
            if rd.password:
                env["REDIS_PASSWORD"] = rd.password
            settings = load_settings(env=env)
            exporter = Target(settings, load_specs(settings))
            scraper = Scraper(exporter, figures)
            scraper.start()
            started = time.monotonic()
            try:
                if not await scraper.seen(started, 1):
                    raise RuntimeError("the exporter never saw both servers up")
                for cycle in range(1, cycles + 1):
                    if cycle == warmup + 1:
                        await _settled(pg, rd)
                        await _measure(pg, rd, figures, scraper, before=True)
                    cycle_started = time.monotonic()
                    kind = await _fault(cycle, restart_every, pg, rd, pg_proxy, redis_proxy,
                                        scraper)
                    setattr(figures, kind, getattr(figures, kind) + 1)
                    figures.seconds_by_kind[kind] = figures.seconds_by_kind.get(kind, 0.0) + (
                        time.monotonic() - cycle_started
                    )
                    figures.cycles += 1
                    if progress is not None and cycle % 50 == 0:
                        progress(f"{cycle} cycles, {figures.scrapes} scrapes, "
                                 f"{figures.failed_scrapes} failed")
                if warmup >= cycles:  # (tiny runs) measure before at the end at least
                    await _settled(pg, rd)
                    await _measure(pg, rd, figures, scraper, before=True)
                await _settled(pg, rd)
                await _measure(pg, rd, figures, scraper, before=False)
            finally:
                await scraper.stop()
                await exporter.close()
            figures.seconds = time.monotonic() - started
    return figures


async def _fault(cycle: int, restart_every: int, pg: LocalPostgres, rd: LocalRedis,
                 pg_proxy: FaultProxy, redis_proxy: FaultProxy, scraper: Scraper) -> str:
    figures = scraper.figures
    if restart_every and cycle % restart_every == 0:
        kind = "restarts"
        await asyncio.gather(asyncio.to_thread(pg.kill), asyncio.to_thread(rd.kill))
        if not await scraper.seen(time.monotonic(), 0):
            figures.unrecovered_cycles += 1
        await asyncio.gather(asyncio.to_thread(pg.start_again), asyncio.to_thread(rd.start_again))
    elif cycle % 2:
        kind = "cuts"
        await pg_proxy.cut()
        await redis_proxy.cut()
    else:
        kind = "outages"
        await pg_proxy.refuse()
        await redis_proxy.refuse()
        await pg_proxy.cut()
        await redis_proxy.cut()
        if not await scraper.seen(time.monotonic(), 0):
            figures.unrecovered_cycles += 1
        await pg_proxy.restore()
        await redis_proxy.restore()
    if not await scraper.seen(time.monotonic(), 1):
        figures.unrecovered_cycles += 1
    return kind


async def _measure(pg: LocalPostgres, rd: LocalRedis, figures: Figures, scraper: Scraper,
                   before: bool) -> None:
    """Connections on the servers, and this process between two scrapes (no collection in
    flight, so that live tasks and connection objects can be compared exactly)."""
    pg_named, pg_all, redis_named, redis_all = await asyncio.to_thread(lambda: (
        pg_exporter_connections(pg), _pg_clients(pg),
        redis_exporter_clients(rd), _redis_clients(rd),
    ))
    await scraper.pause()
    gc.collect()
    side = "before" if before else "after"
    objects = {"asyncio tasks": len(asyncio.all_tasks()), "psycopg connections": 0,
               "redis connections": 0}
    for obj in gc.get_objects():
        if isinstance(obj, psycopg.AsyncConnection):
            objects["psycopg connections"] += 1
        elif isinstance(obj, redis.asyncio.connection.AbstractConnection):
            objects["redis connections"] += 1
    setattr(figures, f"objects_{side}", objects)
    setattr(figures, f"pg_connections_{side}", pg_named)
    setattr(figures, f"pg_clients_{side}", pg_all)
    setattr(figures, f"redis_clients_{side}", redis_named)
    setattr(figures, f"redis_all_clients_{side}", redis_all)
    setattr(figures, f"fds_{side}", open_fds())
    setattr(figures, f"rss_{side}", rss_bytes())
    scraper.resume()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="fault cycles (default 1000)")
    parser.add_argument("--restart-every", type=int, default=10, metavar="N",
                        help="every N-th cycle really restarts both servers (0: never)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="cycles before the 'before' figures are taken")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--verbose", action="store_true", help="show the exporter's warnings")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    installs = find_postgres_binaries()
    if not installs:
        print("no PostgreSQL found", file=sys.stderr)
        return 2
    with LocalPostgres(installs[0]) as pg, LocalRedis(password="soak-secret") as rd:
        figures = asyncio.run(run_soak(
            pg, rd, args.cycles, args.restart_every, args.warmup,
            progress=lambda line: print(line, flush=True),
        ))
    print(figures.report())
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    problems = figures.problems()
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

__all__ = ["APPLICATION_NAME", "Figures", "run_soak"]
