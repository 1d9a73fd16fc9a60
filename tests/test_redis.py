"""Redis collector against a real redis-server: values made on purpose."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis

from exporter.local_servers import LocalRedis
from tests.conftest import make_exporter, redis_env, scrape

pytestmark = pytest.mark.integration


def client(server: LocalRedis) -> redis.Redis:
    return redis.Redis(
        host=server.host, port=server.port, password=server.password, protocol=2,
        decode_responses=True,
    )


async def test_hits_and_misses_move_when_keys_are_read(redis_server: LocalRedis) -> None:
    r = client(redis_server)
    r.set("cache:threat_model:hit-test", "x", ex=600)
    exporter = make_exporter(redis_env(redis_server))
    try:
        before = await scrape(exporter)
        for _ in range(3):
            assert r.get("cache:threat_model:hit-test") == "x"
        for _ in range(2):
            assert r.get("cache:threat_model:absent") is None
        after = await scrape(exporter)
    finally:
        await exporter.close()
    assert after.value("redis_keyspace_hits_total") - before.value("redis_keyspace_hits_total") == 3
    assert (
        after.value("redis_keyspace_misses_total") - before.value("redis_keyspace_misses_total")
        == 2
    )
    assert after.types["redis_keyspace_hits"] == "counter"
    assert after.value("redis_up") == 1


async def test_keyspace_counts_keys_and_expiry(redis_server: LocalRedis) -> None:
    r3 = redis.Redis(host=redis_server.host, port=redis_server.port, db=3, protocol=2)
    r3.flushdb()
    for i in range(5):
        r3.set(f"session:user{i}:sid{i}", "s", ex=3600)
    for i in range(2):
        r3.set(f"session:leak{i}:sid", "s")  # no TTL: the leak the guide cleans by hand
    exporter = make_exporter(redis_env(redis_server))
    try:
        for _ in range(50):  # avg_ttl is an estimate the server refreshes in its expire cycle
            result = await scrape(exporter)
            if result.value("redis_db_avg_ttl_seconds", db="db3") > 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await exporter.close()
        r3.flushdb()
    assert result.value("redis_db_keys", db="db3") == 7
    assert result.value("redis_db_keys_expiring", db="db3") == 5
    assert 3000 < result.value("redis_db_avg_ttl_seconds", db="db3") <= 3600
    assert result.value("redis_db_keys", db="db0") >= 0  # the selected db is always there
    (labels, _), = result.series("redis_instance_info")
    assert labels["redis_version"].count(".") == 2 and labels["role"] == "master"
    assert result.value("redis_memory_max_bytes") == 0
    assert result.value("redis_memory_used_bytes") > 0


async def test_redis_up_follows_the_server_and_password_never_leaks(
    private_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = make_exporter(redis_env(private_redis))
    try:
        first = await scrape(exporter)
        assert first.value("redis_up") == 1
        private_redis.kill()
        down = await scrape(exporter)
        assert down.value("redis_up") == 0
        assert down.series("redis_connected_clients") == []
        private_redis.start_again()
        for _ in range(40):
            result = await scrape(exporter)
            if result.value("redis_up") == 1:
                break
            await asyncio.sleep(0.25)
        assert result.value("redis_up") == 1
    finally:
        await exporter.close()
    assert private_redis.password not in first.text + down.text + result.text
    assert private_redis.password not in caplog.text
    assert "unreachable" in caplog.text


async def test_wrong_password_is_redis_up_zero(private_redis: LocalRedis) -> None:
    env = redis_env(private_redis) | {"REDIS_PASSWORD": "wrong"}
    exporter = make_exporter(env)
    try:
        result = await scrape(exporter)
    finally:
        await exporter.close()
    assert result.value("redis_up") == 0


async def test_exporter_uses_one_named_connection(redis_server: LocalRedis) -> None:
    exporter = make_exporter(redis_env(redis_server))
    try:
        for _ in range(5):
            await scrape(exporter)
        clients = client(redis_server).client_list()
    finally:
        await exporter.close()
    assert sum(c["name"] == "tmi-db-exporter" for c in clients) == 1
