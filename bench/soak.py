"""Soak: many fault cycles while a real exporter process is scraped over HTTPS, then check that
nothing leaked.

    python -m bench.soak                      # 1,000 cycles (some minutes)
    python -m bench.soak --cycles 200 --restart-every 10 --reload-every 7 --sigterm-every 25

One run starts a throwaway PostgreSQL (newest major found) and Redis, puts a TCP proxy
(bench/faults.py) between them and the exporter, and starts the exporter as operators run it:
`python -m tmi_db_exporter run --enable-lifecycle` with a web config that asks for TLS and basic
auth (bench/soak_exporter.py). A scraper fetches /metrics over HTTPS without pause while fault
cycles follow one another. A cycle is one fault and the recovery from it:

- `cut`: every connection to both servers is closed at once (a dropped link; the exporter
  reconnects within the next scrape, without a backoff wait, since nothing failed to connect);
- `outage`: both links refuse new connections and existing ones are cut, until a scrape has
  seen `pg_up 0` and `redis_up 0`; then the link comes back (the exporter waits out its backoff);
- `restart`: both servers are really stopped, a scrape sees them down, they are started again;
- `reload`: alternately SIGHUP and `POST /-/reload`, at a random moment while scraping goes on;
  the POST must answer 200 within 5 s, a SIGHUP must show within 5 s as a newer
  `tmi_db_exporter_config_last_reload_success_timestamp_seconds`; afterwards the exporter's
  connections on both servers must settle back to the steady ones;
- `sigterm`: SIGTERM to the exporter at a random moment (mid-scrape, mid-census): it must be
  gone within 5 s with exit code 0 and no traceback on stderr, and none of its connections may
  stay on either server (pg_stat_activity by application_name, CLIENT LIST by name); then a new
  process starts on the same port and the cycles go on against it.

Every `--sigterm-every`-th cycle is a SIGTERM (none so late that the last process would serve
fewer than 2 x `--warmup` cycles), every `--restart-every`-th a real restart, every
`--reload-every`-th a reload (in that order when they coincide), and the others alternate cut
and outage. Measured on the 2-core test machine: a cut takes about 0.1 s, an outage about 0.65 s
(the first backoff step is 0.5 s), a real restart about 0.7 s, a reload about 0.4 s, a SIGTERM
cycle about 3 s (measuring the old process once its connections settled, which waits for the
key census to replace a cut one, up to 2 s; its exit, a few hundredths; a new process answering
/healthz, 0.7 s; a scrape that sees both servers up).

Every scrape must answer 200 over TLS with the password, parse (prometheus_client; no duplicate
series) and carry `pg_up` and `redis_up`; every cycle must end with both up again. A scrape that
overlaps a SIGTERM cycle's restart window (from the SIGTERM until the new process answers
/healthz) is counted apart, its failures too: nobody listens then. After the last cycle the
exporter's connections on PostgreSQL (pg_stat_activity, application_name) and on Redis (CLIENT
LIST, by name and in total) must be what they were after warm-up.

Process figures belong to the exporter process (psutil on its pid, never this process: the proxy
and the scraper run here). Each process is measured twice, with the servers settled and the
scraper paused: once it has served `--warmup` cycles, and just before its SIGTERM (the last one:
at the end). Its file descriptors must not grow, its RSS must stay within a limit and its TCP
sockets by peer (to each proxy, listening, accepted) must be the same. Figures never compare two
processes. Live Python objects (gc) cannot be counted in another process; the sockets replace
the connection objects the in-process soak used to count.

Prints the figures and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import redis

from bench.faults import (
    APPLICATION_NAME,
    FaultProxy,
    pg_exporter_connections,
    redis_exporter_clients,
)
from bench.soak_exporter import (
    RELOAD_TIME,
    STOP_LIMIT,
    ExporterProcess,
    Held,
    Https,
    WebSetup,
    write_web_config,
)
from bench.soak_figures import Figures, ProcessFigures
from tmi_db_exporter.demo.servers import (
    LocalPostgres,
    LocalRedis,
    find_postgres_binaries,
    free_port,
)

RECOVERY_LIMIT = 60.0  # seconds a cycle may take to be seen recovered before it counts failed
SETTLE_LIMIT = 10.0  # after a reload, connections are back to the steady ones within this
START_LIMIT = 30.0  # a new exporter process answers /healthz within this
SOAK_DATABASE = "soak_app"
PER_DATABASE_QUERY = """\
soak_db:
  help: One per database and scrape (keeps a connection to every database busy).
  scope: database
  sql: SELECT count(*) AS relations FROM pg_class
  metrics:
    - {column: relations, type: gauge, help: Relations in the database.}
"""
STEADY = (
    {"postgres": 1, SOAK_DATABASE: 1},  # one connection per database
    2,  # and no other client backend
    {APPLICATION_NAME: 1, f"{APPLICATION_NAME}-census": 1},  # INFO and the key census
    2,  # and no other Redis client
)


@dataclass(frozen=True)
class Seen:
    """The last successful scrape: when it started and what it said."""

    started: float
    pg_up: float
    redis_up: float
    reloaded_at: float  # tmi_db_exporter_config_last_reload_success_timestamp_seconds


class Scraper:
    """Scrapes without pause; outside restart windows every scrape must succeed."""

    def __init__(self, https: Https, figures: Figures) -> None:
        self.https = https
        self.figures = figures
        self.latest = Seen(float("-inf"), -1, -1, 0.0)
        self.restarting = False  # a SIGTERM cycle's window: from the SIGTERM until listening
        self.restart_ended = float("-inf")
        self._renew = False
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
            self._task = None

    async def pause(self) -> None:
        """Return once the scrape in flight (if any) has finished and the keep-alive
        connection is closed; no new scrape starts."""
        self._idle.clear()
        self._go.clear()
        await self._idle.wait()
        await self.https.renew()

    def resume(self) -> None:
        self._go.set()

    def open_window(self) -> None:
        self.restarting = True

    def close_window(self) -> None:
        self._renew = True  # the keep-alive connection went with the old process
        self.restart_ended = time.monotonic()
        self.restarting = False

    async def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            if not self._go.is_set():
                self._idle.set()
                await self._go.wait()
                continue
            if self._renew:
                self._renew = False
                await self.https.renew()
            started = time.monotonic()
            error = None
            try:
                result = await self.https.scrape(fresh=count % 2 == 1)
                self.latest = Seen(started, result.value("pg_up"), result.value("redis_up"),
                                   result.value(RELOAD_TIME))
            except Exception as exc:  # a failed scrape is the finding, not a crash
                error = f"{type(exc).__name__}: {exc}"
            count += 1
            self._count(started, error)
            await asyncio.sleep(0.005 if error is None else 0.05)
        self._idle.set()

    def _count(self, started: float, error: str | None) -> None:
        figures = self.figures
        if self.restarting or self.restart_ended >= started:
            figures.restart_scrapes += 1
            figures.restart_refused += int(error is not None)
        else:
            figures.scrapes += 1
            if error is not None:
                figures.failed_scrapes += 1
                figures.fail(error)

    async def reloaded(self, since: float, previous: float, limit: float) -> bool:
        """Wait for a scrape started after `since` that shows a reload newer than `previous`."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.latest.started >= since and self.latest.reloaded_at > previous:
                return True
            await asyncio.sleep(0.01)
        return False


def cycle_kind(cycle: int, cycles: int, restart_every: int, reload_every: int,
               sigterm_every: int, warmup: int) -> str:
    if sigterm_every and cycle % sigterm_every == 0 and cycles - cycle >= 2 * warmup:
        return "sigterms"
    if restart_every and cycle % restart_every == 0:
        return "restarts"
    if reload_every and cycle % reload_every == 0:
        return "reloads"
    return "cuts" if cycle % 2 else "outages"


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


class Soak:
    """The running soak: servers, proxies, the current exporter process and the scraper."""

    def __init__(self, pg: LocalPostgres, rd: LocalRedis, proxies: tuple[FaultProxy, FaultProxy],
                 web: WebSetup, workdir: Path, warmup: int, seed: int) -> None:
        self.pg, self.rd = pg, rd
        self.pg_proxy, self.redis_proxy = proxies
        self.web, self.workdir, self.warmup = web, workdir, warmup
        self.rng = random.Random(seed)
        self.port = free_port()
        self.figures = Figures()
        self.https = Https(self.port, web)
        self.scraper = Scraper(self.https, self.figures)
        self.exporter: ExporterProcess | None = None
        self.measured_at = 0  # the current process' cycles at its first measurement
        self._measured_before = False  # the current process
        self._servers_measured = False
        self.queries = workdir / "soak_queries.yaml"
        self.queries.write_text(PER_DATABASE_QUERY)

    @property
    def process(self) -> ProcessFigures:
        return self.figures.last_process

    def _env(self) -> dict[str, str]:
        env = {
            "POSTGRES_HOST": self.pg_proxy.host, "POSTGRES_PORT": str(self.pg_proxy.port),
            "POSTGRES_USER": self.pg.user, "POSTGRES_SSL_MODE": "disable",
            "POSTGRES_CONNECT_TIMEOUT": "2", "POSTGRES_DISCOVERY_INTERVAL": "1s",
            "REDIS_HOST": self.redis_proxy.host, "REDIS_PORT": str(self.redis_proxy.port),
            "REDIS_TIMEOUT": "1", "REDIS_SLOWLOG_INTERVAL": "1s",
            "REDIS_POSTURE_INTERVAL": "2s", "REDIS_KEY_CENSUS_INTERVAL": "2s",
            "TMI_EXPORTER_EXTRA_QUERIES_FILES": str(self.queries),
            # Every scrape reaches the servers, so that each fault meets a query at once.
            "TMI_EXPORTER_MIN_TTL": "0",
        }
        if self.rd.password:
            env["REDIS_PASSWORD"] = self.rd.password
        return env

    # --- the run ----------------------------------------------------------------------------

    async def run(self, cycles: int, every: dict[str, int], progress: Any = None) -> None:
        started = time.monotonic()
        await self._start_exporter()
        self.scraper.start()
        if not await self._recovered(started, 1):
            raise RuntimeError("the exporter never saw both servers up")
        for cycle in range(1, cycles + 1):
            if self.process.cycles == self.warmup and not self._measured_before:
                await self._measure(before=True)
            kind = cycle_kind(cycle, cycles, warmup=self.warmup, **every)
            cycle_started = time.monotonic()
            await getattr(self, f"_{kind}")()
            figures = self.figures
            setattr(figures, kind, getattr(figures, kind) + 1)
            figures.seconds_by_kind[kind] = figures.seconds_by_kind.get(kind, 0.0) + (
                time.monotonic() - cycle_started
            )
            figures.cycles += 1
            if kind != "sigterms":
                self.process.cycles += 1
            if progress is not None and cycle % 50 == 0:
                progress(f"{cycle} cycles, {figures.scrapes} scrapes, "
                         f"{figures.failed_scrapes} failed")
        if not self._measured_before:  # (tiny runs) measure before at the end at least
            await self._measure(before=True)
        await self._measure(before=False)
        await self.scraper.stop()
        await self._stop_exporter()
        self.figures.seconds = time.monotonic() - started

    async def close(self) -> None:
        """Whatever is left when the run failed half-way."""
        await self.scraper.stop()
        await self.https.close()
        if self.exporter is not None:
            self.exporter.kill()

    # --- the exporter process ---------------------------------------------------------------

    async def _start_exporter(self) -> None:
        started = time.monotonic()
        log = self.workdir / f"exporter-{len(self.figures.processes) + 1}.log"
        self.exporter = ExporterProcess(self._env(), self.port, self.web, log)
        self.figures.processes.append(ProcessFigures(self.exporter.pid))
        self._measured_before = False
        while not await self.https.healthy():
            if not self.exporter.running:
                raise RuntimeError(f"the exporter exited at start:\n{self.exporter.stderr()}")
            if time.monotonic() - started > START_LIMIT:
                raise RuntimeError(f"the exporter did not listen within {START_LIMIT}s")
            await asyncio.sleep(0.05)
        took = time.monotonic() - started
        self.figures.start_seconds_max = max(self.figures.start_seconds_max, took)

    async def _stop_exporter(self) -> None:
        """SIGTERM; record how it ended and whether its connections went with it."""
        assert self.exporter is not None
        ended = await asyncio.to_thread(self.exporter.terminate)
        process = self.process
        process.exit_seconds, process.exit_code = ended.seconds, ended.code
        process.traceback, process.stderr_tail = ended.traceback, ended.stderr_tail
        self.figures.exit_seconds_max = max(self.figures.exit_seconds_max, ended.seconds)
        process.connections_left = not await self._gone()

    async def _gone(self) -> bool:
        """None of the exporter's connections left on either server (bounded wait: a server
        notices a closed socket a moment later)."""
        deadline = time.monotonic() + STOP_LIMIT
        while True:
            state = await asyncio.to_thread(lambda: (
                pg_exporter_connections(self.pg), redis_exporter_clients(self.rd)))
            if state == ({}, {}):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)

    # --- watching ---------------------------------------------------------------------------

    async def _recovered(self, since: float, up: float) -> bool:
        """Wait for a scrape started after `since` that says pg_up == redis_up == up."""
        deadline = time.monotonic() + RECOVERY_LIMIT
        while time.monotonic() < deadline:
            latest = self.scraper.latest
            if latest.started >= since and latest.pg_up == up and latest.redis_up == up:
                return True
            if self.exporter is not None and not self.exporter.running:
                raise RuntimeError(f"the exporter died:\n{self.exporter.stderr()[-2000:]}")
            await asyncio.sleep(0.01)
        self.figures.unrecovered_cycles += 1
        return False

    async def _servers(self) -> tuple[dict[str, int], int, dict[str, int], int]:
        return await asyncio.to_thread(lambda: (
            pg_exporter_connections(self.pg), _pg_clients(self.pg),
            redis_exporter_clients(self.rd), _redis_clients(self.rd),
        ))

    async def _settled(self) -> tuple[bool, tuple[dict[str, int], int, dict[str, int], int]]:
        """Wait (bounded) for the steady connections: one cut by a fault is replaced on its
        next use (the key census' every 2 s), a little after the cycle was seen recovered."""
        deadline = time.monotonic() + SETTLE_LIMIT
        while True:
            state = await self._servers()
            if state == STEADY:
                return True, state
            if time.monotonic() > deadline:
                return False, state
            await asyncio.sleep(0.1)

    async def _measure(self, before: bool) -> None:
        """The servers (the first time and at the end) and the exporter process, with the
        connections settled and no scrape in flight. Of a few samples the one with the fewest
        file descriptors counts (the security posture check opens a connection for a moment)."""
        assert self.exporter is not None
        _, state = await self._settled()
        figures, process = self.figures, self.process
        if not before or not self._servers_measured:
            self._servers_measured = True
            side = "before" if before else "after"
            for name, value in zip(("pg_connections", "pg_clients", "redis_clients",
                                    "redis_all_clients"), state, strict=True):
                setattr(figures, f"{name}_{side}", value)
        await self.scraper.pause()
        peers = {self.pg_proxy.port: "postgres", self.redis_proxy.port: "redis"}
        samples: list[Held] = []
        for _ in range(8):
            await asyncio.sleep(0.04)
            samples.append(await asyncio.to_thread(self.exporter.held, peers))
        held = min(samples, key=lambda h: h.fds)
        self.scraper.resume()
        if before:
            process.fds_before, process.rss_before = held.fds, held.rss
            process.sockets_before = held.sockets
            self.measured_at = process.cycles
            self._measured_before = True
        else:
            process.fds_after, process.rss_after = held.fds, held.rss
            process.sockets_after = held.sockets
            process.measured = True
            process.measured_cycles = process.cycles - self.measured_at

    # --- the cycles -------------------------------------------------------------------------

    async def _cuts(self) -> None:
        await self.pg_proxy.cut()
        await self.redis_proxy.cut()
        await self._recovered(time.monotonic(), 1)

    async def _outages(self) -> None:
        await self.pg_proxy.refuse()
        await self.redis_proxy.refuse()
        await self.pg_proxy.cut()
        await self.redis_proxy.cut()
        await self._recovered(time.monotonic(), 0)
        await self.pg_proxy.restore()
        await self.redis_proxy.restore()
        await self._recovered(time.monotonic(), 1)

    async def _restarts(self) -> None:
        pg, rd = self.pg, self.rd
        await asyncio.gather(asyncio.to_thread(pg.kill), asyncio.to_thread(rd.kill))
        await self._recovered(time.monotonic(), 0)
        await asyncio.gather(asyncio.to_thread(pg.start_again), asyncio.to_thread(rd.start_again))
        await self._recovered(time.monotonic(), 1)

    async def _reloads(self) -> None:
        assert self.exporter is not None
        figures = self.figures
        await asyncio.sleep(self.rng.uniform(0, 0.3))
        by_signal = figures.reloads % 2 == 0
        started = time.monotonic()
        if by_signal:
            figures.reloads_by_signal += 1
            previous = self.scraper.latest.reloaded_at
            self.exporter.reload_by_signal()
            ok = await self.scraper.reloaded(started, previous, STOP_LIMIT)
            what = "SIGHUP: no newer reload timestamp"
        else:
            try:
                status = await self.https.reload()
                what = f"POST /-/reload answered {status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status, what = 0, f"POST /-/reload: {type(exc).__name__}: {exc}"
            ok = status == 200
        took = time.monotonic() - started
        figures.reload_seconds_max = max(figures.reload_seconds_max, took)
        if not ok or took > STOP_LIMIT:
            figures.failed_reloads += 1
            figures.fail(f"{what} after {took:.1f}s")
        settled, state = await self._settled()
        if not settled:
            figures.unsettled_cycles += 1
            figures.fail(f"after a reload the connections stayed at {state}")
        await self._recovered(started, 1)

    async def _sigterms(self) -> None:
        if self._measured_before:
            await self._measure(before=False)
        await asyncio.sleep(self.rng.uniform(0, 0.5))  # mid-scrape, mid-census, ...
        self.scraper.open_window()
        await self._stop_exporter()
        await self._start_exporter()
        self.scraper.close_window()
        await self._recovered(time.monotonic(), 1)


async def run_soak(
    pg: LocalPostgres,
    rd: LocalRedis,
    cycles: int,
    *,
    restart_every: int = 10,
    reload_every: int = 7,
    sigterm_every: int = 25,
    warmup: int = 10,
    seed: int = 13,
    workdir: Path | None = None,
    progress: Any = None,
) -> Figures:
    """`cycles` fault cycles against running servers `pg` and `rd` (both restarted on the way);
    each exporter process is measured once it has served `warmup` cycles and at its end.
    `workdir` keeps the exporter's logs, web config and certificates (default: a temporary
    directory, removed afterwards)."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {SOAK_DATABASE}")
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        web = await asyncio.to_thread(write_web_config, workdir / "web")
        async with FaultProxy(pg.port) as pg_proxy, FaultProxy(rd.port) as redis_proxy:
            soak = Soak(pg, rd, (pg_proxy, redis_proxy), web, workdir, warmup, seed)
            every = {"restart_every": restart_every, "reload_every": reload_every,
                     "sigterm_every": sigterm_every}
            try:
                await soak.run(cycles, every, progress)
            finally:
                await soak.close()
    return soak.figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="fault cycles (default 1000)")
    parser.add_argument("--restart-every", type=int, default=10, metavar="N",
                        help="every N-th cycle really restarts both servers (0: never)")
    parser.add_argument("--reload-every", type=int, default=7, metavar="N",
                        help="every N-th cycle reloads, by SIGHUP and POST in turn (0: never)")
    parser.add_argument("--sigterm-every", type=int, default=25, metavar="N",
                        help="every N-th cycle SIGTERMs the exporter and starts a new one "
                             "(0: never)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="cycles each exporter process serves before it is measured")
    parser.add_argument("--seed", type=int, default=13, help="of the random moments")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--workdir", type=Path,
                        help="keep the exporter's logs, web config and certificates here")
    args = parser.parse_args(argv)
    installs = find_postgres_binaries()
    if not installs:
        print("no PostgreSQL found", file=sys.stderr)
        return 2
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with LocalPostgres(installs[0]) as pg, LocalRedis(password="soak-secret") as rd:
        figures = asyncio.run(run_soak(
            pg, rd, args.cycles, restart_every=args.restart_every,
            reload_every=args.reload_every, sigterm_every=args.sigterm_every,
            warmup=args.warmup, seed=args.seed, workdir=args.workdir,
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

__all__ = ["APPLICATION_NAME", "STEADY", "Figures", "cycle_kind", "run_soak"]
