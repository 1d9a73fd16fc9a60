"""Tests for the demo environment: real throwaway servers, TMI-shaped data, load, cleanup."""

import asyncio
import re
import time
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from tests.support.servers import pid_alive
from tmi_db_exporter.demo.data import (
    CACHE_ENTITY_TYPES,
    MIGRATION_VERSION,
    seed_postgres,
    seed_row_counts,
    with_dbname,
)
from tmi_db_exporter.demo.environment import DemoEnvironment, demo_environment
from tmi_db_exporter.demo.load import run_load

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
KEY_PATTERNS = {
    "session": re.compile(rf"session:{UUID}:{UUID}"),
    "cache": re.compile(rf"cache:({'|'.join(CACHE_ENTITY_TYPES)}):{UUID}"),
    "auth": re.compile(rf"auth:token:{UUID}"),
    "rate_limit": re.compile(rf"rate_limit:user:{UUID}:\w+"),
    "lock": re.compile(rf"lock:\w+:{UUID}"),
}


async def _poll(query: str, conn: psycopg.AsyncConnection, ok, timeout: float = 5.0):
    """Run `query` until `ok(row)` holds (statistics lag behind), return the last row."""
    deadline = time.monotonic() + timeout
    while True:
        with_flush = await conn.execute("SELECT to_regproc('pg_stat_force_next_flush')")
        if (await with_flush.fetchone())[0] is not None:
            await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await (await conn.execute(query)).fetchone()
        if ok(row) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.2)


async def _server_facts(env: DemoEnvironment) -> dict:
    """Process ids and directories of both servers, to check cleanup afterwards."""
    async with await psycopg.AsyncConnection.connect(env.postgres_dsn, autocommit=True) as conn:
        data_dir = Path((await (await conn.execute("SHOW data_directory")).fetchone())[0])
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        redis_pid = (await client.info("server"))["process_id"]
        redis_dir = Path((await client.config_get("dir"))["dir"])
    finally:
        await client.aclose()
    postmaster_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    return {"pids": [postmaster_pid, redis_pid], "dirs": [data_dir, redis_dir]}


async def _check_postgres(env: DemoEnvironment) -> None:
    async with await psycopg.AsyncConnection.connect(env.postgres_dsn, autocommit=True) as conn:
        for table, expected in seed_row_counts().items():
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            assert (await cur.fetchone())[0] == expected, table
        cur = await conn.execute("SELECT version, dirty FROM schema_migrations")
        assert await cur.fetchall() == [(MIGRATION_VERSION, False)]
        cur = await conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        assert await cur.fetchone() is not None
        dead = await _poll("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'threats'",
                           conn, lambda row: row[0] > 0)
        assert dead[0] > 0
        used = await _poll("SELECT idx_scan FROM pg_stat_user_indexes"
                           " WHERE indexrelname = 'idx_threats_threat_model_id'",
                           conn, lambda row: row[0] > 0)
        assert used[0] > 0, "the load should use idx_threats_threat_model_id"
        cur = await conn.execute("SELECT indexrelname FROM pg_stat_user_indexes"
                                 " WHERE idx_scan = 0 ORDER BY 1")
        unused = {row[0] for row in await cur.fetchall()}
        assert {"idx_threats_cell_id", "idx_refresh_tokens_token"} <= unused
        pkeys = await conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
                                   " AND indexname LIKE '%\\_pkey'")
        assert (await pkeys.fetchone())[0] == 7


async def _check_redis_keys(env: DemoEnvironment) -> None:
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(count=1000)]
        groups: dict[str, list[str]] = {name: [] for name in KEY_PATTERNS}
        for key in keys:
            name = next((n for n, p in KEY_PATTERNS.items() if p.fullmatch(key)), None)
            assert name is not None, f"unexpected key {key}"
            groups[name].append(key)
        assert len(groups["session"]) == 300
        assert len(groups["cache"]) == 400
        assert len(groups["auth"]) == 150
        assert len(groups["rate_limit"]) >= 120
        assert 1 <= len(groups["lock"]) <= 13
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls = dict(zip(keys, await pipe.execute(), strict=True))
        leaked = [k for k in groups["session"] if ttls[k] == -1]
        assert len(leaked) == 15
        assert all(0 < ttls[k] <= 86400 for k in groups["session"] if k not in leaked)
        assert all(0 < ttls[k] <= 900 for k in groups["cache"])
        assert all(0 < ttls[k] <= 3600 for k in groups["auth"])
        assert all(0 < ttls[k] <= 60 for k in groups["rate_limit"])
        assert all(0 < ttls[k] <= 30 for k in groups["lock"])
        assert set((await client.info("keyspace")).keys()) == {"db0"}
    finally:
        await client.aclose()


async def _check_load(env: DemoEnvironment) -> None:
    """Over ~1.5 s the load produces Redis hits and misses and one slow statement."""
    client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
    try:
        before = await client.info("stats")
        await asyncio.sleep(1.5)
        after = await client.info("stats")
    finally:
        await client.aclose()
    assert after["keyspace_hits"] > before["keyspace_hits"]
    assert after["keyspace_misses"] > before["keyspace_misses"]
    async with await psycopg.AsyncConnection.connect(env.postgres_dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT query FROM pg_stat_statements"
                                 " WHERE mean_exec_time >= 100 AND query LIKE '%pg_sleep%'")
        assert await cur.fetchall(), "the load should have run its slow statement"
        cur = await conn.execute("SELECT count(*) FROM pg_stat_statements"
                                 " WHERE query LIKE '%JOIN users u%'")
        assert (await cur.fetchone())[0] >= 1


async def _stop_latency(env: DemoEnvironment) -> float:
    """Seconds a second run_load needs to return after its stop event is set."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_load(env.postgres_dsn, env.redis_url, stop, interval=0.05))
    await asyncio.sleep(0.4)
    started = time.monotonic()
    stop.set()
    await task
    return time.monotonic() - started


def test_demo_environment_seeds_loads_and_cleans_up() -> None:
    async def scenario() -> dict:
        async with demo_environment() as env:
            assert env.postgres_database == "tmi" and env.postgres_user == "postgres"
            assert env.postgres_port and env.redis_port and env.redis_url
            facts = await _server_facts(env)
            await _check_redis_keys(env)
            await _check_load(env)
            await _check_postgres(env)
            assert await _stop_latency(env) < 1.0
            # re-seeding an existing database gives the same data again
            await seed_postgres(with_dbname(env.postgres_dsn, "postgres"))
            await _check_postgres(env)
        return facts

    facts = asyncio.run(scenario())
    assert not any(pid_alive(pid) for pid in facts["pids"])
    assert not any(path.exists() for path in facts["dirs"])


def test_cancellation_and_errors_leave_nothing_behind() -> None:
    """Ctrl-C cancels the task running the context; an exception inside it must also clean up."""

    async def cancelled() -> dict:
        entered: asyncio.Future = asyncio.get_running_loop().create_future()

        async def hold() -> None:
            async with demo_environment(postgres=False) as env:
                entered.set_result(env)
                await asyncio.Event().wait()

        task = asyncio.create_task(hold())
        env = await entered
        assert env.postgres_port is None and env.postgres_database is None
        client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
        facts = {"pid": (await client.info("server"))["process_id"],
                 "dir": Path((await client.config_get("dir"))["dir"])}
        await client.aclose()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return facts

    facts = asyncio.run(cancelled())
    assert not pid_alive(facts["pid"]) and not facts["dir"].exists()

    async def failing() -> None:
        async with demo_environment(postgres=False) as env:
            client = aioredis.Redis.from_url(env.redis_url, decode_responses=True)
            pid = (await client.info("server"))["process_id"]
            directory = Path((await client.config_get("dir"))["dir"])
            await client.aclose()
            raise RuntimeError(pid, directory)

    with pytest.raises(RuntimeError) as failure:
        asyncio.run(failing())
    pid, directory = failure.value.args
    assert not pid_alive(pid) and not directory.exists()
