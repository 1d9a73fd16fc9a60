"""No leaks: 200 fault cycles while scraping continuously, then everything is as before.

The cycle mix (see bench/soak.py, which runs the same with --cycles 1000): measured on the
2-core test machine, a real restart of both servers costs about 0.8 s per cycle (stop, a scrape
that sees them down, start, the first backoff step, a scrape that sees them up), a link outage
through the proxy about 0.7 s and a link cut about 0.13 s. 200 real restarts alone would take
close to three minutes, so every 5th cycle is a real restart of PostgreSQL and Redis (40 in all)
and the others alternate link cuts and link outages (80 each): about 100 s in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import STEADY, run_soak
from tests.support.servers import REQUIRED_MAJORS, postgres_binaries
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis

pytestmark = pytest.mark.integration

CYCLES = 200
RESTART_EVERY = 5
RSS_GROWTH_LIMIT = 16 * 1024 * 1024


async def test_soak_fault_cycles_leak_nothing(tmp_path: Path) -> None:
    with (
        LocalPostgres(postgres_binaries(REQUIRED_MAJORS[-1])) as pg,
        LocalRedis(password="soak-secret-pw") as rd,
    ):
        figures = await run_soak(pg, rd, CYCLES, RESTART_EVERY, warmup=20, workdir=tmp_path)
    print(figures.report())  # shown with -s or on failure
    assert figures.cycles == CYCLES
    assert figures.restarts == CYCLES // RESTART_EVERY
    assert figures.cuts + figures.outages == CYCLES - figures.restarts
    assert figures.failed_scrapes == 0, figures.failures
    assert figures.unrecovered_cycles == 0
    assert figures.scrapes > 2 * CYCLES  # scraping went on through every cycle
    # Connections: back to one per database and one INFO + one census client on Redis.
    pg_named, pg_all, redis_named, redis_all = STEADY
    assert figures.pg_connections_before == figures.pg_connections_after == pg_named
    assert figures.pg_clients_before == figures.pg_clients_after == pg_all
    assert figures.redis_clients_before == figures.redis_clients_after == redis_named
    assert figures.redis_all_clients_before == figures.redis_all_clients_after == redis_all
    # The process: no descriptor, task or connection object more than after warm-up.
    assert figures.fds_after <= figures.fds_before
    assert figures.objects_after == figures.objects_before
    assert figures.rss_after - figures.rss_before < RSS_GROWTH_LIMIT
    assert figures.problems() == []
