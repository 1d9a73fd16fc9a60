"""Redis collectors against a real redis-server: values made on purpose."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest
import redis

from tests.support.scraping import eventually, make_target, scrape, scrape_once
from tests.support.servers import redis_env
from tmi_db_exporter.demo.servers import LocalRedis

pytestmark = pytest.mark.integration


def client(server: LocalRedis, db: int = 0) -> redis.Redis:
    return redis.Redis(
        host=server.host, port=server.port, password=server.password, db=db, protocol=2,
        decode_responses=True, lib_name=None, lib_version=None,
    )


@pytest.fixture(scope="module")
def debug_redis() -> Iterator[LocalRedis]:
    """A server that allows DEBUG SLEEP, watches latency and has a maxmemory."""
    config = {
        "enable-debug-command": "yes",
        "latency-monitor-threshold": "20",
        "slowlog-log-slower-than": "5000",
        "maxmemory": "256mb",
    }
    with LocalRedis(extra_config=config) as server:
        yield server


async def test_hits_and_misses_move_when_keys_are_read(redis_server: LocalRedis) -> None:
    """The key census runs meanwhile (it starts with the first scrape); its own TTL lookups
    must not show as hits or misses."""
    r = client(redis_server)
    r.set("cache:threat_model:hit-test", "x", ex=600)
    exporter = make_target(redis_env(redis_server))
    try:
        before = await scrape(exporter)
        assert before.value("redis_key_census_keys_scanned") >= 1  # the census did run
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
    hits = after.value("redis_keyspace_hits_total")
    misses = after.value("redis_keyspace_misses_total")
    assert after.value("redis_keyspace_hit_ratio") == pytest.approx(hits / (hits + misses))
    assert after.value("redis_up") == 1


async def test_keyspace_counts_keys_and_expiry(redis_server: LocalRedis) -> None:
    r3 = client(redis_server, db=3)
    r3.flushdb()
    for i in range(5):
        r3.set(f"session:user{i}:sid{i}", "s", ex=3600)
    for i in range(2):
        r3.set(f"session:leak{i}:sid", "s")  # no TTL: the leak the guide cleans by hand
    exporter = make_target(redis_env(redis_server) | {"REDIS_DB": "3"})
    try:
        # avg_ttl is an estimate the server refreshes in its expire cycle
        result = await eventually(
            lambda: scrape(exporter),
            lambda r: r.value("redis_db_avg_ttl_seconds", db="db3") > 0,
            attempts=50,
            pause=0.1,
        )
    finally:
        await exporter.close()
        r3.flushdb()
    assert result.value("redis_db_keys", db="db3") == 7
    assert result.value("redis_db_keys_expiring", db="db3") == 5
    assert 3000 < result.value("redis_db_avg_ttl_seconds", db="db3") <= 3600
    assert result.value("redis_db_keys", db="db0") >= 0  # every database with keys is there
    (labels, _), = result.series("redis_instance_info")
    assert labels["redis_version"].count(".") == 2 and labels["role"] == "master"
    assert labels["tcp_port"] == str(redis_server.port)
    assert result.value("redis_memory_max_bytes") == 0
    assert result.series("redis_memory_used_maxmemory_ratio") == []  # no limit: no ratio
    assert result.value("redis_memory_used_bytes") > 0
    # The census of db3 counts the session without TTL as such.
    group = {"db": "db3", "key_group": "session"}
    assert result.value("redis_key_group_count", **group) == 7
    assert result.value("redis_key_group_keys_without_ttl", **group) == 2
    assert result.value("redis_key_group_keys_by_ttl", le="3600", **group) == 5
    assert result.value("redis_key_group_keys_by_ttl", le="900", **group) == 0


async def test_commandstats_errorstats_and_memory_ratio(debug_redis: LocalRedis) -> None:
    r = client(debug_redis)
    r.set("lock:diagram:1", "worker-1", ex=30)
    exporter = make_target(redis_env(debug_redis))
    try:
        before = await scrape(exporter)
        for _ in range(4):
            r.get("lock:diagram:1")
        with pytest.raises(redis.ResponseError):
            r.lpush("lock:diagram:1", "x")  # WRONGTYPE
        after = await scrape(exporter)
    finally:
        await exporter.close()

    def delta(name: str, **labels: str) -> float:
        old = before.series(name, **labels)
        return after.value(name, **labels) - (old[0][1] if old else 0)

    assert delta("redis_commands_total", cmd="get") == 4
    assert delta("redis_commands_failed_calls_total", cmd="lpush") == 1
    assert delta("redis_errors_total", err="WRONGTYPE") == 1
    assert after.value("redis_commands_duration_seconds_total", cmd="get") > 0
    assert after.types["redis_commands"] == "counter"
    assert {lbl["quantile"] for lbl, _ in after.series("redis_latency_percentiles_usec", cmd="get")
            } == {"50", "99", "99.9"}
    used, limit = after.value("redis_memory_used_bytes"), after.value("redis_memory_max_bytes")
    assert limit == 256 * 1024 * 1024
    assert after.value("redis_memory_used_maxmemory_ratio") == pytest.approx(used / limit)
    assert after.value("redis_config_maxclients") > 0
    assert after.value("redis_start_time_seconds") <= time.time()


async def test_debug_sleep_shows_in_slowlog_and_latency(debug_redis: LocalRedis) -> None:
    r = client(debug_redis)
    r.slowlog_reset()
    r.execute_command("DEBUG", "SLEEP", "0.05")
    result = await scrape_once(redis_env(debug_redis))
    assert result.value("redis_slowlog_length") == 1
    assert result.value("redis_slowlog_recent_entries", cmd="debug") == 1
    assert 0.05 <= result.value("redis_slowlog_recent_max_duration_seconds", cmd="debug") < 1
    assert result.value("redis_last_slow_execution_duration_seconds") >= 0.05
    last_id = result.value("redis_slowlog_last_id")
    assert result.value("redis_slowlog_entries_total") == last_id + 1
    assert result.value("redis_latency_spike_duration_seconds", event_name="command") >= 0.05
    assert result.value("redis_config_slowlog_log_slower_than_seconds") == 0.005
    assert result.value("redis_config_slowlog_max_len") == 128

    # SLOWLOG RESET empties the log but not the count of entries written since start.
    r.slowlog_reset()
    exporter = make_target(redis_env(debug_redis) | {"REDIS_SLOWLOG_INTERVAL": "10ms"})
    try:
        first = await scrape(exporter)
        r.execute_command("DEBUG", "SLEEP", "0.01")
        await asyncio.sleep(0.02)
        second = await scrape(exporter)
        r.slowlog_reset()
        await asyncio.sleep(0.02)
        third = await scrape(exporter)
    finally:
        await exporter.close()
    assert first.value("redis_slowlog_length") == 0
    assert second.value("redis_slowlog_entries_total") == last_id + 2
    assert third.value("redis_slowlog_length") == 0
    assert third.value("redis_slowlog_entries_total") == last_id + 2


async def test_bgsave_moves_last_save_time(debug_redis: LocalRedis) -> None:
    r = client(debug_redis)
    exporter = make_target(redis_env(debug_redis))
    try:
        before = await scrape(exporter)
        last = before.value("redis_rdb_last_save_timestamp_seconds")
        while time.time() < last + 1.05:  # LASTSAVE has one-second resolution
            await asyncio.sleep(0.05)
        r.set("cache:threat:bgsave", "x", ex=600)
        r.bgsave()
        for _ in range(200):
            after = await scrape(exporter)
            if after.value("redis_rdb_last_save_timestamp_seconds") > last:
                break
            await asyncio.sleep(0.05)
    finally:
        await exporter.close()
    assert after.value("redis_rdb_last_save_timestamp_seconds") == r.lastsave().timestamp()
    assert after.value("redis_rdb_last_save_timestamp_seconds") > last
    assert after.value("redis_rdb_saves_total") == before.value("redis_rdb_saves_total") + 1
    assert after.value("redis_rdb_last_bgsave_status") == 1
    assert after.value("redis_rdb_changes_since_last_save") == 0
    assert after.value("redis_latest_fork_seconds") > 0
    assert after.value("redis_aof_enabled") == 0


async def test_replication_from_both_sides(redis_server: LocalRedis) -> None:
    client(redis_server).config_set("repl-diskless-sync-delay", 0)  # sync right away
    config = {"replicaof": f"{redis_server.host} {redis_server.port}"}
    with LocalRedis(extra_config=config) as replica:
        exporter = make_target(redis_env(replica))
        try:
            for _ in range(100):
                side = await scrape(exporter)
                if side.series("redis_master_link_up") and side.value("redis_master_link_up"):
                    break
                await asyncio.sleep(0.1)
        finally:
            await exporter.close()
        master = await scrape_once(redis_env(redis_server))
    (labels, _), = side.series("redis_instance_info")
    assert labels["role"] == "slave"
    assert side.value("redis_master_link_up", master_port=str(redis_server.port)) == 1
    assert side.value("redis_slave_info", read_only="1") == 1
    assert master.value("redis_connected_slaves") == 1
    (replica_labels, offset), = master.series("redis_connected_slave_offset_bytes")
    assert replica_labels["slave_port"] == str(replica.port) and offset >= 0


async def test_redis_up_follows_the_server_and_password_never_leaks(
    private_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    exporter = make_target(redis_env(private_redis))
    try:
        first = await scrape(exporter)
        assert first.value("redis_up") == 1
        assert first.value("redis_security_auth_required") == 1
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
    result = await scrape_once(redis_env(private_redis) | {"REDIS_PASSWORD": "wrong"})
    assert result.value("redis_up") == 0


async def test_open_server_is_reported_as_needing_no_auth(redis_server: LocalRedis) -> None:
    exporter = make_target(redis_env(redis_server))
    try:
        await scrape(exporter)
        result = await scrape(exporter)  # command access as learned by the first scrape
    finally:
        await exporter.close()
    assert result.value("redis_security_auth_required") == 0
    for command in ("FLUSHDB", "FLUSHALL", "CONFIG", "KEYS"):
        assert result.value("redis_security_command_renamed", command=command) == 0
        assert result.value("redis_security_command_disabled", command=command) == 0
    assert result.value("redis_security_protected_mode") in (0, 1)
    assert result.value("tmi_db_exporter_redis_command_allowed", command="CONFIG") == 1


async def test_exporter_uses_one_named_connection_and_one_for_the_census(
    redis_server: LocalRedis,
) -> None:
    exporter = make_target(redis_env(redis_server))
    try:
        for _ in range(5):
            await scrape(exporter)
        clients = client(redis_server).client_list()
    finally:
        await exporter.close()
    assert sum(c["name"] == "tmi-db-exporter" for c in clients) == 1
    assert sum(c["name"] == "tmi-db-exporter-census" for c in clients) <= 1
