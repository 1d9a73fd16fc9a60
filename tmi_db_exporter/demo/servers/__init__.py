"""Throwaway PostgreSQL and Redis servers started from local binaries, for the demo command,
the tests and the benchmarks."""

from tmi_db_exporter.demo.servers.postgres import (
    LocalPostgres,
    PostgresBinaries,
    find_postgres_binaries,
)
from tmi_db_exporter.demo.servers.process import LOCALHOST, free_port
from tmi_db_exporter.demo.servers.redis import LocalRedis

__all__ = [
    "LOCALHOST",
    "LocalPostgres",
    "LocalRedis",
    "PostgresBinaries",
    "find_postgres_binaries",
    "free_port",
]
