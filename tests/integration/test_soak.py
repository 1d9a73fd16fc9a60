"""No leaks: 200 fault cycles while a real exporter process is scraped over HTTPS (TLS and basic
auth), reloaded and SIGTERMed on the way; then everything is as before.

The cycle mix (see bench/soak.py, which runs the same with --cycles 1000): measured on the
2-core test machine, a SIGTERM cycle costs about 3 s (measuring the old process, its exit, a
new process that listens and sees both servers), a real restart of both servers about 0.7 s, a
link outage through the proxy about 0.65 s, a reload about 0.4 s and a link cut about 0.1 s.
Every 25th cycle is a SIGTERM (7: not the 200th, which would leave the last process nothing to
be measured over), every 10th otherwise a real restart of PostgreSQL and Redis (17), every 7th
otherwise a reload (25, SIGHUP and POST /-/reload in turn), and the others alternate link cuts
(83) and link outages (68): under two minutes in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import STEADY, run_soak
from tests.support.servers import REQUIRED_MAJORS, postgres_binaries
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis

pytestmark = pytest.mark.integration

CYCLES = 200
RESTART_EVERY = 10
RELOAD_EVERY = 7
SIGTERM_EVERY = 25
WARMUP = 5  # cycles each exporter process serves before its figures are taken
RSS_GROWTH_LIMIT = 16 * 1024 * 1024


async def test_soak_fault_cycles_reloads_and_sigterms_leak_nothing(tmp_path: Path) -> None:
    with (
        LocalPostgres(postgres_binaries(REQUIRED_MAJORS[-1])) as pg,
        LocalRedis(password="soak-secret-pw") as rd,
    ):
        figures = await run_soak(
            pg, rd, CYCLES, restart_every=RESTART_EVERY, reload_every=RELOAD_EVERY,
            sigterm_every=SIGTERM_EVERY, warmup=WARMUP, workdir=tmp_path,
        )
    print(figures.report())  # shown with -s or on failure
    assert figures.cycles == CYCLES
    kinds = (figures.sigterms, figures.restarts, figures.reloads, figures.cuts, figures.outages)
    assert kinds == (7, 17, 25, 83, 68)
    assert figures.reloads_by_signal == 13  # SIGHUP first, then POST, in turn
    assert len(figures.processes) == figures.sigterms + 1
    # Scraping: no failure outside the restart windows, and it went on through every cycle.
    assert figures.failed_scrapes == 0, figures.failures
    assert figures.unrecovered_cycles == 0
    assert figures.scrapes > 2 * CYCLES
    assert 0 < figures.restart_refused <= figures.restart_scrapes  # nobody listened a moment
    # Reloads: each in effect within 5 s, the connections settled back afterwards.
    assert figures.failed_reloads == 0, figures.failures
    assert figures.unsettled_cycles == 0, figures.failures
    # SIGTERMs (and the last stop): gone within 5 s, exit code 0, no traceback, no connection.
    for process in figures.processes:
        assert process.exit_code == 0, process.stderr_tail
        assert not process.traceback, process.stderr_tail
        assert process.exit_seconds is not None and process.exit_seconds < 5.0
        assert not process.connections_left
    # Connections: back to one per database and one INFO + one census client on Redis.
    pg_named, pg_all, redis_named, redis_all = STEADY
    assert figures.pg_connections_before == figures.pg_connections_after == pg_named
    assert figures.pg_clients_before == figures.pg_clients_after == pg_all
    assert figures.redis_clients_before == figures.redis_clients_after == redis_named
    assert figures.redis_all_clients_before == figures.redis_all_clients_after == redis_all
    # The last exporter process: no descriptor or socket more than after its warm-up.
    last = figures.last_process
    assert last.measured and last.measured_cycles == CYCLES - 175 - WARMUP
    assert last.fds_after <= last.fds_before
    assert last.sockets_after == last.sockets_before
    assert last.sockets_before == {"listening": 1, "postgres": 2, "redis": 2}
    assert last.rss_after - last.rss_before < RSS_GROWTH_LIMIT
    assert figures.problems(RSS_GROWTH_LIMIT) == []  # every earlier process the same
