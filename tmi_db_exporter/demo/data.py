"""TMI-shaped data for the demo servers: the schema, users, threat models, diagrams and
threats in PostgreSQL; sessions, caches, auth tokens, rate limits and locks in Redis.

Shaped so that every interesting metric has something to show: an unused index, dead tuples,
a slow statement, session keys that leak without a TTL.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg.conninfo import make_conninfo

SEED = 20240611
MIGRATION_VERSION = 8
THREATS_PER_MODEL = 6
DIAGRAMS_PER_MODEL = 2
DELETE_EVERY_NTH_THREAT = 10  # these become dead tuples
CACHE_ENTITY_TYPES = ("threat_model", "diagram", "threat", "user")
RATE_LIMIT_ACTIONS = ("api", "login", "export", "collaborate")
SLOW_STATEMENT = "SELECT pg_sleep(0.15)"  # stands in for a slow report query

TMI_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE SEQUENCE IF NOT EXISTS threat_number_seq;
CREATE TABLE IF NOT EXISTS schema_migrations (
    version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL, name text NOT NULL,
    provider text NOT NULL, provider_user_id text NOT NULL, email_verified boolean NOT NULL
    DEFAULT false, created_at timestamptz NOT NULL DEFAULT now(), last_login timestamptz);
CREATE TABLE IF NOT EXISTS user_providers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE, provider text NOT NULL,
    provider_user_id text NOT NULL, email text NOT NULL, is_primary boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE, token text NOT NULL,
    expires_at timestamptz NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS threat_models (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id), name text NOT NULL, description text,
    threat_model_framework text NOT NULL DEFAULT 'STRIDE', issue_url text,
    created_at timestamptz NOT NULL DEFAULT now(), modified_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS diagrams (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    threat_model_id uuid NOT NULL REFERENCES threat_models (id) ON DELETE CASCADE,
    name text NOT NULL, type text NOT NULL DEFAULT 'DFD-1.0.0', cells jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(), modified_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS threats (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    threat_model_id uuid NOT NULL REFERENCES threat_models (id) ON DELETE CASCADE,
    diagram_id uuid REFERENCES diagrams (id) ON DELETE SET NULL, cell_id uuid,
    name text NOT NULL, description text, threat_type text NOT NULL, severity text NOT NULL,
    status text NOT NULL, priority text NOT NULL, score numeric(3, 1),
    mitigated boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(), modified_at timestamptz NOT NULL DEFAULT now());
-- queried by the load (on tiny tables the planner may still prefer a seq scan)
CREATE UNIQUE INDEX IF NOT EXISTS idx_users_email ON users (email);
CREATE INDEX IF NOT EXISTS idx_threat_models_owner_id ON threat_models (owner_id);
CREATE INDEX IF NOT EXISTS idx_diagrams_threat_model_id ON diagrams (threat_model_id);
CREATE INDEX IF NOT EXISTS idx_threats_threat_model_id ON threats (threat_model_id);
-- never used by the load: what an unused-index alert should find
CREATE INDEX IF NOT EXISTS idx_users_provider ON users (provider, provider_user_id);
CREATE INDEX IF NOT EXISTS idx_user_providers_user_id ON user_providers (user_id);
CREATE UNIQUE INDEX IF NOT EXISTS idx_refresh_tokens_token ON refresh_tokens (token);
CREATE INDEX IF NOT EXISTS idx_threats_status_severity ON threats (status, severity);
CREATE INDEX IF NOT EXISTS idx_threats_cell_id ON threats (cell_id);
"""
_TABLES = ("users", "user_providers", "refresh_tokens", "threat_models", "diagrams", "threats")

_FIRST = ("Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farah", "Gustavo", "Hiro", "Ines", "Jamal",
          "Katrin", "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Rosa", "Sven", "Tariq", "Yara")
_LAST = ("Anders", "Brown", "Chen", "Dubois", "Fischer", "Garcia", "Haddad", "Ivanova", "Jones",
         "Kowalski", "Lopez", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Walsh", "Zhang")
_PROVIDERS = ("google", "github", "microsoft", "tmi")
_SYSTEMS = ("Payments API", "Customer Portal", "Mobile Banking App", "Identity Service",
            "Data Lake", "Order Pipeline", "Partner Gateway", "Admin Console", "IoT Telemetry",
            "Search Service", "Billing Backend", "Notification Hub")
_SCOPES = ("v1", "v2", "2025 review", "cloud migration", "MVP", "EU region", "SSO rollout")
_THREATS = (
    ("Spoofing", "Session token replay"), ("Spoofing", "Credential stuffing against login"),
    ("Tampering", "Unsigned webhook payloads"), ("Tampering", "SQL injection in search filter"),
    ("Repudiation", "No audit trail for admin actions"),
    ("Information Disclosure", "Stack traces in error responses"),
    ("Information Disclosure", "Unencrypted backups in object storage"),
    ("Denial of Service", "Unbounded request body size"),
    ("Denial of Service", "Regex backtracking in input validation"),
    ("Elevation of Privilege", "IDOR on threat model endpoints"),
    ("Elevation of Privilege", "Overly broad service account role"))
_SEVERITIES, _SEVERITY_WEIGHTS = ("Critical", "High", "Medium", "Low"), (1, 3, 4, 2)
THREAT_STATUSES = ("Open", "In Progress", "Mitigated", "Accepted", "Rejected")
_SHAPES = ("actor", "process", "store", "security-boundary")


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _ids(kind: str, n: int) -> list[uuid.UUID]:
    """The same `n` ids for `kind` in every run, so Redis keys can name PostgreSQL rows."""
    rng = random.Random(f"{SEED}:{kind}")
    return [_uuid(rng) for _ in range(n)]


def with_dbname(dsn: str, dbname: str) -> str:
    """Return `dsn` (keyword string or URI) pointing at database `dbname`."""
    return make_conninfo(dsn, dbname=dbname)


def seed_row_counts(users: int = 200, threat_models: int = 500) -> dict[str, int]:
    """Live rows per table after `seed_postgres(users=..., threat_models=...)`."""
    threats = threat_models * THREATS_PER_MODEL
    return {"users": users, "user_providers": users + users // 4, "refresh_tokens": users,
            "threat_models": threat_models, "diagrams": threat_models * DIAGRAMS_PER_MODEL,
            "threats": threats - len(range(0, threats, DELETE_EVERY_NTH_THREAT)),
            "schema_migrations": 1}


def _generate(users: int, threat_models: int) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for each table, in insertion order; realistic-looking, same every run."""
    rng, now = random.Random(SEED), datetime.now(UTC)

    def past(days: float) -> datetime:
        return now - timedelta(days=rng.uniform(0, days))

    rows: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLES}
    user_ids = _ids("user", users)
    for i, uid in enumerate(user_ids):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}{i}@example.com"
        provider, sub, created = rng.choice(_PROVIDERS), str(rng.getrandbits(63)), past(900)
        rows["users"].append((uid, email, f"{first} {last}", provider, sub, rng.random() < 0.9,
                              created, past(30)))
        rows["user_providers"].append((_uuid(rng), uid, provider, sub, email, True, created))
        if i < users // 4:
            rows["user_providers"].append((_uuid(rng), uid, "github", str(rng.getrandbits(40)),
                                           email, False, past(300)))
        rows["refresh_tokens"].append((_uuid(rng), uid, f"{rng.getrandbits(256):064x}",
                                       now + timedelta(days=rng.uniform(-10, 30)), past(30)))
    for tm_id in _ids("threat_model", threat_models):
        created = past(700)
        modified = created + (now - created) * rng.random()
        name = f"{rng.choice(_SYSTEMS)} {rng.choice(_SCOPES)}"
        rows["threat_models"].append((
            tm_id, rng.choice(user_ids), name, f"STRIDE analysis of the {name} architecture.",
            f"https://issues.example.com/SEC-{rng.randint(100, 9999)}", created, modified))
        cells_by_diagram = []
        for d in range(DIAGRAMS_PER_MODEL):
            nodes = [{"id": str(_uuid(rng)), "shape": rng.choice(_SHAPES),
                      "position": {"x": rng.randint(0, 900), "y": rng.randint(0, 600)},
                      "size": {"width": 120, "height": 60},
                      "attrs": {"text": {"text": f"Component {n + 1}"}}}
                     for n in range(rng.randint(3, 7))]
            edges = [{"id": str(_uuid(rng)), "shape": "flow", "source": {"cell": a["id"]},
                      "target": {"cell": b["id"]}, "labels": ["HTTPS"]}
                     for a, b in itertools.pairwise(nodes)]
            diagram_id = _uuid(rng)
            cells_by_diagram.append((diagram_id, nodes))
            rows["diagrams"].append((diagram_id, tm_id, f"Data flow {d + 1}",
                                     json.dumps(nodes + edges), created, modified))
        for _ in range(THREATS_PER_MODEL):
            threat_type, title = rng.choice(_THREATS)
            diagram_id, nodes = rng.choice(cells_by_diagram)
            status = rng.choice(THREAT_STATUSES)
            rows["threats"].append((
                _uuid(rng), tm_id, diagram_id, rng.choice(nodes)["id"], title,
                f"{title} affecting {name}.", threat_type,
                rng.choices(_SEVERITIES, _SEVERITY_WEIGHTS)[0], status,
                rng.choice(("P1", "P2", "P3")), round(rng.uniform(1, 10), 1),
                status == "Mitigated", created, modified))
    return rows


_COLUMNS = {
    "users": "id, email, name, provider, provider_user_id, email_verified, created_at, last_login",
    "user_providers": "id, user_id, provider, provider_user_id, email, is_primary, created_at",
    "refresh_tokens": "id, user_id, token, expires_at, created_at",
    "threat_models": "id, owner_id, name, description, issue_url, created_at, modified_at",
    "diagrams": "id, threat_model_id, name, cells, created_at, modified_at",
    "threats": "id, threat_model_id, diagram_id, cell_id, name, description, threat_type, "
               "severity, status, priority, score, mitigated, created_at, modified_at",
}


async def seed_postgres(dsn: str, *, users: int = 200, threat_models: int = 500) -> None:
    """Create (or reset) database `tmi` on the server of `dsn` and fill it.

    Re-running replaces the data. The freshly loaded tables are vacuumed and analyzed like a
    settled production database; afterwards every tenth threat is deleted and NOT vacuumed,
    so the dead tuples stay visible.
    """
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT 1 FROM pg_database WHERE datname = 'tmi'")
        if await cur.fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                await conn.execute("CREATE DATABASE tmi")
    rows = _generate(users, threat_models)
    tmi = with_dbname(dsn, "tmi")
    # one transaction (committed when the connection closes): re-runs replace everything
    async with await psycopg.AsyncConnection.connect(tmi) as conn, conn.cursor() as cur:
        await cur.execute(TMI_SCHEMA)
        await cur.execute(f"TRUNCATE {', '.join(_TABLES)}, schema_migrations")
        await cur.execute("INSERT INTO schema_migrations VALUES (%s, false)", (MIGRATION_VERSION,))
        await cur.execute("SELECT setval('threat_number_seq', 2700)")
        for table in _TABLES:
            async with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                for row in rows[table]:
                    await copy.write_row(row)
    # A new session: the closed one has flushed its insert counts, which would otherwise
    # be added on top of what VACUUM reports and inflate n_live_tup.
    async with await psycopg.AsyncConnection.connect(tmi, autocommit=True) as conn:
        await conn.execute(f"VACUUM (ANALYZE) {', '.join(_TABLES)}")
        doomed = [r[0] for r in rows["threats"][::DELETE_EVERY_NTH_THREAT]]
        await conn.execute("DELETE FROM threats WHERE id = ANY(%s)", (doomed,))


async def seed_redis(url: str, *, sessions: int = 300, cache_entries: int = 400,
                     tokens: int = 150, rate_limits: int = 120, locks: int = 12,
                     users: int = 200, threat_models: int = 500) -> None:
    """Write TMI-pattern keys to db 0 of `url`; every 20th session has no TTL (a leak)."""
    rng = random.Random(f"{SEED}:redis")
    user_ids = [str(u) for u in _ids("user", users)]
    entities = {"user": user_ids, "threat_model": [str(t) for t in _ids("threat_model",
                                                                        threat_models)]}
    entities["diagram"] = [str(_uuid(rng)) for _ in range(threat_models)]
    entities["threat"] = [str(_uuid(rng)) for _ in range(threat_models)]
    client = aioredis.Redis.from_url(url, db=0, decode_responses=True)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(sessions):
            key = f"session:{rng.choice(user_ids)}:{_uuid(rng)}"
            pipe.hset(key, mapping={"ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7",
                                    "user_agent": "Mozilla/5.0", "last_seen": "0"})
            if i % 20 == 0:
                pipe.persist(key)
            else:
                pipe.expire(key, 86400)
        for i in range(cache_entries):
            kind = CACHE_ENTITY_TYPES[i % len(CACHE_ENTITY_TYPES)]
            ident = entities[kind][(i // len(CACHE_ENTITY_TYPES)) % len(entities[kind])]
            body = {"id": ident, "type": kind, "etag": f"{rng.getrandbits(64):016x}"}
            pipe.set(f"cache:{kind}:{ident}", json.dumps(body), ex=rng.randint(120, 900))
        for _ in range(tokens):
            pipe.set(f"auth:token:{_uuid(rng)}", rng.choice(user_ids), ex=rng.randint(600, 3600))
        for i in range(rate_limits):
            key = f"rate_limit:user:{user_ids[i % users]}:{rng.choice(RATE_LIMIT_ACTIONS)}"
            pipe.set(key, rng.randint(1, 40), ex=60)
        for i in range(locks):
            kind = ("diagram", "threat_model")[i % 2]
            pipe.set(f"lock:{kind}:{rng.choice(entities[kind])}", f"worker-{i}", ex=30)
        await pipe.execute()
    finally:
        await client.aclose()
