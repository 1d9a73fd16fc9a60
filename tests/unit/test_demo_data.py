"""The demo's data and load without a server: connection strings, row counts, and a load that
survives servers it cannot reach (the demo on real servers: tests/integration/test_demo_data.py)."""

import asyncio
import time

from tmi_db_exporter.demo.data import seed_row_counts, with_dbname
from tmi_db_exporter.demo.load import run_load


def test_load_survives_unreachable_servers_and_stops_promptly() -> None:
    async def scenario() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(run_load("host=127.0.0.1 port=1 dbname=tmi user=postgres",
                                            "redis://127.0.0.1:1/0", stop))
        await asyncio.sleep(1.3)  # several failed attempts, each retried
        assert not task.done()
        started = time.monotonic()
        stop.set()
        await task
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_with_dbname_and_row_counts() -> None:
    assert "dbname=tmi" in with_dbname("host=/tmp port=5432 user=postgres dbname=postgres", "tmi")
    assert "dbname=tmi" in with_dbname("postgresql://postgres@localhost:5432/postgres", "tmi")
    counts = seed_row_counts(users=10, threat_models=20)
    assert counts["threats"] == 20 * 6 - 12 and counts["diagrams"] == 40
    assert counts["user_providers"] == 12 and counts["schema_migrations"] == 1
