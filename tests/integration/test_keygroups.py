"""Key census: glob semantics checked against the server's own MATCH, and a census of 50k keys
in the guide's patterns with exact counts and nothing of ours in a 5 ms SLOWLOG."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis

from tests.support.scraping import Scrape, eventually, make_target, scrape
from tests.support.servers import redis_env
from tmi_db_exporter.demo.servers import LocalRedis
from tmi_db_exporter.sources.redis.key_groups import glob_regex

KEYS = [
    "session:alice:1", "session:bob:2", "session", "sessions:x", "cache:threat_model:9",
    "cache:diagram", "auth:token:abc", "auth:tokens:abc", "rate_limit:user:7:login",
    "lock:diagram:3", "abc", "axc", "ac", "ax", "bx", "cx", "dx", "ay", "by", "cy", "dy",
    "h*llo", "hello", "x[ab", "xa", "xb", "xc", "a\\b", "a]b", "-x", "]x", "ü:1",
]
PATTERNS = [
    "session:*", "session:*:*", "cache:*", "auth:token:*", "rate_limit:user:*", "lock:*",
    "a?c", "[ab]x", "[^a]x", "[a-c]y", "[c-a]y", "h\\*llo", "*", "x[ab", "a\\\\b", "[]]x",
    "[\\]]b", "a]b", "[-a]x", "?:1", "*:*:*", "[^]x",
]


@pytest.mark.integration
def test_globs_match_what_the_server_matches(redis_server: LocalRedis) -> None:
    r = redis.Redis(host=redis_server.host, port=redis_server.port, db=6, protocol=2,
                    lib_name=None, lib_version=None)
    r.flushdb()
    try:
        r.mset({key: "1" for key in KEYS})
        for pattern in PATTERNS:
            server = {k.decode() for k in r.scan_iter(match=pattern, count=1000)}
            ours = {k for k in KEYS if glob_regex(pattern).fullmatch(k.encode())}
            assert ours == server, pattern
    finally:
        r.flushdb()


# ---------------------------------------------------------------------- census of 50k keys

# (group, keys, TTL in seconds) with a few keys of each group left without TTL; the TTLs sit
# well inside the test's buckets so that the seconds a census takes cannot move a key.
MIX = [("session", 20_000, 86_000), ("cache", 17_000, 5_000), ("auth", 7_000, 9_000),
       ("rate_limit", 4_000, 900), ("lock", 1_000, 90)]
NO_TTL_EVERY = 50
UNCLASSIFIED_KEYS = 500
BUCKETS = "100,1000,10000,100000"


@pytest.fixture(scope="module")
def filled_redis() -> Iterator[tuple[LocalRedis, dict[str, tuple[int, int]]]]:
    config = {"slowlog-log-slower-than": "5000", "slowlog-max-len": "1024"}
    with LocalRedis(extra_config=config) as server:
        r = redis.Redis(host=server.host, port=server.port, protocol=2,
                        lib_name=None, lib_version=None)
        rng = random.Random(5)
        expected: dict[str, tuple[int, int]] = {}
        pipe = r.pipeline(transaction=False)
        for group, count, ttl in MIX:
            for i in range(count):
                key = {"session": f"session:u{i % 997}:{i}", "cache": f"cache:threat:{i}",
                       "auth": f"auth:token:{i}", "rate_limit": f"rate_limit:user:{i}:api",
                       "lock": f"lock:diagram:{i}"}[group]
                value = "v" * rng.randrange(10, 60)
                if group == "session":
                    pipe.hset(key, mapping={"ip": "10.0.0.1", "agent": value})
                    if i % NO_TTL_EVERY:
                        pipe.expire(key, ttl)
                else:
                    pipe.set(key, value, ex=ttl if i % NO_TTL_EVERY else None)
            expected[group] = (count, len(range(0, count, NO_TTL_EVERY)))
        for i in range(UNCLASSIFIED_KEYS):
            pipe.set(f"tmi:other:{i}", "x")
        pipe.execute()
        r.slowlog_reset()
        r.config_resetstat()
        yield server, expected


@pytest.mark.integration
async def test_census_of_50k_keys_is_exact_and_never_slow(
    filled_redis: tuple[LocalRedis, dict[str, tuple[int, int]]],
) -> None:
    server, expected = filled_redis
    r = redis.Redis(host=server.host, port=server.port, protocol=2, decode_responses=True,
                    lib_name=None, lib_version=None)
    env = redis_env(server) | {"REDIS_KEY_CENSUS_TTL_BUCKETS": BUCKETS}

    async def census() -> Scrape:
        """Scrape until the background census has finished its first pass (scrapes never wait
        for it beyond a short first moment)."""
        exporter = make_target(env)
        try:
            finished = "redis_key_census_last_finished_timestamp_seconds"
            result = await eventually(
                lambda: scrape(exporter), lambda r: bool(r.series(finished)), 1200, 0.1
            )
            assert result.series(finished), "the key census did not finish within 120 s"
            return result
        finally:
            await exporter.close()

    def ours_in_slowlog() -> list[tuple[str, int]]:
        raw = r.execute_command("SLOWLOG", "GET", 1024)  # id, time, usec, args, addr, name
        return [(e[3][0], e[2]) for e in raw if str(e[5]).startswith("tmi-db-exporter")]

    result = await census()
    # Nothing the exporter sent took 5 ms or more (the server logs every command that did).
    # A scheduling stall of a busy test machine can land inside any command, whoever sent it;
    # a command that is slow by itself is slow again in a second census.
    if ours_in_slowlog():
        r.slowlog_reset()
        await census()
    assert ours_in_slowlog() == []
    assert r.config_get("slowlog-log-slower-than") == {"slowlog-log-slower-than": "5000"}

    db = {"db": "db0"}
    for group, _, ttl in MIX:
        total, without = expected[group]
        labels = {**db, "key_group": group}
        assert result.value("redis_key_group_count", **labels) == total
        assert result.value("redis_key_group_keys_without_ttl", **labels) == without
        assert result.value("redis_key_group_keys_by_ttl", le="+Inf", **labels) == total - without
        bound = next(b for b in BUCKETS.split(",") if ttl <= int(b))
        assert result.value("redis_key_group_keys_by_ttl", le=bound, **labels) == total - without
        for smaller in BUCKETS.split(","):
            if int(smaller) < int(bound):
                assert result.value("redis_key_group_keys_by_ttl", le=smaller, **labels) == 0
        assert result.value("redis_key_group_memory_sampled_keys", **labels) == 100
    other = {**db, "key_group": "unclassified"}
    assert result.value("redis_key_group_count", **other) == UNCLASSIFIED_KEYS
    assert result.value("redis_key_group_keys_without_ttl", **other) == UNCLASSIFIED_KEYS
    all_keys = sum(n for n, _ in expected.values()) + UNCLASSIFIED_KEYS
    assert result.value("redis_key_census_keys_scanned") >= all_keys
    assert result.value("redis_key_census_commands", command="PEXPIRETIME") >= all_keys
    assert result.value("redis_key_census_duration_seconds") > 0
    assert result.value("tmi_db_exporter_collector_age_seconds", collector="redis_key_groups") >= 0

    # The memory estimate from 100 sampled keys is close to the sum over every key.
    keys = [k for k in r.scan_iter(match="session:*", count=1000)]
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key)
    exact = sum(pipe.execute())
    estimate = result.value("redis_key_group_memory_usage_bytes", **db, key_group="session")
    assert 0.85 * exact <= estimate <= 1.15 * exact


    # The census' 50k TTL lookups are not the application's hits (there were none).
    assert int(r.info("stats")["keyspace_hits"]) >= all_keys
    assert result.value("redis_keyspace_hits_total") == 0
