"""The throwaway PostgreSQL and Redis of one run with their reference data, the exporters started
against them, and what the servers say about each exporter (its statements, its slowest Redis
command). Everything started is recorded, so that a test can check it is all gone afterwards."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from bench import data
from bench.exporters import Running, Target
from bench.presets import Preset
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, find_postgres_binaries

# Each exporter connects as its own pg_monitor role, so that pg_stat_statements counts apart.
OURS_ROLE, PEER_ROLE = "bench_ours", "bench_peer"
SLOWLOG_THRESHOLD_US = 100


def _command_text(args: list[bytes]) -> str:
    """A SLOWLOG entry's command, short: EVAL's script body is not shown."""
    words = [a.decode(errors="replace") for a in args[:3]]
    if words and words[0].upper() in ("EVAL", "EVALSHA", "FCALL"):
        words = [words[0], "(script)", *words[2:3]]
    return " ".join(" ".join(words).split())[:60]


class BenchServers:
    """Servers, data and exporter processes of one run."""

    def __init__(self, preset: Preset, log: Callable[[str], None] = print) -> None:
        self.preset = preset
        self.log = log
        self.stack = contextlib.ExitStack()
        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="tmi-bench-")))
        self.pg: LocalPostgres | None = None
        self.redis_server: LocalRedis | None = None
        self.redis: redis.Redis | None = None
        # what was started, so that a test can check it is all gone afterwards
        self.started = {"pids": [], "dirs": [str(self.tmp)]}

    def close(self) -> None:
        self.stack.close()

    def _started(self, server: LocalPostgres | LocalRedis) -> None:
        self.started["pids"].append(server.pid)
        self.started["dirs"].append(str(server.base_dir))

    def start_postgres(self, major: int) -> None:
        found = {b.major: b for b in find_postgres_binaries()}
        if major not in found:
            raise SystemExit(f"PostgreSQL {major} not found (have {sorted(found)})")
        self.pg = self.stack.enter_context(LocalPostgres(found[major]))
        self._started(self.pg)
        for role in (OURS_ROLE, PEER_ROLE):
            data.create_monitoring_role(self.pg.dsn(), role)

    def start_redis(self) -> None:
        self.redis_server = self.stack.enter_context(
            LocalRedis(
                extra_config={
                    "slowlog-log-slower-than": str(SLOWLOG_THRESHOLD_US),
                    "slowlog-max-len": "100000",
                }
            )
        )
        self._started(self.redis_server)
        self.redis = redis.Redis.from_url(self.redis_server.url, socket_timeout=30)
        self.stack.callback(self.redis.close)

    def load(self, tables: int, keys: int | None) -> dict[str, float]:
        timings = {}
        if self.pg is not None:
            started = time.monotonic()
            data.fill_postgres(self.pg.dsn(), tables, statements=self.preset.statements)
            timings["postgres_load_seconds"] = time.monotonic() - started
            seconds = timings["postgres_load_seconds"]
            self.log(f"  PostgreSQL: {tables:,} filler tables in {seconds:.0f}s")
        if self.redis_server is not None and keys:
            started = time.monotonic()
            data.fill_redis(self.redis_server.url, keys)
            timings["redis_load_seconds"] = time.monotonic() - started
            self.log(f"  Redis: {keys:,} keys in {timings['redis_load_seconds']:.0f}s")
        return timings

    @contextlib.contextmanager
    def running(self, target: Target) -> Iterator[Running]:
        """`target` started (in this run's directory, for its log) until the block ends."""
        proc = Running(target, self.tmp)
        self.started["pids"].append(proc.proc.pid)
        try:
            yield proc
        finally:
            proc.stop()

    def calls(self, role: str | None) -> int | None:
        """Statements `role` has run so far (pg_stat_statements); None: nothing to count."""
        if role is None or self.pg is None:
            return None
        return data.statement_calls(self.pg.dsn()).get(role, 0)

    def slowlog_reset(self) -> None:
        if self.redis is not None:
            self.redis.slowlog_reset()

    def slowlog_longest(self, client_name: str | None) -> dict[str, Any] | None:
        """The longest command by `client_name` (all clients if unnamed) since the reset."""
        if self.redis is None:
            return None
        entries = self.redis.execute_command("SLOWLOG", "GET", "-1")
        longest: dict[str, Any] | None = None
        for entry in entries:
            duration, args = int(entry[2]), entry[3]
            name = entry[5].decode() if len(entry) > 5 and entry[5] else ""
            if client_name and name != client_name:
                continue
            if longest is None or duration > longest["microseconds"]:
                longest = {"microseconds": duration, "command": _command_text(args)}
        return longest or {"microseconds": 0, "command": f"none over {SLOWLOG_THRESHOLD_US} µs"}
