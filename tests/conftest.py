"""Fixtures: real PostgreSQL (every required major) and real Redis on free ports. The helpers
around them live in tests/support/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import REQUIRED_MAJORS, postgres_binaries
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis


@pytest.fixture(scope="session", params=REQUIRED_MAJORS, ids=lambda m: f"pg{m}")
def postgres(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    """A shared server per major; tests that stop servers use `private_postgres`."""
    with LocalPostgres(postgres_binaries(request.param)) as server:
        yield server


@pytest.fixture(params=REQUIRED_MAJORS[:1] + REQUIRED_MAJORS[-1:], ids=lambda m: f"pg{m}")
def private_postgres(request: pytest.FixtureRequest) -> Iterator[LocalPostgres]:
    with LocalPostgres(postgres_binaries(request.param)) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    with LocalRedis(password="redis-secret-pw") as server:
        yield server
