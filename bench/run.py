#!/usr/bin/env python3
"""Side-by-side benchmark: tmi-db-exporter vs postgres_exporter and redis_exporter.

    python bench/run.py --preset default      # 2,000 tables, 1M keys; writes bench/results/
    python bench/run.py --preset small        # a quick look, results under bench/results/tmp/
    python bench/run.py --scaling             # our exporter at 2k, 10k and 20k tables

One run starts a throwaway PostgreSQL 15 and Redis (tmi_db_exporter.demo.servers), loads the
reference data (bench/data.py), then measures each exporter alone on those servers, one after the
other, so that none steals the two CPUs from another:

- ours with PostgreSQL only, ours with PostgreSQL only and every TTL at 0 (each scrape collects
  afresh), prometheus-postgres-exporter with the example queries its Debian package ships
  (fixed for PostgreSQL 13+, see design.md), ours with Redis only, and prometheus-redis-exporter
  with and without key groups;
- per exporter: the first (cold) scrape, N warm scrapes back to back with one scraper and with two
  concurrent scrapers (gzip, with Prometheus' headers), N scrapes without gzip; latency p50/p99,
  series, bytes, peak RSS, PostgreSQL statements by its role, the longest Redis command in
  SLOWLOG issued by its connections;
- finally ours and postgres_exporter side by side at a real scrape interval, first with one then
  with two scrapers, to count PostgreSQL statements per scrape interval (pg_stat_statements,
  per role: each exporter connects as its own pg_monitor role).

Everything started is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/run.py` from anywhere
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import redis  # noqa: E402
import yaml  # noqa: E402

from bench import data  # noqa: E402
from tmi_db_exporter.demo.servers import (  # noqa: E402
    LocalPostgres,
    LocalRedis,
    find_postgres_binaries,
    free_port,
)

PEER_PG = "prometheus-postgres-exporter"
PEER_REDIS = "prometheus-redis-exporter"
PEER_QUERIES = Path("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")
OURS_ROLE, PEER_ROLE = "bench_ours", "bench_peer"
OURS_REDIS_CLIENT, PEER_REDIS_CLIENT = "tmi-db-exporter", "redis_exporter"
RESULTS = ROOT / "bench" / "results"
OURS_FROM = ROOT  # the checkout our exporter runs from (--ours-from)
# redis_exporter's key groups: Lua patterns whose captures name the group; the same five
# groups as our default key census (session, cache, auth, rate_limit, lock)
PEER_KEY_GROUPS = "^(session):,^(cache):,^(auth):token:,^(rate_limit):user:,^(lock):"
CENSUS_METRIC = b"redis_key_group_count"
SLOWLOG_THRESHOLD_US = 100
SCRAPE_TIMEOUT = 10.0  # what Prometheus announces in X-Prometheus-Scrape-Timeout-Seconds
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
START_TIMEOUT = 30.0
NA = "n/a"


@dataclass(frozen=True)
class Preset:
    tables: int  # filler tables (plus the TMI schema's 7)
    keys: int  # Redis keys
    statements: int  # distinct statements in pg_stat_statements
    scrapes: int  # per latency phase and scraper
    slow_scrapes: int  # the same for targets that need seconds per scrape
    interval: float  # seconds between scrapes when counting statements per interval
    intervals: int  # scrape intervals counted (per scraper count)
    scaling_levels: tuple[int, ...]
    census_timeout: float = 600.0  # longest wait for our key census' first pass


PRESETS = {
    "tiny": Preset(20, 2_000, 100, 4, 2, 1.0, 2, (20, 60), census_timeout=30.0),
    "small": Preset(200, 50_000, 1_000, 20, 5, 4.0, 3, (200, 1_000, 2_000)),
    "default": Preset(2_000, 1_000_000, 3_000, 50, 8, 15.0, 4, (2_000, 10_000, 20_000)),
}


# ------------------------------------------------------------------------------- scraping


@dataclass
class Response:
    seconds: float
    status: int
    body: bytes  # as sent (gzip or not)
    gzipped: bool

    def text(self) -> bytes:
        return gzip.decompress(self.body) if self.gzipped else self.body


class Scraper:
    """One Prometheus-like scraper: a keep-alive connection and Prometheus' request headers."""

    def __init__(self, port: int, gzip_ok: bool = True) -> None:
        self.port = port
        self.headers = {
            "Accept": ACCEPT,
            "User-Agent": "Prometheus/2.45.0",
            "X-Prometheus-Scrape-Timeout-Seconds": f"{SCRAPE_TIMEOUT:g}",
        }
        if gzip_ok:
            self.headers["Accept-Encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None

    def scrape(self) -> Response:
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._conn.request("GET", "/metrics", headers=self.headers)
            response = self._conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        seconds = time.perf_counter() - started
        gzipped = response.getheader("Content-Encoding", "") == "gzip"
        return Response(seconds, response.status, body, gzipped)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def scrape_together(scrapers: list[Scraper]) -> list[Response]:
    """One scrape per scraper, all started at the same moment."""
    if len(scrapers) == 1:
        return [scrapers[0].scrape()]
    results: list[Response | BaseException | None] = [None] * len(scrapers)
    barrier = threading.Barrier(len(scrapers))

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = scrapers[i].scrape()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(scrapers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def _command_text(args: list[bytes]) -> str:
    """A SLOWLOG entry's command, short: EVAL's script body is not shown."""
    words = [a.decode(errors="replace") for a in args[:3]]
    if words and words[0].upper() in ("EVAL", "EVALSHA", "FCALL"):
        words = [words[0], "(script)", *words[2:3]]
    return " ".join(" ".join(words).split())[:60]


def _has_census(text: bytes) -> bool:
    """Does our exporter run a key census (a collector named like one in its self metrics)?"""
    return re.search(rb'tmi_db_exporter_collector_series\{collector="[^"]*key', text) is not None


SELF_METRICS = {
    b"tmi_db_exporter_collector_series": "series",
    b"tmi_db_exporter_collector_errors_total": "errors",
    b"tmi_db_exporter_collector_deadline_misses_total": "deadline_misses",
    b"tmi_db_exporter_collector_duration_seconds": "seconds",
}


def collector_health(text: bytes) -> dict[str, dict[str, float]]:
    """Our self metrics per collector: series, errors, deadline misses, last duration."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(b'{collector="')
        key = SELF_METRICS.get(name)
        if key is None:
            continue
        collector, _, value = rest.partition(b'"} ')
        out.setdefault(collector.decode(), {})[key] = float(value)
    return out


def series_count(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def collector_seconds(text: bytes, prefix: str) -> float:
    """The longest tmi_db_exporter_collector_duration_seconds of the collectors named `prefix`*.

    Collectors run concurrently and their durations overlap (they include waiting for the
    shared connection), so the longest one is the wall time of the whole collection."""
    longest = 0.0
    needle = b'tmi_db_exporter_collector_duration_seconds{collector="' + prefix.encode()
    for line in text.splitlines():
        if line.startswith(needle):
            longest = max(longest, float(line.rsplit(b" ", 1)[1]))
    return longest


# ------------------------------------------------------------------------------- processes


@dataclass
class Target:
    """One exporter process under test."""

    name: str
    kind: str  # "postgres" or "redis"
    command: list[str]
    env: dict[str, str]
    port: int
    role: str | None = None  # PostgreSQL role it connects as
    redis_client: str | None = None  # its CLIENT SETNAME
    slow: bool = False  # seconds per scrape: use preset.slow_scrapes
    cwd: Path = ROOT
    note: str = ""


class OtherCpu:
    """Share of the machine's CPU time used by processes outside this benchmark (other jobs
    on a shared machine) since creation: a measurement is only as good as this is small."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = self._busy()
        self.own = self._own()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()  # guest time is already part of user time
        return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq",
                                                 "steal"))

    @staticmethod
    def _own() -> dict[int, float]:
        """CPU seconds per process of ours: this one, servers, backends, exporters."""
        me = psutil.Process()
        out = {}
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def share(self) -> float:
        wall = (time.monotonic() - self.started) * (os.cpu_count() or 1)
        own_now = self._own()
        own = sum(v - self.own.get(pid, 0.0) for pid, v in own_now.items())
        return max(0.0, (self._busy() - self.busy - own) / wall) if wall > 0 else 0.0


class Profiler:
    """`py-spy record` attached to a process (sampling, non-blocking) until `stop()`; writes
    the folded stacks (for flamegraph.pl or speedscope) and a short summary next to them."""

    def __init__(self, pid: int, stem: Path) -> None:
        self.stem = stem
        self.folded = stem.with_suffix(".folded")
        self.proc = subprocess.Popen(
            ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--nonblocking",
             "--format", "raw", "--output", str(self.folded)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(0.5)  # attached before the phase starts

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.folded.exists():
            return {"error": err.decode(errors="replace")[-500:]}
        summary = summarize_profile(self.folded.read_text())
        path = self.stem.with_suffix(".md")
        path.write_text(summary["markdown"])
        return {"folded": str(self.folded), "summary": str(path), "samples": summary["samples"]}


def summarize_profile(folded: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's folded stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [  # one entry per function, whatever line of it was running
            re.sub(r":\d+\)$", ")", f)
            for f in stack.split(";")
            if not f.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    lines = [f"{total} samples (200 Hz, CPU only, idle excluded)", ""]
    for title, table in (("self", own), ("inclusive", inclusive)):
        lines += [f"## {title}", "", "| share | function |", "|---:|---|"]
        for frame, n in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            lines.append(f"| {n / max(total, 1):.1%} | `{frame}` |")
        lines.append("")
    return {"samples": total, "markdown": "\n".join(lines)}


class RssSampler(threading.Thread):
    """Peak resident memory of a process (and its children), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.last = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            with contextlib.suppress(psutil.Error):
                procs = [self.process, *self.process.children(recursive=True)]
                self.last = sum(p.memory_info().rss for p in procs)
                self.peak = max(self.peak, self.last)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class Running:
    """A started exporter: its process group is ended by `stop()`, whatever happens."""

    def __init__(self, target: Target, log_dir: Path) -> None:
        self.target = target
        self.log_path = log_dir / f"{target.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_"))}
        env.update(target.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                target.command,
                env=env,
                cwd=target.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_listening()
            self.rss = RssSampler(self.proc.pid)
            self.rss.start()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self) -> None:
        """Wait for the port to accept connections, without a scrape (the first is 'cold')."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.target.port), timeout=1
            ):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.target.name} did not start listening (exit code {self.proc.poll()});"
                    f" log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if getattr(self, "rss", None) is not None:
            self.rss.stop()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ------------------------------------------------------------------------------- the bench


def _peer_queries(path: Path) -> None:
    """The Debian example queries with the two fixes design.md names: pg_stat_statements'
    *_time columns are *_exec_time from PostgreSQL 13 on, and pg_process_idle must run only
    once per server (`master: true`), or --auto-discover-databases fails every scrape."""
    queries = yaml.safe_load(PEER_QUERIES.read_text())
    statements = queries["pg_stat_statements"]
    for column in ("total", "min", "max", "mean", "stddev"):
        statements["query"] = statements["query"].replace(
            f"{column}_time /", f"{column}_exec_time /"
        )
    queries["pg_process_idle"]["master"] = True
    path.write_text(yaml.safe_dump(queries, sort_keys=False))


def _fresh_queries(path: Path) -> None:
    """Our built-in queries with every TTL at 0: each scrape runs every query."""
    queries = yaml.safe_load((OURS_FROM / "queries.yaml").read_text())
    for entry in queries.values():
        if isinstance(entry, dict):
            entry["ttl"] = "0s"
            entry.pop("background", None)
    path.write_text(yaml.safe_dump(queries, sort_keys=False))


def _tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0][:160] if text else "?"


def _git_revision() -> str:
    """The revision our exporter ran from, and whether it had uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(OURS_FROM), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(OURS_FROM), "status", "--porcelain", "--", _package(),
             "queries.yaml"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return rev + (f" + uncommitted changes to {_package()}/" if dirty else "")


def _package() -> str:
    """Our package's name in OURS_FROM (checkouts from before the layout change call it
    `exporter`)."""
    return "tmi_db_exporter" if (OURS_FROM / "tmi_db_exporter").is_dir() else "exporter"


def missing_peers() -> list[str]:
    missing = [p for p in (PEER_PG, PEER_REDIS) if shutil.which(p) is None]
    if not PEER_QUERIES.exists():
        missing.append(str(PEER_QUERIES))
    return missing


class Bench:
    """Servers, data, exporter processes and measurements of one run."""

    def __init__(self, preset: Preset, log: Callable[[str], None] = print) -> None:
        self.preset = preset
        self.log = log
        self.stack = contextlib.ExitStack()
        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="tmi-bench-")))
        self.pg: LocalPostgres | None = None
        self.redis_server: LocalRedis | None = None
        self.redis: redis.Redis | None = None
        self.profile_dir: Path | None = None  # --profile: py-spy output goes here
        # what was started, so that a test can check it is all gone afterwards
        self.started = {"pids": [], "dirs": [str(self.tmp)]}

    def close(self) -> None:
        self.stack.close()

    def _started(self, server: LocalPostgres | LocalRedis) -> None:
        self.started["pids"].append(server.pid)
        self.started["dirs"].append(str(server.base_dir))

    # --- servers and data ------------------------------------------------------------------

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

    # --- targets ---------------------------------------------------------------------------

    def ours(
        self, name: str, *, postgres: bool, redis_: bool, fresh: bool = False, shared: bool = False
    ) -> Target:
        """Our exporter. Unless `shared`, with min_ttl 0: every scrape runs the TTL-0 queries
        as a scrape at a real interval does, instead of reusing what a scrape a moment ago
        collected (the default 1 s window is measured where it matters, in the interval phase)."""
        port = free_port()
        env = {
            "TMI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
            "TMI_EXPORTER_LISTEN_PORT": str(port),
            "TMI_EXPORTER_LOG_LEVEL": "warning",
            "PYTHONPATH": str(OURS_FROM),
        }
        if not shared:
            env["TMI_EXPORTER_MIN_TTL"] = "0"
        if postgres:
            assert self.pg is not None
            env |= {
                "POSTGRES_HOST": self.pg.host,
                "POSTGRES_PORT": str(self.pg.port),
                "POSTGRES_USER": OURS_ROLE,
                "POSTGRES_DATABASE": "postgres",
                "POSTGRES_SSL_MODE": "disable",
            }
        if redis_:
            assert self.redis_server is not None
            env |= {"REDIS_HOST": self.redis_server.host, "REDIS_PORT": str(self.redis_server.port)}
        note = ""
        if fresh:
            queries = self.tmp / "queries-ttl0.yaml"
            _fresh_queries(queries)
            env["TMI_EXPORTER_QUERIES_FILE"] = str(queries)
            note = "every TTL 0: each scrape runs every query"
        return Target(
            name,
            "postgres" if postgres else "redis",
            [sys.executable, "-m", _package(), "run"],
            env,
            port,
            role=OURS_ROLE if postgres else None,
            redis_client=OURS_REDIS_CLIENT if redis_ else None,
            slow=fresh,
            cwd=OURS_FROM,
            note=note,
        )

    def peer_postgres(self) -> Target:
        assert self.pg is not None
        queries = self.tmp / "postgres_exporter-queries.yaml"
        _peer_queries(queries)
        port = free_port()
        dsn = f"postgresql://{PEER_ROLE}@{self.pg.host}:{self.pg.port}/postgres?sslmode=disable"
        return Target(
            "postgres_exporter",
            "postgres",
            [
                PEER_PG,
                "--auto-discover-databases",
                f"--extend.query-path={queries}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            {"DATA_SOURCE_NAME": dsn},
            port,
            role=PEER_ROLE,
            note="Debian's example queries.yaml (fixed for PostgreSQL 13+),"
            " --auto-discover-databases",
        )

    def peer_redis(self, key_groups: bool) -> Target:
        assert self.redis_server is not None
        port = free_port()
        command = [
            PEER_REDIS,
            f"-redis.addr=redis://{self.redis_server.host}:{self.redis_server.port}",
            f"-web.listen-address=127.0.0.1:{port}",
        ]
        note = "INFO only (defaults)"
        if key_groups:
            command.append(f"-check-key-groups={PEER_KEY_GROUPS}")
            note = "key groups, default -check-keys-batch-size 1000"
        return Target(
            "redis_exporter" + (" (key groups)" if key_groups else ""),
            "redis",
            command,
            {},
            port,
            redis_client=PEER_REDIS_CLIENT,
            slow=key_groups,
            note=note,
        )

    @contextlib.contextmanager
    def running(self, target: Target) -> Iterator[Running]:
        proc = Running(target, self.tmp)
        self.started["pids"].append(proc.proc.pid)
        try:
            yield proc
        finally:
            proc.stop()

    # --- measurements ----------------------------------------------------------------------

    def calls(self, role: str | None) -> int | None:
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

    def latency_phases(self, target: Target) -> dict[str, Any]:
        """Cold scrape, warm with 1 and 2 scrapers (gzip), warm without gzip."""
        n = self.preset.slow_scrapes if target.slow else self.preset.scrapes
        result: dict[str, Any] = {"name": target.name, "kind": target.kind, "note": target.note}
        self.slowlog_reset()
        other_cpu = OtherCpu()
        with self.running(target) as proc:
            phases: dict[str, Any] = {}

            def phase(name: str, scrapers: int, rounds: int, gzip_ok: bool = True) -> Response:
                clients = [Scraper(target.port, gzip_ok) for _ in range(scrapers)]
                before = self.calls(target.role)
                seconds: list[float] = []
                errors = 0
                last: Response | None = None
                for _ in range(rounds):
                    for r in scrape_together(clients):
                        seconds.append(r.seconds)
                        errors += r.status != 200
                        last = r
                after = self.calls(target.role)
                for c in clients:
                    c.close()
                assert last is not None
                phases[name] = {
                    "scrapes": len(seconds),
                    "p50_ms": statistics.median(seconds) * 1000,
                    "p99_ms": percentile(seconds, 0.99) * 1000,
                    "max_ms": max(seconds) * 1000,
                    "errors": errors,
                    "bytes": len(last.body),
                }
                if before is not None and after is not None:
                    phases[name]["statements_per_scrape"] = (after - before) / len(seconds)
                return last

            cold_started = time.monotonic()
            cold = phase("cold", 1, 1)
            cold_text = cold.text()
            if target.role == OURS_ROLE:
                result["cold_collection_seconds"] = collector_seconds(cold_text, "pg")
            profiler = self._profiler(target, proc)
            try:
                warm = phase("warm_1", 1, n)
                phase("warm_2", 2, n)
                plain = phase("plain_1", 1, n, gzip_ok=False)
            finally:
                if profiler is not None:
                    result["profile"] = profiler.stop()
            text = warm.text()
            result |= {
                "phases": phases,
                "series": series_count(text),
                "bytes_gzip": len(warm.body) if warm.gzipped else None,
                "bytes_plain": len(plain.body),
                "rss_peak_mb": proc.rss.peak / 2**20,
                "rss_end_mb": proc.rss.last / 2**20,
                "other_cpu_share": other_cpu.share(),  # other jobs on the machine skew it all
            }
            if target.cwd == OURS_FROM:
                result["collectors"] = health = collector_health(text)
                result["collector_errors"] = sum(h.get("errors", 0) for h in health.values())
                result["deadline_misses"] = sum(
                    h.get("deadline_misses", 0) for h in health.values()
                )
            if target.role == OURS_ROLE:
                result["warm_collection_seconds"] = collector_seconds(text, "pg")
            if target.redis_client == OURS_REDIS_CLIENT and _has_census(cold_text):
                result["census"] = self.census_phase(target, started=cold_started)
        if target.kind == "redis":
            result["slowlog_longest"] = self.slowlog_longest(target.redis_client)
        return result

    def _profiler(self, target: Target, proc: Running) -> Profiler | None:
        """py-spy on our exporter during the warm phases, when --profile asks for it."""
        if self.profile_dir is None or target.cwd != OURS_FROM or target.slow:
            return None
        slug = re.sub(r"[^a-z0-9]+", "-", f"{target.name} {target.kind}".lower()).strip("-")
        return Profiler(proc.proc.pid, self.profile_dir / f"profile-{slug}")

    def census_phase(self, target: Target, started: float) -> dict[str, Any]:
        """Our key census runs in the background from the first scrape on: keep scraping
        (twice a second) until its first pass has finished, so that SLOWLOG covers a whole
        pass and the latencies are those of scrapes during the census."""
        scraper = Scraper(target.port)
        seconds: list[float] = []
        finished = False
        deadline = started + self.preset.census_timeout
        while time.monotonic() < deadline:
            r = scraper.scrape()
            seconds.append(r.seconds)
            if CENSUS_METRIC in r.text():
                finished = True
                break
            time.sleep(0.5)
        scraper.close()
        return {
            "finished": finished,
            "first_pass_seconds": time.monotonic() - started if finished else None,
            "scrapes": len(seconds),
            "p50_ms": statistics.median(seconds) * 1000,
            "p99_ms": percentile(seconds, 0.99) * 1000,
            "max_ms": max(seconds) * 1000,
        }

    def twin(self, target: Target, n: int) -> Target:
        """Another instance of `target` on its own port, connecting as its own role (so that
        its statements are counted apart)."""
        assert target.role is not None and self.pg is not None
        role, port = f"{target.role}_{n}", free_port()
        data.create_monitoring_role(self.pg.dsn(), role)
        old_addr, new_addr = f"127.0.0.1:{target.port}", f"127.0.0.1:{port}"

        def swap(text: str) -> str:
            if text == str(target.port):
                return str(port)
            text = text.replace(old_addr, new_addr)
            return text.replace(f"postgresql://{target.role}@", f"postgresql://{role}@")

        env = {k: (role if v == target.role else swap(v)) for k, v in target.env.items()}
        return replace(
            target, command=[swap(a) for a in target.command], env=env, port=port, role=role
        )

    def interval_phase(self, targets: list[Target], scrapers: tuple[int, ...] = (1, 2)) -> dict:
        """Scrape every `interval` seconds and count each exporter's PostgreSQL statements
        over `intervals` intervals, for each number of scrapers. Each number of scrapers gets
        its own instance of the exporter, all started together and scraped in staggered slots
        of the same intervals: their cached results expire at the same ticks, so the counts
        differ only by the number of scrapers (one instance measured twice in a row would see
        different TTLs expire in each window)."""
        p = self.preset
        instances = [
            (t, count, t if i == 0 else self.twin(t, count))
            for t in targets
            for i, count in enumerate(scrapers)
        ]
        out: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
        with contextlib.ExitStack() as stack:
            procs = [stack.enter_context(self.running(inst)) for _, _, inst in instances]
            offset = p.interval / len(instances)
            t0 = time.monotonic()

            def at(tick: int, i: int) -> None:  # sleep until instance i's slot of the tick
                delay = t0 + tick * p.interval + i * offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

            clients = [[Scraper(inst.port) for _ in range(count)] for _, count, inst in instances]
            for i in range(len(instances)):  # tick 0: the first scrape (cold), not counted
                at(0, i)
                scrape_together(clients[i][:1])
            before = [self.calls(inst.role) for _, _, inst in instances]
            seconds: list[list[float]] = [[] for _ in instances]
            for tick in range(1, p.intervals + 1):
                for i in range(len(instances)):
                    at(tick, i)
                    seconds[i] += [r.seconds for r in scrape_together(clients[i])]
            for i, (target, count, inst) in enumerate(instances):
                out[target.name][f"scrapers_{count}"] = {
                    "statements_per_interval": (self.calls(inst.role) - before[i]) / p.intervals,
                    "p50_ms": statistics.median(seconds[i]) * 1000,
                    "max_ms": max(seconds[i]) * 1000,
                    "rss_peak_mb": procs[i].rss.peak / 2**20,
                }
                for c in clients[i]:
                    c.close()
        return out


# ------------------------------------------------------------------------------- reports


def _ms(v: float | None) -> str:
    if v is None:
        return NA
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def _slow_ms(v: float | None) -> str:
    """SLOWLOG duration: 0 means nothing reached the log's threshold."""
    if v == 0:
        return f"< {SLOWLOG_THRESHOLD_US / 1000:g} ms"
    return _ms(v)


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return NA
    text = f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"
    return text + unit


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return NA
    if b == 0:
        return NA if a == 0 else "∞"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def _rows(ours: dict, peer: dict, interval: dict | None, fresh: dict | None) -> list[tuple]:
    """(label, our value, peer value, formatter) for one comparison."""
    rows: list[tuple] = []

    def ph(r: dict, phase: str, key: str) -> float | None:
        return r.get("phases", {}).get(phase, {}).get(key)

    for phase, label in (
        ("cold", "first scrape (cold)"),
        ("warm_1", "warm, 1 scraper"),
        ("warm_2", "warm, 2 concurrent scrapers"),
        ("plain_1", "warm, 1 scraper, uncompressed"),
    ):
        if phase == "cold":
            rows.append((label, ph(ours, phase, "p50_ms"), ph(peer, phase, "p50_ms"), _ms))
            continue
        for q in ("p50", "p99"):
            rows.append(
                (f"{label}: {q}", ph(ours, phase, f"{q}_ms"), ph(peer, phase, f"{q}_ms"), _ms)
            )
    if fresh is not None:
        for q in ("p50", "p99"):
            rows.append(
                (
                    f"fresh full collection (ours: every TTL 0), 1 scraper: {q}",
                    ph(fresh, "warm_1", f"{q}_ms"),
                    ph(peer, "warm_1", f"{q}_ms"),
                    _ms,
                )
            )
    rows.append(("series", ours.get("series"), peer.get("series"), _num))
    kb = lambda v: None if v is None else v / 1024  # noqa: E731
    rows.append(("response, gzip", kb(ours.get("bytes_gzip")), kb(peer.get("bytes_gzip")),
                 lambda v: _num(v, " KiB")))
    rows.append(("response, uncompressed", kb(ours.get("bytes_plain")),
                 kb(peer.get("bytes_plain")), lambda v: _num(v, " KiB")))
    rows.append(("exporter RSS, peak", ours.get("rss_peak_mb"), peer.get("rss_peak_mb"),
                 lambda v: _num(v, " MB")))
    if "statements_per_scrape" in ours.get("phases", {}).get("warm_1", {}):
        rows.append(("PostgreSQL statements per scrape, back to back",
                     ph(ours, "warm_1", "statements_per_scrape"),
                     ph(peer, "warm_1", "statements_per_scrape"), _num))
    if interval:
        o, p = interval.get(ours["name"], {}), interval.get(peer["name"], {})
        for key in sorted(o):
            n = key.split("_")[1]
            rows.append((f"PostgreSQL statements per scrape interval, {n} scraper(s)",
                         o[key]["statements_per_interval"], p.get(key, {}).get(
                             "statements_per_interval"), _num))
            rows.append((f"scrape at the interval, {n} scraper(s): p50",
                         o[key]["p50_ms"], p.get(key, {}).get("p50_ms"), _ms))
            rows.append((f"scrape at the interval, {n} scraper(s): max",
                         o[key]["max_ms"], p.get(key, {}).get("max_ms"), _ms))
    if "census" in ours:
        census, kg = ours["census"], "key groups" in peer["name"]
        first = census["first_pass_seconds"]
        rows.append(("key census, one full pass (peer: one scrape)",
                     None if first is None else first * 1000,
                     ph(peer, "warm_1", "p50_ms") if kg else None, _ms))
        for q in ("p50", "p99"):
            rows.append((f"scrape while the census runs: {q}", census[f"{q}_ms"],
                         ph(peer, "warm_1", f"{q}_ms") if kg else None, _ms))
    if "slowlog_longest" in ours:
        a, b = ours["slowlog_longest"], peer["slowlog_longest"]
        rows.append(("longest Redis command in SLOWLOG", a["microseconds"] / 1000,
                     b["microseconds"] / 1000, _slow_ms))
        rows.append(("  (that command)", a["command"], b["command"], str))
    return rows


def _table(title: str, ours: dict, peers: list[dict], rows_for: Callable) -> list[str]:
    head = "| | ours |" + "".join(f" {p['name']} | ours / peer |" for p in peers)
    lines = [f"### {title}", "", head, "|---|---:|" + "---:|---:|" * len(peers)]
    per_peer = [rows_for(ours, p) for p in peers]
    for i, (label, value, _, fmt) in enumerate(per_peer[0]):
        cells = [label, fmt(value) if value is not None else NA]
        for rows in per_peer:
            _, a, b, f = rows[i]
            cells.append(f(b) if b is not None else NA)
            no_ratio = f is str or (f is _slow_ms and not a)  # under the threshold: no ratio
            cells.append("" if no_ratio else _ratio(a, b))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _load_line(results: dict) -> str:
    shares = [t["other_cpu_share"] for t in results["targets"].values() if "other_cpu_share" in t]
    if not shares:
        return ""
    return (
        f"CPU used by other jobs on the machine while each exporter was measured: "
        f"{min(shares):.0%} to {max(shares):.0%} of its {os.cpu_count()} CPUs."
    )


def report(results: dict) -> str:
    p = results["preset"]
    env = results["environment"]
    lines = [
        "# Benchmark: tmi-db-exporter vs postgres_exporter and redis_exporter",
        "",
        f"`{results['command']}` — {results['finished']}, {results['duration_seconds']:.0f} s.",
        "",
        f"Data: {p['tables']:,} filler tables with 2 indexes each (+ the TMI schema), "
        f"every {data.DEAD_EVERY}th with {data.DEAD_ROWS} dead tuples, "
        f"{p['statements']:,} distinct statements in pg_stat_statements; "
        f"{p['keys']:,} Redis keys in the guide's patterns. "
        f"Latency: {p['scrapes']} scrapes per phase and scraper "
        f"({p['slow_scrapes']} for targets needing seconds per scrape), keep-alive, "
        f"Prometheus headers (`Accept-Encoding: gzip`, "
        f"`X-Prometheus-Scrape-Timeout-Seconds: {SCRAPE_TIMEOUT:g}`); each exporter measured "
        f"alone; ours with min_ttl 0, so that every scrape runs its TTL-0 queries as a scrape "
        f"at a real interval does. Statements per interval: scraped every {p['interval']:g} s "
        f"over {p['intervals']} intervals, ours (default settings) and postgres_exporter side by "
        "side, one instance per number of scrapers, all started together, each counted by its "
        "own role in pg_stat_statements.",
        "",
        f"Machine: {env['cpus']} CPUs, {env['memory_gb']:.0f} GB, {env['platform']}; "
        f"PostgreSQL {env['postgres']}, Redis {env['redis']}; {env['postgres_exporter']}; "
        f"{env['redis_exporter']}; tmi-db-exporter {env['revision']}.",
        "",
        _load_line(results),
        "",
        "Ratios are ours / peer: below 1 is better for ours (fewer ms, bytes, MB, statements);"
        " n/a: not measured or not applicable.",
        "",
    ]
    r = results["targets"]
    if "ours_pg" in r and "postgres_exporter" in r:
        lines += _table(
            "PostgreSQL",
            r["ours_pg"],
            [r["postgres_exporter"]],
            lambda o, q: _rows(o, q, results.get("interval"), r.get("ours_pg_fresh")),
        )
        lines += ["", f"postgres_exporter: {r['postgres_exporter']['note']}."]
        if "cold_collection_seconds" in r["ours_pg"]:
            lines.append(
                "Ours, PostgreSQL collection wall time (longest collector): cold "
                f"{r['ours_pg']['cold_collection_seconds'] * 1000:.0f} ms"
                + (
                    f", every-TTL-0 run {r['ours_pg_fresh']['warm_collection_seconds'] * 1000:.0f}"
                    " ms" if "ours_pg_fresh" in r else ""
                )
                + "."
            )
        lines.append("")
    peers = [r[k] for k in ("redis_exporter", "redis_exporter_kg") if k in r]
    if "ours_redis" in r and peers:
        lines += _table("Redis", r["ours_redis"], peers, lambda o, q: _rows(o, q, None, None))
        lines += ["", "; ".join(f"{p['name']}: {p['note']}" for p in peers) + "."]
        lines.append(
            f"SLOWLOG threshold {SLOWLOG_THRESHOLD_US} µs, reset before each exporter; only "
            "commands from the exporter's own (named) connections count."
        )
        lines.append("")
    for key in ("ours_pg", "ours_pg_fresh", "ours_redis"):
        t = r.get(key, {})
        if t.get("collector_errors") or t.get("deadline_misses"):
            lines.append(
                f"Ours ({key}): {t['collector_errors']:.0f} collector errors and "
                f"{t['deadline_misses']:.0f} deadline misses during the run (per collector in "
                "the JSON)."
            )
    for target in r.values():
        errors = sum(ph.get("errors", 0) for ph in target.get("phases", {}).values())
        if errors:
            lines.append(f"**{target['name']}: {errors} scrapes did not answer 200.**")
    return "\n".join(lines).rstrip() + "\n"


def scaling_report(results: dict) -> str:
    lines = [
        "# Scaling: our exporter vs number of tables",
        "",
        f"`{results['command']}` — {results['finished']}, {results['duration_seconds']:.0f} s; "
        f"tmi-db-exporter {results['environment']['revision']}.",
        "",
        "Each table has 2 indexes (so per-table and per-index series grow with it). Collection "
        "time is the wall time of our PostgreSQL collection in the first scrape (longest collector "
        "duration, they run concurrently); fresh is a "
        "scrape with every TTL at 0; statements per interval at "
        f"{results['preset']['interval']:g} s, 1 scraper.",
        "",
        "| tables | cold scrape | collection time | fresh scrape p50 | warm p50 | warm p99 "
        "| warm p99, 2 scrapers | statements / interval | series | RSS peak "
        "| collector errors / deadline misses |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["levels"]:
        o, f = row["ours"], row.get("fresh", {})
        ph = o["phases"]
        lines.append(
            f"| {row['tables']:,} | {_ms(ph['cold']['p50_ms'])} "
            f"| {_ms(o.get('cold_collection_seconds', 0) * 1000)} "
            f"| {_ms(f.get('phases', {}).get('warm_1', {}).get('p50_ms'))} "
            f"| {_ms(ph['warm_1']['p50_ms'])} | {_ms(ph['warm_1']['p99_ms'])} "
            f"| {_ms(ph['warm_2']['p99_ms'])} "
            f"| {_num(row.get('statements_per_interval'))} | {_num(o['series'])} "
            f"| {_num(o['rss_peak_mb'], ' MB')} "
            f"| {_num(o.get('collector_errors'))} / {_num(o.get('deadline_misses'))} |"
        )
    lines += [
        "",
        "Server time of our most expensive statements in the every-TTL-0 run (pg_stat_statements,"
        " our role only):",
        "",
        "| tables | calls | mean | total | statement |",
        "|---:|---:|---:|---:|---|",
    ]
    for row in results["levels"]:
        for st in row.get("fresh", {}).get("top_statements", []):
            query = st["query"].replace("|", "\\|")
            lines.append(
                f"| {row['tables']:,} | {st['calls']} | {_ms(st['mean_ms'])} "
                f"| {_ms(st['total_ms'])} | `{query}` |"
            )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- main


def _environment(bench: Bench) -> dict[str, Any]:
    env: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "revision": _git_revision(),
        "postgres_exporter": _tool_version([PEER_PG, "--version"]),
        "redis_exporter": _tool_version([PEER_REDIS, "-version"]).split("build date")[0].split(
            "msg=")[-1].strip('" '),
        "postgres": "-",
        "redis": "-",
    }
    if bench.pg is not None:
        env["postgres"] = bench.pg.binaries.version
    if bench.redis is not None:
        env["redis"] = bench.redis.info("server")["redis_version"]
    return env


def run_comparison(
    preset: Preset, log: Callable[[str], None] = print, profile_dir: Path | None = None
) -> dict[str, Any]:
    """The side-by-side run; returns the raw results (see `report`)."""
    started = time.monotonic()
    bench = Bench(preset, log)
    bench.profile_dir = profile_dir
    try:
        log("starting PostgreSQL 15 and Redis, loading data")
        bench.start_postgres(15)
        bench.start_redis()
        timings = bench.load(preset.tables, preset.keys)
        targets = {
            "ours_pg": bench.ours("ours", postgres=True, redis_=False),
            "ours_pg_fresh": bench.ours("ours, every TTL 0", postgres=True, redis_=False,
                                        fresh=True),
            "postgres_exporter": bench.peer_postgres(),
            "ours_redis": bench.ours("ours", postgres=False, redis_=True),
            "redis_exporter": bench.peer_redis(key_groups=False),
            "redis_exporter_kg": bench.peer_redis(key_groups=True),
        }
        results: dict[str, Any] = {"targets": {}}
        for key, target in targets.items():
            log(f"measuring {target.name} ({target.kind})")
            try:
                results["targets"][key] = bench.latency_phases(target)
            except (RuntimeError, OSError, http.client.HTTPException) as exc:
                log(f"  FAILED: {exc}")
                results["targets"][key] = {"name": target.name, "error": str(exc)}
        log(f"statements per interval ({preset.interval:g} s, {preset.intervals} intervals)")
        interval_targets = [
            bench.ours("ours", postgres=True, redis_=False, shared=True),
            targets["postgres_exporter"],
        ]
        results["interval"] = bench.interval_phase(interval_targets)
        results |= {
            "preset": asdict(preset),
            "load": timings,
            "environment": _environment(bench),
        }
    finally:
        bench.close()
    results["started"] = bench.started
    results["duration_seconds"] = time.monotonic() - started
    results["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return results


def run_scaling(preset: Preset, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Our exporter at each of preset.scaling_levels tables (added incrementally)."""
    started = time.monotonic()
    bench = Bench(preset, log)
    levels = []
    try:
        bench.start_postgres(15)
        created = 0
        for tables in preset.scaling_levels:
            log(f"{tables:,} tables")
            assert bench.pg is not None
            if created == 0:
                bench.load(tables, None)
            else:
                data.create_filler_tables(bench.pg.dsn("tmi"), created, tables - created)
            created = tables
            ours = bench.latency_phases(bench.ours("ours", postgres=True, redis_=False))
            data.reset_statements(bench.pg.dsn(), OURS_ROLE)
            fresh = bench.latency_phases(
                bench.ours("ours, every TTL 0", postgres=True, redis_=False, fresh=True)
            )
            # where the server's time goes when every query runs (what grows with tables)
            fresh["top_statements"] = data.top_statements(bench.pg.dsn(), OURS_ROLE)
            interval = bench.interval_phase(
                [bench.ours("ours", postgres=True, redis_=False, shared=True)], scrapers=(1,)
            )
            levels.append({
                "tables": tables,
                "ours": ours,
                "fresh": fresh,
                "statements_per_interval": interval["ours"]["scrapers_1"][
                    "statements_per_interval"],
                "interval": interval["ours"],
            })
        env = _environment(bench)
    finally:
        bench.close()
    return {
        "started": bench.started,
        "levels": levels,
        "preset": asdict(preset),
        "environment": env,
        "duration_seconds": time.monotonic() - started,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _write(out_dir: Path, stem: str, results: dict, markdown: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    path = out_dir / f"{stem}.md"
    path.write_text(markdown)
    return path


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Side-by-side benchmark of tmi-db-exporter vs prometheus-postgres-exporter "
        "and prometheus-redis-exporter on throwaway servers with reference data.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="scale and effort (default: %(default)s)")
    parser.add_argument("--tables", type=int, help="filler tables (overrides the preset)")
    parser.add_argument("--keys", type=int, help="Redis keys (overrides the preset)")
    parser.add_argument("--scrapes", type=int, help="scrapes per phase and scraper")
    parser.add_argument("--interval", type=float, help="seconds between scrapes when counting "
                        "statements per interval")
    parser.add_argument("--scaling", action="store_true",
                        help="instead: our exporter at several table counts -> scaling.md")
    parser.add_argument("--levels", help="table counts for --scaling, e.g. 2000,10000,20000")
    parser.add_argument("--ours-from", type=Path, metavar="DIR",
                        help="run our exporter from this checkout (e.g. a `git worktree` of a "
                        "commit) instead of this one")
    parser.add_argument("--profile", action="store_true",
                        help="record our exporter with py-spy during the warm phases "
                        "(pip install py-spy) -> bench/results/tmp/profile/")
    parser.add_argument("--out", type=Path, help="results directory (default: bench/results "
                        "for the default preset, bench/results/tmp/<preset> otherwise)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global OURS_FROM
    args = parse_args(argv)
    if args.ours_from:
        OURS_FROM = args.ours_from.resolve()
        if not (OURS_FROM / _package() / "__main__.py").exists():
            print(f"--ours-from {OURS_FROM}: no exporter package there", file=sys.stderr)
            return 2
    preset = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("tables", "keys", "scrapes", "interval")}
    preset = replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    if args.levels:
        preset = replace(preset, scaling_levels=tuple(int(x) for x in args.levels.split(",")))
    out = args.out or (RESULTS if args.preset == "default" else RESULTS / "tmp" / args.preset)
    missing = missing_peers()
    if missing and not args.scaling:
        print(f"missing: {', '.join(missing)}; install them with\n"
              "  apt-get install prometheus-postgres-exporter prometheus-redis-exporter",
              file=sys.stderr)
        return 2
    if args.profile and shutil.which("py-spy") is None:
        print("--profile needs py-spy: pip install py-spy", file=sys.stderr)
        return 2
    # SIGTERM ends the run like Ctrl-C: through the cleanup of everything started
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        if args.scaling:
            results = run_scaling(preset)
            results["command"] = command.strip()
            path = _write(out, "scaling", results, text := scaling_report(results))
        else:
            profile_dir = None
            if args.profile:
                profile_dir = out / "profile" if args.out else RESULTS / "tmp" / "profile"
                profile_dir.mkdir(parents=True, exist_ok=True)
            results = run_comparison(preset, profile_dir=profile_dir)
            results["command"] = command.strip()
            path = _write(out, "latest", results, text := report(results))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print()
    print(text)
    print(f"written to {path} (raw numbers: {path.with_suffix('.json')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
