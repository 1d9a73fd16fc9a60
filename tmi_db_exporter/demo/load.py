"""Light, steady load on the demo servers, so that rates, hit ratios and slow statements move."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import redis.asyncio as aioredis

from tmi_db_exporter.demo.data import (
    CACHE_ENTITY_TYPES,
    RATE_LIMIT_ACTIONS,
    SEED,
    SLOW_STATEMENT,
    THREAT_STATUSES,
)

log = logging.getLogger(__name__)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up as soon as `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _pg_load(dsn: str, stop: asyncio.Event, interval: float, rng: random.Random) -> None:
    async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=3, application_name="tmi-demo-load") as conn:
        users = await (await conn.execute("SELECT id, email FROM users")).fetchall()
        models = await (await conn.execute("SELECT id FROM threat_models")).fetchall()
        threats = await (await conn.execute("SELECT id FROM threats")).fetchall()
        tick = 0
        while not stop.is_set():
            if tick % 50 == 0:  # first thing, then every ~10 s
                await conn.execute(SLOW_STATEMENT)
            uid, email = rng.choice(users)
            tm_id = rng.choice(models)[0]
            await conn.execute("SELECT id, name, provider FROM users WHERE email = %s", (email,))
            await conn.execute("SELECT id, name, modified_at FROM threat_models WHERE owner_id"
                               " = %s ORDER BY modified_at DESC LIMIT 20", (uid,))
            await conn.execute("SELECT id, name, severity, status FROM threats"
                               " WHERE threat_model_id = %s", (tm_id,))
            await conn.execute("SELECT id, name, jsonb_array_length(cells) FROM diagrams"
                               " WHERE threat_model_id = %s", (tm_id,))
            if tick % 2 == 0:
                await conn.execute(
                    "SELECT tm.id, tm.name, u.email, count(t.id) AS threats, count(t.id) FILTER"
                    " (WHERE t.severity IN ('Critical', 'High')) AS severe FROM threat_models tm"
                    " JOIN users u ON u.id = tm.owner_id LEFT JOIN threats t"
                    " ON t.threat_model_id = tm.id WHERE tm.owner_id = %s"
                    " GROUP BY tm.id, u.email", (uid,))
            if tick % 3 == 0:
                await conn.execute("UPDATE threats SET status = %s, modified_at = now() WHERE id"
                                   " = %s", (rng.choice(THREAT_STATUSES), rng.choice(threats)[0]))
            if tick % 7 == 0:
                await conn.execute("UPDATE threat_models SET modified_at = now() WHERE id = %s",
                                   (tm_id,))
            await conn.execute("SELECT nextval('threat_number_seq')")
            if tick % 10 == 5:  # a sluggish client: idle in transaction for a second
                async with conn.transaction():
                    await conn.execute("UPDATE threat_models SET modified_at = now() WHERE id"
                                       " = %s", (tm_id,))
                    await _pause(stop, 1.0)
            tick += 1
            await _pause(stop, interval)


async def _redis_load(url: str, stop: asyncio.Event, interval: float,
                      rng: random.Random) -> None:
    client = aioredis.Redis.from_url(url, decode_responses=True, socket_timeout=3)
    try:
        cache = [k async for k in client.scan_iter(match="cache:*", count=500)]
        tokens = [k async for k in client.scan_iter(match="auth:token:*", count=500)]
        keys = [k async for k in client.scan_iter(match="session:*", count=500)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        ttls = await pipe.execute()
        sessions = [k for k, ttl in zip(keys, ttls, strict=True) if ttl > 0]  # not the leaks
        users = sorted({k.split(":")[1] for k in keys})
        diagrams = [k.rsplit(":", 1)[1] for k in cache if k.startswith("cache:diagram:")]
        held: str | None = None
        tick = 0
        while not stop.is_set():
            for key in rng.sample(cache, min(3, len(cache))):  # cache-aside: hit, else refill
                if await client.get(key) is None:
                    _, kind, ident = key.split(":")
                    await client.set(key, json.dumps({"id": ident, "type": kind}),
                                     ex=rng.randint(120, 900))
            await client.get(f"cache:{rng.choice(CACHE_ENTITY_TYPES)}:{uuid.uuid4()}")  # miss
            if tokens:
                await client.get(rng.choice(tokens))
            if sessions:
                key = rng.choice(sessions)
                pipe = client.pipeline(transaction=False)
                pipe.hset(key, "last_seen", str(tick)).expire(key, 86400)
                await pipe.execute()
            if users:
                key = f"rate_limit:user:{rng.choice(users)}:{rng.choice(RATE_LIMIT_ACTIONS)}"
                if await client.incr(key) == 1:
                    await client.expire(key, 60)
            if tick % 5 == 0 and diagrams:  # hold a diagram lock for a while, like an editor
                if held:
                    await client.delete(held)
                key = f"lock:diagram:{rng.choice(diagrams)}"
                held = key if await client.set(key, "demo-load", nx=True, ex=30) else None
            tick += 1
            await _pause(stop, interval)
    finally:
        await client.aclose()


async def _keep_going(name: str, body: Callable[..., Awaitable[None]], stop: asyncio.Event,
                      *args: Any) -> None:
    """Run `body` until `stop`; on errors (server gone, ...) log at debug and retry."""
    while not stop.is_set():
        try:
            await body(*args)
        except Exception as exc:  # the demo load must never crash
            log.debug("demo %s load failed, retrying: %s", name, exc)
            await _pause(stop, 1.0)


async def run_load(dsn_tmi: str | None, redis_url: str | None, stop: asyncio.Event, *,
                   interval: float = 0.2) -> None:
    """Light continuous load on PostgreSQL and/or Redis until `stop` is set (or cancelled)."""
    workers = []
    if dsn_tmi:
        workers.append(asyncio.create_task(_keep_going(
            "postgres", _pg_load, stop, dsn_tmi, stop, interval, random.Random(SEED + 1))))
    if redis_url:
        workers.append(asyncio.create_task(_keep_going(
            "redis", _redis_load, stop, redis_url, stop, interval, random.Random(SEED + 2))))
    try:
        await stop.wait()
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
