"""Stopping, `once`, reload and SIGTERM always finish, whatever the servers and the key census
are doing, and leave no connection behind.

redis-py (asyncio) is known to swallow a cancellation now and then; these tests close targets
at random moments while a census of 100,000 keys runs and check every bound against real
servers (bench/soak.py is the long version).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import redis

from bench.faults import pg_exporter_connections, redis_exporter_clients
from tests.support.scraping import eventually
from tmi_db_exporter.app.runtime import Runtime
from tmi_db_exporter.app.server import serve
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.config.loading import load_settings
from tmi_db_exporter.demo.servers import (
    LocalPostgres,
    LocalRedis,
    find_postgres_binaries,
    free_port,
)
from tmi_db_exporter.sources.postgres.queries import load_specs

pytestmark = pytest.mark.integration

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
CENSUS_KEYS = 100_000
CLOSE_BOUND = 5.0  # seconds: what Kubernetes' and systemd's grace periods leave comfortably
STORM_CYCLES = 200  # per PostgreSQL major
ONCE_RUNS = 50
RELOADS = 20
SIGTERMS = 20
# A census that finishes 100,000 keys in about a second, for `once` (its default pacing spends
# a 5 ms pause per 100 keys; the storm keeps the default, so that a census is always running).
FAST_CENSUS = {"REDIS_KEY_CENSUS_PAUSE": "0", "REDIS_KEY_CENSUS_SCAN_COUNT": "1000"}


def fill(server: LocalRedis, keys: int) -> None:
    client = redis.Redis(host=server.host, port=server.port)
    patterns = ("session:{}", "cache:threat:{}", "auth:token:{}", "rate_limit:user:{}:api", "x:{}")
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(patterns[i % len(patterns)].format(i), "v", ex=None if i % 20 == 0 else 3600)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    assert client.dbsize() == keys


@pytest.fixture(scope="module")
def census_redis() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        fill(server, CENSUS_KEYS)
        yield server


@pytest.fixture(scope="module")
def one_postgres() -> Iterator[LocalPostgres]:
    with LocalPostgres(find_postgres_binaries()[0]) as server:
        yield server


def env_for(postgres: LocalPostgres, redis_server: LocalRedis, **more: str) -> dict[str, str]:
    return {
        "POSTGRES_HOST": postgres.host, "POSTGRES_PORT": str(postgres.port),
        "POSTGRES_USER": postgres.user, "POSTGRES_SSL_MODE": "disable",
        "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port),
        "TMI_EXPORTER_MIN_TTL": "0", **more,
    }


def is_empty(found: dict[str, int]) -> bool:
    return not found


async def settle(check: Callable[[], T], ok: Callable[[T], bool], seconds: float = 5.0) -> T:
    """`check()` (a blocking look at a server) until `ok` holds: servers notice a closed socket
    a moment later."""
    return await eventually(lambda: asyncio.to_thread(check), ok, round(seconds / 0.1), 0.1)


async def test_closing_at_random_moments_is_bounded_and_leaves_nothing(
    private_postgres: LocalPostgres, census_redis: LocalRedis
) -> None:
    postgres = private_postgres  # nobody else's connections to count
    settings = load_settings(env=env_for(postgres, census_redis))
    specs = load_specs(settings)
    rng = random.Random(20261204)
    slowest = 0.0
    for _ in range(STORM_CYCLES):
        target = Target(settings, specs)
        scrape = asyncio.create_task(target.scrape(5.0))
        await asyncio.sleep(rng.uniform(0, 0.25))  # mid-connect, mid-query, mid-census
        if rng.random() < 0.5:
            scrape.cancel()  # a client that hangs up
        started = time.monotonic()
        try:
            await asyncio.wait_for(target.close(), CLOSE_BOUND)
        except TimeoutError:
            pytest.fail(f"close() still running after {CLOSE_BOUND}s")
        slowest = max(slowest, time.monotonic() - started)
        await asyncio.gather(scrape, return_exceptions=True)
    assert slowest < CLOSE_BOUND
    assert await settle(lambda: redis_exporter_clients(census_redis), is_empty) == {}
    assert await settle(lambda: pg_exporter_connections(postgres), is_empty) == {}


def _once(env: dict[str, str]) -> tuple[int, str, str, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", "once"], capture_output=True, text=True,
        timeout=30, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}, cwd=ROOT,
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


async def test_once_always_exits_and_includes_the_key_census(
    one_postgres: LocalPostgres, census_redis: LocalRedis
) -> None:
    env = env_for(one_postgres, census_redis, TMI_EXPORTER_SCRAPE_TIMEOUT="10s", **FAST_CENSUS)
    bound = 10 + CLOSE_BOUND + 5  # the scrape timeout, closing, and starting Python
    for _ in range(ONCE_RUNS // 2):
        pair = await asyncio.gather(asyncio.to_thread(_once, env), asyncio.to_thread(_once, env))
        for code, out, err, took in pair:
            assert code == 0, err
            assert took < bound, f"once took {took:.1f}s"
            assert re.search(r'^redis_key_group_count\{db="db0",key_group="session"\} ', out,
                             flags=re.MULTILINE), err
            assert "pg_up 1" in out and "redis_up 1" in out


@asynccontextmanager
async def serving(env: dict[str, str]) -> AsyncIterator[str]:
    port = free_port()
    flags = {"listen_address": "127.0.0.1", "listen_port": str(port), "enable_lifecycle": "true"}

    def load() -> tuple[Any, list[Any]]:
        settings = load_settings(env=env, flags=flags)
        return settings, load_specs(settings)

    stop = asyncio.Event()
    task = asyncio.create_task(serve(Runtime(load, *load()), None, stop))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(base + "/healthz"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, CLOSE_BOUND * 2)


async def test_reloads_answer_quickly_and_leave_no_old_census_or_connection(
    one_postgres: LocalPostgres, census_redis: LocalRedis
) -> None:
    env = env_for(one_postgres, census_redis, REDIS_KEY_CENSUS_INTERVAL="1s", **FAST_CENSUS)
    failures: list[str] = []
    scraping = asyncio.Event()

    async def scrape_all_along(http: aiohttp.ClientSession, base: str) -> None:
        while not scraping.is_set():
            async with http.get(base + "/metrics", timeout=aiohttp.ClientTimeout(10)) as resp:
                body = await resp.text()
                if resp.status != 200 or "\npg_up 1\n" not in body or "\nredis_up 1\n" not in body:
                    failures.append(f"{resp.status}: {body[:200]}")
            await asyncio.sleep(0.05)

    async with serving(env) as base, aiohttp.ClientSession() as http:
        scraper = asyncio.create_task(scrape_all_along(http, base))
        census = "tmi-db-exporter-census"
        clients = await settle(lambda: redis_exporter_clients(census_redis), lambda c: census in c)
        assert census in clients
        steady = await asyncio.to_thread(pg_exporter_connections, one_postgres)
        rng = random.Random(13)
        for _ in range(RELOADS):
            await asyncio.sleep(rng.uniform(0, 0.4))
            started = time.monotonic()
            async with http.post(base + "/-/reload",
                                 timeout=aiohttp.ClientTimeout(CLOSE_BOUND)) as resp:
                assert resp.status == 200, await resp.text()
            assert time.monotonic() - started < CLOSE_BOUND
        async def reload() -> int:
            async with http.post(base + "/-/reload",
                                 timeout=aiohttp.ClientTimeout(CLOSE_BOUND)) as resp:
                return resp.status

        started = time.monotonic()  # two at once: the second never waits for the first's close
        assert await asyncio.gather(reload(), reload()) == [200, 200]
        assert time.monotonic() - started < CLOSE_BOUND
        await asyncio.sleep(1.5)  # the last target's census starts
        scraping.set()
        await scraper
        assert failures == []

        def census_connections() -> int:
            return redis_exporter_clients(census_redis).get(census, 0)

        assert await settle(census_connections, lambda n: n == 1) == 1
        assert await settle(lambda: pg_exporter_connections(one_postgres),
                            lambda now: now == steady) == steady


def _terminate_at_a_random_moment(env: dict[str, str], wait: float) -> tuple[float, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tmi_db_exporter", "run"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
    time.sleep(wait)
    url = f"http://127.0.0.1:{env['TMI_EXPORTER_LISTEN_PORT']}/metrics"
    with contextlib.suppress(OSError):  # a scrape starts the census; it may be mid-way
        urllib.request.urlopen(url, timeout=0.3).close()
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        _, err = process.communicate(timeout=CLOSE_BOUND * 2)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return float("inf"), err
    return time.monotonic() - started, err


async def test_sigterm_at_any_moment_ends_the_process_within_seconds(
    one_postgres: LocalPostgres, census_redis: LocalRedis
) -> None:
    rng = random.Random(7)
    for _ in range(SIGTERMS // 2):
        runs = []
        for _ in range(2):
            env = env_for(one_postgres, census_redis, TMI_EXPORTER_LISTEN_PORT=str(free_port()),
                          TMI_EXPORTER_LISTEN_ADDRESS="127.0.0.1")
            runs.append(asyncio.to_thread(_terminate_at_a_random_moment, env,
                                          rng.uniform(0.2, 2.5)))
        for took, err in await asyncio.gather(*runs):
            assert took < CLOSE_BOUND, f"still running {took:.1f}s after SIGTERM:\n{err[-2000:]}"
            assert "Traceback" not in err, err
