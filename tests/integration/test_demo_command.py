"""`tmi-db-exporter demo` end to end, as a user runs it: values for every shipped query and for
Redis within 30 s, and Ctrl-C leaves no process or temporary directory behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.scraping import Scrape
from tmi_db_exporter.demo.servers import free_port
from tmi_db_exporter.sources.postgres.queries import default_queries_path, load_queries

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


# Entries whose honest value on a lone primary without archiving is nothing or 0.
NEEDS_MORE_THAN_THE_DEMO = {
    "pg_stat_replication": "needs a replica",
    "pg_replication": "exists on a standby only",
    "pg_replication_slots": "needs a replication slot",
    "pg_stat_archiver": "needs archive_mode",
    "pg_pending_restart": "0 unless a setting awaits a restart",
}


def _missing_values(result: Scrape) -> list[str]:
    """Shipped queries (and Redis) that have no non-zero sample yet."""
    missing = []
    for spec in load_queries([default_queries_path()]):
        if not spec.enabled or spec.name in NEEDS_MORE_THAN_THE_DEMO:
            continue
        names = [spec.metric_name(m) for m in spec.metrics]
        if not any(v != 0 for n in names for _, v in result.series(n)):
            missing.append(spec.name)
    for name in ("redis_up", "redis_db_keys", "redis_keyspace_hits_total"):
        if not any(v != 0 for _, v in result.series(name)):
            missing.append(name)
    return missing


def _server_temp_dirs(paths: list[str]) -> set[str]:
    """The throwaway servers' own temporary directories (`tmi-postgres-*`, `tmi-redis-*`) among
    their command line and working directory; other paths (the binaries, a virtualenv that
    happens to live under /tmp) are not theirs to remove."""
    found = set()
    for path in map(Path, paths):
        for part in (path, *path.parents):
            if part.name.startswith(("tmi-postgres-", "tmi-redis-")):
                found.add(str(part))
    return found


def test_demo_serves_every_query_and_cleans_up_on_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tmi_db_exporter", "demo", "--listen-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    started = time.monotonic()
    missing: list[str] = ["not scraped yet"]
    servers: list[psutil.Process] = []
    temp_dirs: set[str] = set()
    try:
        while time.monotonic() - started < 30 and missing:
            time.sleep(1)
            assert process.poll() is None, process.stdout.read()
            names = ("postgres", "redis-server")
            servers = [p for p in _children(process.pid) if p.name() in names]
            for proc in servers:
                with contextlib.suppress(psutil.Error):
                    temp_dirs.update(_server_temp_dirs([*proc.cmdline(), proc.cwd()]))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                    missing = _missing_values(Scrape(r.read().decode()))
            except OSError:
                continue
        assert not missing, f"no non-zero values after 30 s for: {missing}"
        assert servers, "the demo should run its own postgres and redis-server"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "demo ready: http://" in output
    time.sleep(0.5)
    assert [p for p in servers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert temp_dirs, "the servers' temporary directories were not seen"
    left = [d for d in temp_dirs if os.path.exists(d)]
    assert left == [], f"temporary directories left behind: {left}"
