"""Reference data for the benchmark: a TMI-sized PostgreSQL catalogue and a Redis keyspace.

The exporters are compared on what makes monitoring expensive at scale: thousands of tables and
indexes (per-table statistics), thousands of distinct statements in pg_stat_statements, and a
million Redis keys in the operations guide's patterns. Everything is deterministic for a given
seed, so two runs measure the same data.

Redis TTLs keep the guide's proportions but are stretched so that no key expires while a
benchmark runs (a rate-limit key that lives one minute would shrink the keyspace mid-run).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator

import psycopg
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
KEY_GROUPS = tuple(name for name, _ in KEY_MIX)  # the key census' groups, in this order
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


# ---------------------------------------------------------------------------- PostgreSQL

FILLER_SCHEMA = "filler"
FILLER_ROWS = 20  # rows per filler table
DEAD_EVERY = 4  # every 4th filler table keeps dead tuples (autovacuum off there)
DEAD_ROWS = 5  # rows deleted from such a table
TABLES_PER_TRANSACTION = 100  # ~5 locks per table (table, 2 indexes, toast); 6,400 lock slots
STATEMENT_SHAPES = (  # distinct normalized statements per filler table
    "SELECT count(*) FROM {t} WHERE grp = 3",
    "SELECT val FROM {t} WHERE id = 7",
    "SELECT id FROM {t} WHERE val LIKE 'a%' ORDER BY id LIMIT 5",
    "SELECT grp, count(*) FROM {t} GROUP BY grp",
)


def filler_table(i: int) -> str:
    return f"{FILLER_SCHEMA}.t_{i:05d}"


def _filler_ddl(i: int) -> str:
    t = filler_table(i)
    dead = i % DEAD_EVERY == 0
    options = " WITH (autovacuum_enabled = off)" if dead else ""
    ddl = (
        f"CREATE TABLE {t} (id int PRIMARY KEY, grp int NOT NULL, val text NOT NULL){options};"
        f"CREATE INDEX t_{i:05d}_grp ON {t} (grp);"
        f"INSERT INTO {t} SELECT g, g % 5, md5(g::text) FROM generate_series(1, {FILLER_ROWS}) g;"
    )
    if dead:
        ddl += f"DELETE FROM {t} WHERE id <= {DEAD_ROWS};"
    return ddl


def create_filler_tables(dsn: str, first: int, count: int) -> None:
    """Tables `first` .. `first+count-1` in schema `filler` of the database of `dsn`, each
    with a primary key and one more index and FILLER_ROWS rows; every DEAD_EVERY-th keeps
    DEAD_ROWS dead tuples (autovacuum off). Created in batches so the lock table suffices."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {FILLER_SCHEMA}")
        for start in range(first, first + count, TABLES_PER_TRANSACTION):
            stop = min(first + count, start + TABLES_PER_TRANSACTION)
            # one simple-protocol string = one implicit transaction
            conn.execute("".join(_filler_ddl(i) for i in range(start, stop)).encode())


def _statements(count: int, tables: int) -> Iterator[str]:
    """`count` statements that pg_stat_statements normalizes to distinct entries."""
    made = 0
    for shape in STATEMENT_SHAPES:
        for i in range(tables):
            if made == count:
                return
            yield shape.format(t=filler_table(i))
            made += 1
    width = 1
    while made < count:  # few tables: distinct target lists on a TMI table
        yield f"SELECT {', '.join(['email'] * width)} FROM users LIMIT 1"
        width += 1
        made += 1


def fill_statements(dsn: str, count: int, tables: int) -> None:
    """Reset pg_stat_statements and fill it with `count` distinct statements (run once or a
    few times each), as a busy application database would have."""
    rng = random.Random(count)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
        with conn.pipeline():
            for sql in _statements(count, tables):
                for _ in range(rng.choice((1, 1, 2, 3))):
                    conn.execute(sql.encode(), prepare=False)


def create_monitoring_role(dsn: str, role: str) -> None:
    """A login role in pg_monitor (trust auth on the local test server: no password)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE pg_monitor')


def statement_calls(dsn: str) -> dict[str, int]:
    """Statements executed so far per role, from pg_stat_statements (calls summed)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT r.rolname, sum(s.calls)::bigint FROM pg_stat_statements s"
            " JOIN pg_roles r ON r.oid = s.userid GROUP BY r.rolname"
        ).fetchall()
    return {name: int(calls) for name, calls in rows}


def reset_statements(dsn: str, role: str) -> None:
    """Forget the pg_stat_statements entries of one role (the others keep theirs)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = %s))",
            (role,),
        )


def top_statements(dsn: str, role: str, n: int = 3) -> list[dict[str, object]]:
    """The role's `n` statements with the most total execution time on the server."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT s.calls, s.total_exec_time, s.mean_exec_time,"
            " left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90)"
            " FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
            " WHERE r.rolname = %s ORDER BY s.total_exec_time DESC LIMIT %s",
            (role, n),
        ).fetchall()
    return [
        {"calls": calls, "total_ms": total, "mean_ms": mean, "query": query}
        for calls, total, mean, query in rows
    ]


def fill_postgres(server_dsn: str, tables: int, *, statements: int = 3000) -> None:
    """Database `tmi` with the TMI schema and demo data, `tables` filler tables, and
    pg_stat_statements holding `statements` distinct statements (reset first)."""
    from tmi_db_exporter.demo.data import seed_postgres, with_dbname

    asyncio.run(seed_postgres(server_dsn))
    tmi = with_dbname(server_dsn, "tmi")
    create_filler_tables(tmi, 0, tables)
    fill_statements(tmi, statements, tables)
