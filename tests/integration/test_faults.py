"""Fault tolerance: whatever happens to PostgreSQL, Redis or the link to them, every scrape
completes with `pg_up` / `redis_up` and per-collector error metrics, the exporter reconnects by
itself (with backoff and jitter), and one failing query never hides the others.

The faults are real: servers stopped and started, a lock held by another session, statements
that outlive their timeout, a server out of connection slots, and a TCP proxy (bench/faults.py)
that cuts or stalls the link. Nothing is mocked; the tests check values, not durations (waits are
bounded polls, and the only time-based assertions are lower bounds that a slow machine can only
make easier to meet).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from bench.faults import (
    FaultProxy,
    pg_exporter_connections,
    pg_exporter_pids,
    redis_exporter_clients,
)
from tests.support.postgres import pg_connect
from tests.support.scraping import Scrape, eventually, make_target, scrape
from tests.support.servers import REQUIRED_MAJORS, pg_env, postgres_binaries, redis_env
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.core import reachability as backoff_module
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis

pytestmark = pytest.mark.integration

ERRORS = "tmi_db_exporter_collector_errors_total"
PG_FAST = {"POSTGRES_CONNECT_TIMEOUT": "2"}
REDIS_FAST = {"REDIS_TIMEOUT": "1"}


@pytest.fixture
def pg() -> Iterator[LocalPostgres]:
    """A private server of the newest required major (the faults do not depend on it)."""
    with LocalPostgres(postgres_binaries(REQUIRED_MAJORS[-1])) as server:
        yield server


def queries_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "fault_queries.yaml"
    path.write_text(text)
    return str(path)


def proxied(pg_proxy: FaultProxy | None, redis_proxy: FaultProxy | None,
            redis_server: LocalRedis | None = None) -> dict[str, str]:
    env: dict[str, str] = {}
    if pg_proxy is not None:
        env |= PG_FAST | {"POSTGRES_HOST": pg_proxy.host, "POSTGRES_PORT": str(pg_proxy.port),
                "POSTGRES_USER": "postgres", "POSTGRES_SSL_MODE": "disable"}
    if redis_proxy is not None:
        env |= REDIS_FAST | {"REDIS_HOST": redis_proxy.host, "REDIS_PORT": str(redis_proxy.port)}
        if redis_server is not None and redis_server.password:
            env["REDIS_PASSWORD"] = redis_server.password
    return env


def errors(result: Scrape) -> dict[str, float]:
    return {labels["collector"]: value for labels, value in result.series(ERRORS)}


async def scrape_until(exporter: Target, ok: Any, attempts: int = 120,
                       pause: float = 0.25) -> Scrape:
    """Scrape until `ok(result)` holds (a bounded poll: reconnecting waits out its backoff)."""
    result = await eventually(lambda: scrape(exporter), ok, attempts, pause)
    assert ok(result), f"condition never held; last scrape:\n{result.text[:3000]}"
    return result


async def wait_for(condition: Any, attempts: int = 100, pause: float = 0.2) -> None:
    for _ in range(attempts):
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(pause)
    raise AssertionError("condition never held")


def both_up(result: Scrape) -> bool:
    return result.value("pg_up") == 1 and result.value("redis_up") == 1


def assert_self_metrics(result: Scrape, exporter: Target) -> None:
    """Every collector reports its health in every scrape, whatever the servers do."""
    assert set(errors(result)) == {c.name for c in exporter.collectors}


# --- stopped and restarted ------------------------------------------------------------------


async def test_stopped_then_restarted_servers(
    private_postgres: LocalPostgres, private_redis: LocalRedis
) -> None:
    env = pg_env(private_postgres) | redis_env(private_redis) | PG_FAST | REDIS_FAST
    exporter = make_target(env)
    try:
        first = await scrape(exporter)
        assert both_up(first)
        steady_pg = pg_exporter_connections(private_postgres)
        steady_redis = redis_exporter_clients(private_redis)
        assert steady_pg == {"postgres": 1} and steady_redis["tmi-db-exporter"] == 1

        await asyncio.to_thread(private_postgres.kill)
        await asyncio.to_thread(private_redis.kill)
        for _ in range(3):
            down = await scrape(exporter)
            assert down.value("pg_up") == 0 and down.value("redis_up") == 0
            # Nothing stale is passed off as live.
            assert down.series("pg_stat_activity_count") == []
            assert down.series("redis_connected_clients") == []
            assert_self_metrics(down, exporter)

        await asyncio.to_thread(private_postgres.start_again)
        await asyncio.to_thread(private_redis.start_again)
        back = await scrape_until(exporter, both_up)
        # Fresh values from the restarted servers, not the old ones.
        assert back.value("pg_postmaster_start_time_seconds") > first.value(
            "pg_postmaster_start_time_seconds"
        )
        assert back.value("redis_uptime_in_seconds") < first.value(
            "redis_uptime_in_seconds"
        ) + 5
        assert back.value("pg_settings_max_connections") == 100
        assert back.value("redis_connected_clients") >= 1
        assert pg_exporter_connections(private_postgres) == steady_pg
        assert redis_exporter_clients(private_redis)["tmi-db-exporter"] == 1
    finally:
        await exporter.close()
    assert pg_exporter_connections(private_postgres) == {}
    assert redis_exporter_clients(private_redis) == {}


# --- the link: cut mid-query, stalled -------------------------------------------------------


async def test_link_cut_mid_query(pg: LocalPostgres, private_redis: LocalRedis,
                                  tmp_path: Path) -> None:
    slow = queries_file(tmp_path, (
        "fault_slow:\n  help: Takes a while.\n  sql: SELECT 1 AS x FROM pg_sleep(1)\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    ))
    async with FaultProxy(pg.port) as pg_proxy, FaultProxy(private_redis.port) as redis_proxy:
        env = proxied(pg_proxy, redis_proxy, private_redis)
        exporter = make_target(env, {"extra_queries_files": slow})
        try:
            first = await scrape(exporter)
            assert both_up(first) and first.value("fault_slow_x") == 1
            before = pg_exporter_pids(pg)

            in_flight = asyncio.create_task(scrape(exporter))

            def sleeping() -> bool:
                with pg_connect(pg) as conn:
                    return conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                        " 'tmi-db-exporter' AND state = 'active' AND query LIKE '%pg_sleep%'"
                    ).fetchone()[0] == 1

            await wait_for(sleeping)
            assert await pg_proxy.cut() >= 1
            await redis_proxy.cut()
            cut = await in_flight
            assert cut.value("pg_up") == 1  # probed before the cut
            # The cut query failed (an error, no value), or was run again on a new connection.
            slow_failed = errors(cut)["pg:fault_slow"]
            assert slow_failed in (0, 1)
            assert cut.series("fault_slow_x") == ([] if slow_failed else [({}, 1.0)])

            after = await scrape(exporter)
            assert both_up(after)
            assert after.value("fault_slow_x") == 1
            assert after.value("pg_settings_max_connections") == 100
            assert after.value("redis_connected_clients") >= 1
            assert errors(after) == errors(cut)  # reconnected without a new error
            await wait_for(lambda: pg_exporter_connections(pg) == {"postgres": 1})
            assert pg_exporter_pids(pg).isdisjoint(before)  # a new connection, the old gone
            assert redis_exporter_clients(private_redis)["tmi-db-exporter"] == 1
        finally:
            await exporter.close()


async def test_one_connection_per_database_also_after_a_cut(
    pg: LocalPostgres, tmp_path: Path
) -> None:
    """The collectors of a scrape run concurrently; they share one new connection per database
    instead of each opening its own (counted by the proxy), and after a cut the connections of
    every database are replaced without a collector failing on a dead one."""
    per_db = queries_file(tmp_path, (
        "fault_db:\n  help: One per database.\n  scope: database\n  sql: SELECT 1 AS one\n"
        "  metrics:\n    - {column: one, type: gauge, help: One.}\n"
    ))
    with pg_connect(pg) as conn:
        conn.execute("CREATE DATABASE fault_app")
    async with FaultProxy(pg.port) as pg_proxy:
        exporter = make_target(proxied(pg_proxy, None), {"extra_queries_files": per_db})
        try:
            first = await scrape(exporter)
            assert len(first.series("fault_db_one")) == 2
            assert len(pg_proxy.accepted) == 2
            assert pg_exporter_connections(pg) == {"postgres": 1, "fault_app": 1}
            assert await pg_proxy.cut() == 2
            for _ in range(3):
                after = await scrape(exporter)
                assert after.value("fault_db_one", datname="fault_app") == 1
            assert len(pg_proxy.accepted) == 4
            assert errors(after) == errors(first)
            assert all(v == 0 for c, v in errors(after).items() if c.startswith("pg"))
            await wait_for(
                lambda: pg_exporter_connections(pg) == {"postgres": 1, "fault_app": 1}
            )
        finally:
            await exporter.close()


async def test_stalled_link_reads_as_down_then_recovers(
    pg: LocalPostgres, private_redis: LocalRedis
) -> None:
    """A link (or server) that hangs without closing anything: no error ever comes back, yet
    every scrape still says pg_up 0 / redis_up 0 instead of leaving them out."""
    async with FaultProxy(pg.port) as pg_proxy, FaultProxy(private_redis.port) as redis_proxy:
        exporter = make_target(proxied(pg_proxy, redis_proxy, private_redis))
        try:
            assert both_up(await scrape(exporter))
            pg_proxy.blackhole()
            redis_proxy.blackhole()
            for _ in range(3):
                stalled = await scrape(exporter, timeout=10)  # (it takes about 2.5 s)
                assert stalled.value("pg_up") == 0 and stalled.value("redis_up") == 0
                assert stalled.series("pg_stat_activity_count") == []
                assert_self_metrics(stalled, exporter)
            await pg_proxy.restore()
            await redis_proxy.restore()
            back = await scrape_until(exporter, both_up, attempts=200)
            assert back.value("pg_settings_max_connections") == 100
            # The stalled connections were abandoned and closed, not left behind.
            await wait_for(lambda: pg_exporter_connections(pg) == {"postgres": 1}, 150)
            await wait_for(
                lambda: redis_exporter_clients(private_redis).get("tmi-db-exporter") == 1, 150
            )
        finally:
            await exporter.close()


# --- a slow server ---------------------------------------------------------------------------


async def test_lock_and_statement_timeouts_fail_only_their_query(
    pg: LocalPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A table locked by an application, a statement past its timeout: those two collectors
    count an error, everything else is exported, and the connection is kept (no churn)."""
    caplog.set_level(logging.INFO)
    extra = queries_file(tmp_path, (
        "fault_locked:\n  help: Rows of a table a test locks.\n"
        "  sql: SELECT count(*) AS rows FROM fault_locked\n"
        "  metrics:\n    - {column: rows, type: gauge, help: Rows.}\n"
        "fault_sleepy:\n  help: Sleeps past its timeout.\n"
        "  sql: SELECT 1 AS x FROM pg_sleep(30)\n  timeout: 300ms\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    ))
    with pg_connect(pg) as conn:
        conn.execute("CREATE TABLE fault_locked (id int)")
        conn.execute("INSERT INTO fault_locked VALUES (1), (2), (3)")
    flags = {"extra_queries_files": extra, "postgres.auto_discover_databases": "false"}
    exporter = make_target(pg_env(pg) | PG_FAST, flags)
    holder = psycopg.connect(pg.dsn())
    try:
        first = await scrape(exporter)
        assert first.value("fault_locked_rows") == 3
        assert errors(first)["pg:fault_sleepy"] == 1  # it never makes it
        pids = pg_exporter_pids(pg)
        assert len(pids) == 1  # kept through the statement timeout of the first scrape
        holder.execute("LOCK TABLE fault_locked IN ACCESS EXCLUSIVE MODE")  # opens a transaction
        slow = await scrape(exporter)
        assert slow.value("pg_up") == 1
        assert slow.series("fault_locked_rows") == [] and slow.series("fault_sleepy_x") == []
        assert errors(slow)["pg:fault_locked"] == 1 and errors(slow)["pg:fault_sleepy"] == 2
        assert sum(v for c, v in errors(slow).items() if c not in
                   ("pg:fault_locked", "pg:fault_sleepy")) == 0
        # The others are there, and they see the situation.
        assert slow.value("pg_locks_count", datname="postgres", mode="accessexclusivelock") >= 1
        assert slow.value("pg_activity_idle_in_transaction", datname="postgres") == 1
        assert slow.value("pg_settings_max_connections") == 100
        assert pg_exporter_pids(pg) == pids  # the same connection, kept through both timeouts
        with pg_connect(pg) as conn:  # and nothing of ours is left running on the server
            (running,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                " 'tmi-db-exporter' AND state = 'active' AND query LIKE '%pg_sleep%'"
            ).fetchone()
        assert running == 0
        holder.rollback()

        free = await scrape(exporter)
        assert free.value("fault_locked_rows") == 3
        assert errors(free)["pg:fault_locked"] == 1 and errors(free)["pg:fault_sleepy"] == 3
        assert pg_exporter_pids(pg) == pids
    finally:
        holder.close()
        await exporter.close()
    assert "lock timeout" in caplog.text and "statement timeout" in caplog.text


async def test_hung_redis_reads_as_down(private_redis: LocalRedis) -> None:
    """CLIENT PAUSE: the server holds every command; INFO times out, redis_up says 0."""
    exporter = make_target(redis_env(private_redis) | {"REDIS_TIMEOUT": "0.5"})
    admin = redis.Redis(host=private_redis.host, port=private_redis.port,
                        password=private_redis.password)
    try:
        assert (await scrape(exporter)).value("redis_up") == 1
        admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
        paused = await scrape(exporter, timeout=5)
        assert paused.value("redis_up") == 0
        assert paused.series("redis_connected_clients") == []
        back = await scrape_until(exporter, lambda r: r.value("redis_up") == 1)
        assert back.value("redis_connected_clients") >= 2  # us and the admin connection
        await wait_for(
            lambda: redis_exporter_clients(private_redis).get("tmi-db-exporter") == 1
        )
    finally:
        admin.close()
        await exporter.close()


# --- refusing connections --------------------------------------------------------------------


def ours(conn: psycopg.Connection) -> dict[str, int]:
    """The exporter's connections, asked over a connection we hold (the server is full)."""
    rows = conn.execute(
        "SELECT datname, count(*) FROM pg_stat_activity"
        " WHERE application_name = 'tmi-db-exporter' GROUP BY datname"
    ).fetchall()
    return dict(rows)


def fill_slots(server: LocalPostgres, dbname: str = "postgres") -> list[psycopg.Connection]:
    """Connect until the server says it is full; returns the connections that got in."""
    held = []
    while True:
        try:
            held.append(psycopg.connect(server.dsn(dbname), autocommit=True))
        except psycopg.OperationalError as exc:
            assert "too many clients" in str(exc) or "reserved" in str(exc), exc
            return held


async def test_server_out_of_connection_slots(tmp_path: Path) -> None:
    extra = queries_file(tmp_path, (
        "fault_db:\n  help: One per database.\n  scope: database\n  sql: SELECT 1 AS one\n"
        "  metrics:\n    - {column: one, type: gauge, help: One.}\n"
    ))
    binaries = postgres_binaries(REQUIRED_MAJORS[-1])
    with LocalPostgres(binaries, extra_config={"max_connections": "5"}) as server:
        with pg_connect(server) as conn:
            conn.execute("CREATE DATABASE fault_app")
        exporter = make_target(pg_env(server) | PG_FAST, {"extra_queries_files": extra})
        held = fill_slots(server)
        try:
            assert len(held) == 5
            for _ in range(2):  # full before the exporter ever got in
                full = await scrape(exporter)
                assert full.value("pg_up") == 0 and full.series("fault_db_one") == []
                assert_self_metrics(full, exporter)

            for conn in held[:2]:  # two slots free: the main connection and fault_app's
                conn.close()
            del held[:2]

            def both_databases(result: Scrape) -> bool:
                return len(result.series("fault_db_one")) == 2

            up = await scrape_until(exporter, both_databases)
            assert up.value("pg_up") == 1
            assert up.value("pg_connections_used") == 5  # full again, with us
            assert up.value("pg_settings_max_connections") == 5
            assert ours(held[0]) == {"postgres": 1, "fault_app": 1}

            # Lose fault_app's connection while the server is full: only fault_app is missing.
            held[0].execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'tmi-db-exporter' AND datname = 'fault_app'"
            )
            held += fill_slots(server)  # the freed slot is taken at once
            for _ in range(2):
                partial = await scrape(exporter)
                assert partial.value("pg_up") == 1
                assert partial.value("fault_db_one", datname="postgres") == 1
                assert partial.series("fault_db_one", datname="fault_app") == []
            assert errors(partial)["pg:fault_db"] >= 1
            assert partial.value("pg_connections_used") == 5

            for conn in held:
                conn.close()
            held = []
            back = await scrape_until(exporter, both_databases)
            assert back.value("fault_db_one", datname="fault_app") == 1
            assert pg_exporter_connections(server) == {"postgres": 1, "fault_app": 1}
        finally:
            for conn in held:
                conn.close()
            await exporter.close()


async def test_redis_out_of_client_slots(tmp_path: Path) -> None:
    with LocalRedis(extra_config={"maxclients": "2"}) as server:
        exporter = make_target(redis_env(server) | {"REDIS_TIMEOUT": "1"})
        hogs = []
        try:
            for _ in range(2):
                sock = socket.create_connection((server.host, server.port))
                sock.sendall(b"PING\r\n")
                assert sock.recv(64).startswith(b"+PONG")
                hogs.append(sock)
            full = await scrape(exporter)
            assert full.value("redis_up") == 0
            assert_self_metrics(full, exporter)
            hogs.pop().close()
            back = await scrape_until(exporter, lambda r: r.value("redis_up") == 1)
            assert back.value("redis_connected_clients") == 2
        finally:
            for sock in hogs:
                sock.close()
            await exporter.close()


# --- reconnect pacing ------------------------------------------------------------------------


def most_attempts(elapsed: float, per_attempt: int = 1) -> int:
    """The most connection attempts that backoff allows in `elapsed` seconds: the first at
    once, then after waits of at least 0.8 * 0.5, 0.8 * 1, 0.8 * 2, ... seconds."""
    attempts, spent, wait = 1, 0.0, 0.8 * backoff_module.FIRST_SECONDS
    while spent + wait <= elapsed:
        spent += wait
        attempts += 1
        wait *= 2
    return attempts * per_attempt


async def test_reconnects_back_off(pg: LocalPostgres, private_redis: LocalRedis) -> None:
    """A server that hangs up on every new connection: the scrapes keep coming, the connection
    attempts (counted by the proxy) thin out, each wait at least the backoff's lower bound."""
    async with FaultProxy(pg.port) as pg_proxy, FaultProxy(private_redis.port) as redis_proxy:
        exporter = make_target(proxied(pg_proxy, redis_proxy, private_redis))
        try:
            assert both_up(await scrape(exporter))
            pg_proxy.reject()
            redis_proxy.reject()
            await pg_proxy.cut()
            await redis_proxy.cut()
            pg_before, redis_before = len(pg_proxy.accepted), len(redis_proxy.accepted)
            started, scrapes = time.monotonic(), 0
            while len(pg_proxy.accepted) - pg_before < 4:  # three waits to look at
                result = await scrape(exporter)
                scrapes += 1
                assert result.value("pg_up") == 0 and result.value("redis_up") == 0
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
        finally:
            await exporter.close()
    pg_attempts = pg_proxy.accepted[pg_before:]
    redis_attempts = len(redis_proxy.accepted) - redis_before
    assert len(pg_attempts) <= most_attempts(elapsed)
    # redis-py retries a failed command once, at once: two connections per attempt.
    assert redis_attempts <= most_attempts(elapsed, per_attempt=2)
    assert scrapes > 2 * (len(pg_attempts) + redis_attempts)
    gaps = [b - a for a, b in itertools.pairwise(pg_attempts)]
    for failures, gap in enumerate(gaps, start=1):
        lower = 0.8 * backoff_module.FIRST_SECONDS * 2 ** (failures - 1)
        assert gap >= lower - 0.05, (failures, gaps)
