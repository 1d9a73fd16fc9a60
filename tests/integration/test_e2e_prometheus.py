"""End to end: a real Prometheus scrapes the exporter every second with our rules loaded, and
every dashboard panel's query is asked through Prometheus' HTTP API. Each panel that should
have data must have it; the rules must load and evaluate without errors, and the alerts the
demo data deserves (Redis without a password, sessions without TTL, ...) must be on their way.

The servers are the demo's (tmi_db_exporter.demo: TMI data and load on a throwaway
PostgreSQL and Redis) plus a streaming standby of that PostgreSQL with an exporter of its own, so
that the replication panels of both sides have data. They also get what some other panels need: a
backup directory with a file, an unused replication slot, a Redis maxmemory, AOF, a low slowlog
threshold, a latency spike and statement text. Only the panels in NO_DATA may stay empty, each for
the reason given there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import redis.asyncio as aioredis
import yaml

from monitoring import checks, promql
from tmi_db_exporter import catalog
from tmi_db_exporter.demo import data as demo_data
from tmi_db_exporter.demo import load as demo_load
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis
from tmi_db_exporter.sources.postgres.queries import default_queries_path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

JOB = "tmi-db"
SCRAPES_BEFORE_ASKING = 8
PATIENCE = 60.0  # seconds to wait for every panel to have data

# Panels that legitimately have no data on a single demo server, and why.
NO_DATA = {
    ("tmi-db-overview.json", "Skipped queries"): "every collector can run on the demo",
}
# Metrics used by the rules or dashboards that the demo cannot have, and why.
ABSENT_ON_DEMO = {
    "tmi_db_exporter_query_skipped": "nothing is skipped",
    "ALERTS": "no alert has fired yet (their `for` is minutes)",
}
# Series Prometheus makes itself.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "scrape_samples_post_metric_relabeling", "scrape_series_added",
                  "ALERTS", "ALERTS_FOR_STATE"}
# Documented metrics that the demo servers cannot produce, and why.
NOT_ON_DEMO = {
    "tmi_db_exporter_query_skipped": "every collector can run on the demo",
}
# Documented metrics that depend on the server's version, and why.
VERSION_DEPENDENT = {
    "redis_acl_access_denied_total": "INFO has acl_access_denied_* from Redis 7.2 on",
}
# Alerts the demo data deserves, which must at least be pending after a few evaluations.
EXPECTED_ACTIVE = {
    "TmiRedisAuthNotRequired",  # the demo Redis has no password
    "TmiRedisDangerousCommandsEnabled",  # nor renamed commands
    "TmiRedisKeysWithoutTtl",  # every 20th demo session has no TTL
    "TmiPostgresConnectionsWithoutSsl",  # the demo PostgreSQL has no TLS
    "TmiPostgresSlowStatements",  # the demo's SELECT pg_sleep(0.15)
}
NEVER_ACTIVE = {"TmiDbExporterDown", "TmiPostgresDown", "TmiRedisDown", "TmiDbCollectorFailing",
                "TmiPostgresMigrationDirty", "TmiRedisLastBgsaveFailed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fast_queries_file(directory: Path) -> Path:
    """The built-in queries with every TTL at 1 s, so that a short test sees counters move
    (pg_stat_statements is otherwise read every 30 s, sizes every 5 minutes)."""
    text = default_queries_path().read_text()
    path = directory / "queries.yaml"
    path.write_text(re.sub(r"^(\s+ttl:) .*$", r"\1 1s", text, flags=re.MULTILINE))
    return path


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[
    tuple[LocalPostgres, LocalPostgres, LocalRedis, LocalRedis]
]:
    """The demo's servers, data and load, plus a streaming standby of the PostgreSQL and a
    replica of the Redis (each watched by the second exporter)."""
    primary, redis_server = LocalPostgres(), LocalRedis()
    standby = LocalPostgres(primary=primary)
    redis_replica = LocalRedis(extra_config={"replicaof": f"127.0.0.1 {redis_server.port}"})
    try:
        await asyncio.gather(asyncio.to_thread(primary.start),
                             asyncio.to_thread(redis_server.start))
        await demo_data.seed_postgres(primary.dsn("postgres"))
        await demo_data.seed_redis(redis_server.url)
        # pg_basebackup waits for a spread checkpoint; with the seed data still dirty in
        # shared buffers that takes minutes, after an explicit CHECKPOINT it is instant
        async with await psycopg.AsyncConnection.connect(primary.dsn(),
                                                         autocommit=True) as conn:
            await conn.execute("CHECKPOINT")
        await asyncio.gather(asyncio.to_thread(standby.start),
                             asyncio.to_thread(redis_replica.start))
        stop = asyncio.Event()
        load = asyncio.create_task(demo_load.run_load(primary.dsn("tmi"), redis_server.url, stop))
        try:
            yield primary, standby, redis_server, redis_replica
        finally:
            stop.set()
            await asyncio.gather(load, return_exceptions=True)
    finally:
        for server in (standby, primary, redis_replica, redis_server):
            await asyncio.to_thread(server.stop)


async def prepare(primary: LocalPostgres, redis_server: LocalRedis, backups: Path) -> None:
    backups.mkdir()
    (backups / "tmi_20250101_020000.dump").write_bytes(b"PGDMP" + b"\0" * 2048)
    async with await psycopg.AsyncConnection.connect(primary.dsn(), autocommit=True) as conn:
        await conn.execute("SELECT pg_create_physical_replication_slot('e2e_unused', true)")
    client = aioredis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        for key, value in (("maxmemory", "1gb"), ("appendonly", "yes"),
                           ("slowlog-log-slower-than", "1000"),
                           ("latency-monitor-threshold", "1")):
            await client.config_set(key, value)
        for _ in range(3):  # a few slow commands: slowlog entries and a latency spike
            await client.eval("local i = 0 while i < 400000 do i = i + 1 end return i", 0)
    finally:
        await client.aclose()


async def slow_reports(dsn: str) -> None:
    """The demo's slow statement every second (the demo load runs it every ~10 s), so that its
    10-minute mean is there within the test's few seconds."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while True:
            await conn.execute(demo_data.SLOW_STATEMENT)
            await asyncio.sleep(1)


async def wait_http(url: str, seconds: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[0]} exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s: {log.read_text()[-3000:]}")


@contextlib.asynccontextmanager
async def started(args: list[str], log: Path, env: dict[str, str] | None = None,
                  ) -> AsyncIterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class PromAPI:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(self.base + path, params=params) as resp:
            body = await resp.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        return (await self.get("/api/v1/query", query=expr))["result"]


def panel_queries(values: dict[str, str]) -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression with variables filled in) of every panel."""
    out = []
    for name, board in checks.dashboards().items():
        for panel, expr in checks.panel_exprs(board):
            out.append((name, panel["title"], checks.substitute(expr, values)))
    return out


async def empty_panels(api: PromAPI, queries: list[tuple[str, str, str]]) -> dict[Any, str]:
    """Panels (dashboard, title) with a query that returns nothing -> that query."""
    results = await asyncio.gather(*(api.query(expr) for _, _, expr in queries))
    empty: dict[Any, str] = {}
    for (name, title, expr), result in zip(queries, results, strict=True):
        if not result:
            empty.setdefault((name, title), expr)
    return empty


def prometheus_config(directory: Path, targets: list[str]) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in checks.RULE_FILES],
        "scrape_configs": [{"job_name": JOB,
                            "static_configs": [{"targets": targets}]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_dashboards_and_rules_on_a_real_prometheus(tmp_path: Path) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus not found: apt-get install prometheus (.ci/run installs it)")
    started_at = time.monotonic()
    async with servers() as (primary, standby, redis_server, redis_replica):
        await prepare(primary, redis_server, tmp_path / "backups")
        reports = asyncio.create_task(slow_reports(primary.dsn("tmi")))
        try:
            await run_and_check(tmp_path, primary, standby, redis_server, redis_replica,
                                prometheus, started_at)
        finally:
            reports.cancel()
            await asyncio.gather(reports, return_exceptions=True)


def exporter_env(port: int, postgres: LocalPostgres, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "POSTGRES_HOST": postgres.host, "POSTGRES_PORT": str(postgres.port),
        "POSTGRES_USER": postgres.user, "POSTGRES_DATABASE": "tmi",
        "POSTGRES_SSL_MODE": "disable",
        "TMI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1", "TMI_EXPORTER_LISTEN_PORT": str(port),
        **more,
    }


async def run_and_check(tmp_path: Path, primary: LocalPostgres, standby: LocalPostgres,
                        redis_server: LocalRedis, redis_replica: LocalRedis, prometheus: str,
                        started_at: float) -> None:
    port, standby_port, prom_port = free_port(), free_port(), free_port()
    queries_file = str(fast_queries_file(tmp_path))
    main_env = exporter_env(
        port, primary, POSTGRES_ENABLE_QUERIES="pg_stat_statements_query",
        REDIS_HOST=redis_server.host, REDIS_PORT=str(redis_server.port),
        REDIS_SLOWLOG_INTERVAL="1s", TMI_EXPORTER_BACKUP_PATHS=str(tmp_path / "backups"),
        TMI_EXPORTER_QUERIES_FILE=queries_file)
    standby_env = exporter_env(
        standby_port, standby, TMI_EXPORTER_QUERIES_FILE=queries_file,
        REDIS_HOST=redis_replica.host, REDIS_PORT=str(redis_replica.port))
    instances = [f"127.0.0.1:{port}", f"127.0.0.1:{standby_port}"]
    logs = [tmp_path / "exporter.log", tmp_path / "exporter-standby.log"]
    prom_log = tmp_path / "prometheus.log"
    command = [sys.executable, "-m", "tmi_db_exporter", "run"]
    async with started(command, logs[0], main_env) as main, \
            started(command, logs[1], standby_env) as second:
        await wait_http(f"http://{instances[0]}/healthz", 30, main, logs[0])
        await wait_http(f"http://{instances[1]}/healthz", 30, second, logs[1])
        async with started([prometheus,
                            f"--config.file={prometheus_config(tmp_path, instances)}",
                            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                            f"--web.listen-address=127.0.0.1:{prom_port}",
                            "--log.level=warn"], prom_log) as prom:
            base = f"http://127.0.0.1:{prom_port}"
            await wait_http(base + "/-/ready", 30, prom, prom_log)
            async with aiohttp.ClientSession() as http:
                await check_everything(PromAPI(http, base), instances, started_at, logs)


async def check_everything(api: PromAPI, instances: list[str], started_at: float,
                           logs: list[Path]) -> None:
    # what Grafana puts in for both instances selected
    values = {"$job": JOB, "$instance": "|".join(instances), "$datname": "tmi",
              "$__rate_interval": "5s", "$__interval": "1s", "$__range": "1m"}
    queries = panel_queries(values)
    assert len(queries) > 150

    # a few scrapes first, then ask until every panel that should have data has it
    deadline = time.monotonic() + PATIENCE
    scrapes = f'count_over_time(up{{job="{JOB}"}}[1m]) >= {SCRAPES_BEFORE_ASKING}'
    while not await api.query(scrapes):
        assert time.monotonic() < deadline, "Prometheus did not scrape the exporter"
        await asyncio.sleep(1)
    while True:
        empty = await empty_panels(api, queries)
        unexpected = {k: v for k, v in empty.items() if k not in NO_DATA}
        if not unexpected or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    tails = "\n".join(f"{log.name}: {log.read_text()[-2000:]}" for log in logs)
    assert not unexpected, f"panels without data: {unexpected}\n{tails}"
    assert set(NO_DATA) <= {(n, t) for n, t, _ in queries}, "NO_DATA names a panel that is gone"

    # the target is up, every rule group loaded and evaluates without errors
    targets = (await api.get("/api/v1/targets"))["activeTargets"]
    assert sorted(t["labels"]["instance"] for t in targets) == sorted(instances)
    assert all(t["health"] == "up" for t in targets), targets
    groups = (await api.get("/api/v1/rules"))["groups"]
    assert {g["name"] for g in groups} == {f"tmi-db-{g}" for g in
                                           ("recording", "exporter", "postgres", "redis")}
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(1 for _ in checks.rules())
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken
    recorded = {r["name"] for r in rules if r["type"] == "recording"}
    for name in recorded:
        assert await api.query(name), f"recording rule {name} has no data"

    # the alerts the demo deserves are on their way, the outages are not
    active = {a["labels"]["alertname"] for a in (await api.get("/api/v1/alerts"))["alerts"]}
    assert active >= EXPECTED_ACTIVE, f"missing: {EXPECTED_ACTIVE - active}"
    assert not active & NEVER_ACTIVE

    # every metric the rules and dashboards read exists in the real output
    present = set(await api.get("/api/v1/label/__name__/values"))
    used = set().union(*(promql.metric_names(expr) for _, expr in checks.all_exprs()))
    missing = used - present - recorded - set(ABSENT_ON_DEMO)
    assert not missing, f"used but never exported on the demo: {missing}"

    # every metric exported is documented, every documented one is exported on the demo
    documented = {row.name for row in catalog.metric_rows()}
    exported = present - recorded - PROMETHEUS_OWN
    undocumented = {n for n in exported - documented if not n.startswith("pg_settings_")}
    assert not undocumented, f"exported but not in the registry/README: {sorted(undocumented)}"
    settings_row = {n for n in documented if n.startswith("pg_settings_<")}
    never = documented - present - settings_row - set(NOT_ON_DEMO) - set(VERSION_DEPENDENT)
    assert not never, f"documented but never exported on the demo: {sorted(never)}"
    assert not set(NOT_ON_DEMO) & present, "NOT_ON_DEMO names a metric the demo exports"

    # the dashboard variables find their values
    for board in checks.dashboards().values():
        for var in board["templating"]["list"]:
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", var.get("query") or "")
            if match:
                selector = checks.substitute(match.group(1), values)
                found = await api.query(f"count by ({match.group(2)}) ({selector})")
                assert found, f"variable {var['name']}: {var['query']} finds nothing"

    assert time.monotonic() - started_at < 90, "the end-to-end test got slow"
