"""Reference data for the benchmark: a TMI-sized PostgreSQL catalogue and a Redis keyspace.

The exporters are compared on what makes monitoring expensive at scale: thousands of tables and
indexes (per-table statistics), thousands of distinct statements in pg_stat_statements, and a
million Redis keys in the operations guide's patterns. Everything is deterministic for a given
seed, so two runs measure the same data.

Redis TTLs keep the guide's proportions but are stretched so that no key expires while a
benchmark runs (a rate-limit key that lives one minute would shrink the keyspace mid-run).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import redis

# --------------------------------------------------------------------------------- Redis

# Share of each pattern in the keyspace (sums to 1).
KEY_MIX = (
    ("session", 0.40),  # session:{user_id}:{session_id}  hash, 24 h
    ("cache", 0.35),  # cache:{entity_type}:{entity_id}  JSON string, "2-15 min" (here hours)
    ("auth", 0.15),  # auth:token:{token_id}  string, token expiry
    ("rate_limit", 0.08),  # rate_limit:user:{user_id}:{action}  counter, "1 min" (here 1 h)
    ("lock", 0.02),  # lock:{resource}:{id}  string, "30 s" (here 1 h)
)
CACHE_TYPES = ("threat_model", "diagram", "threat", "user")
RATE_ACTIONS = ("api", "login", "export", "collaborate", "upload", "webhook", "search", "admin")
LOCK_RESOURCES = ("diagram", "threat_model")
REDIS_BATCH = 5_000  # commands per pipeline round trip


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def key_counts(keys: int) -> dict[str, int]:
    """How many keys of each pattern `fill_redis(url, keys)` writes (they add up to `keys`)."""
    counts = {name: int(keys * share) for name, share in KEY_MIX}
    counts["session"] += keys - sum(counts.values())
    return counts


def _redis_commands(
    keys: int, no_ttl_fraction: float, seed: int
) -> Iterator[tuple[str, tuple[object, ...]]]:
    """(command, args) for every key; a key without TTL is written without expiry."""
    rng = random.Random(seed)
    counts = key_counts(keys)
    users = [_uuid(rng) for _ in range(max(1, keys // 20))]

    def ttl(seconds: int) -> tuple[object, ...]:
        return () if rng.random() < no_ttl_fraction else ("EX", seconds)

    for _ in range(counts["session"]):
        key = f"session:{rng.choice(users)}:{_uuid(rng)}"
        yield "HSET", (key, "ip", f"10.{rng.randrange(256)}.{rng.randrange(256)}.7",
                       "user_agent", "Mozilla/5.0", "last_seen", str(rng.randrange(10**9)))
        if rng.random() >= no_ttl_fraction:
            yield "EXPIRE", (key, 86_400)
    for i in range(counts["cache"]):
        kind = CACHE_TYPES[i % len(CACHE_TYPES)]
        ident = _uuid(rng)
        body = f'{{"id":"{ident}","type":"{kind}","etag":"{rng.getrandbits(64):016x}"}}'
        yield "SET", (f"cache:{kind}:{ident}", body, *ttl(rng.randint(7_200, 54_000)))
    for _ in range(counts["auth"]):
        yield "SET", (f"auth:token:{_uuid(rng)}", rng.choice(users),
                      *ttl(rng.randint(3_600, 86_400)))
    # user x action pairs are unique: walk users for each action in turn
    for i in range(counts["rate_limit"]):
        action = RATE_ACTIONS[(i // len(users)) % len(RATE_ACTIONS)]
        user = users[i % len(users)] if i < len(users) * len(RATE_ACTIONS) else _uuid(rng)
        yield "SET", (f"rate_limit:user:{user}:{action}", rng.randint(1, 40), *ttl(3_600))
    for i in range(counts["lock"]):
        resource = LOCK_RESOURCES[i % len(LOCK_RESOURCES)]
        yield "SET", (f"lock:{resource}:{_uuid(rng)}", f"worker-{i % 64}", *ttl(3_600))


def fill_redis(url: str, keys: int, *, no_ttl_fraction: float = 0.05, seed: int = 1) -> None:
    """Write `keys` keys in the guide's patterns to the database of `url`.

    Patterns and shares: KEY_MIX (see `key_counts`). About `no_ttl_fraction` of the keys get
    no expiry (leaked sessions, stuck locks). The same `seed` writes the same keys; existing
    keys are overwritten, nothing is deleted. Pipelined, ~1M keys in well under a minute.
    """
    client = redis.Redis.from_url(url, socket_timeout=60)
    try:
        pipe = client.pipeline(transaction=False)
        pending = 0
        for command, args in _redis_commands(keys, no_ttl_fraction, seed):
            pipe.execute_command(command, *args)
            pending += 1
            if pending >= REDIS_BATCH:
                pipe.execute()
                pending = 0
        if pending:
            pipe.execute()
    finally:
        client.close()
