"""The exporters a run compares: ours (from this checkout or `--ours-from`), and the peers
prometheus-postgres-exporter and prometheus-redis-exporter, each pointed at the run's servers."""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import yaml

from bench import data
from bench.exporters import Target
from bench.servers import OURS_ROLE, PEER_ROLE, BenchServers
from tmi_db_exporter.demo.servers import free_port

PEER_PG = "prometheus-postgres-exporter"
PEER_REDIS = "prometheus-redis-exporter"
PEER_QUERIES = Path("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")
OURS_REDIS_CLIENT, PEER_REDIS_CLIENT = "tmi-db-exporter", "redis_exporter"
# redis_exporter's key groups: Lua patterns whose captures name the group; the same five
# groups as our default key census (session, cache, auth, rate_limit, lock)
PEER_KEY_GROUPS = "^(session):,^(cache):,^(auth):token:,^(rate_limit):user:,^(lock):"


def peer_queries(path: Path) -> None:
    """The Debian example queries with the two fixes design.md names: pg_stat_statements'
    *_time columns are *_exec_time from PostgreSQL 13 on, and pg_process_idle must run only
    once per server (`master: true`), or --auto-discover-databases fails every scrape."""
    queries = yaml.safe_load(PEER_QUERIES.read_text())
    statements = queries["pg_stat_statements"]
    for column in ("total", "min", "max", "mean", "stddev"):
        statements["query"] = statements["query"].replace(
            f"{column}_time /", f"{column}_exec_time /"
        )
    queries["pg_process_idle"]["master"] = True
    path.write_text(yaml.safe_dump(queries, sort_keys=False))


def fresh_queries(path: Path, ours_from: Path) -> None:
    """Our built-in queries with every TTL at 0: each scrape runs every query."""
    queries = yaml.safe_load((ours_from / "queries.yaml").read_text())
    for entry in queries.values():
        if isinstance(entry, dict):
            entry["ttl"] = "0s"
            entry.pop("background", None)
    path.write_text(yaml.safe_dump(queries, sort_keys=False))


def package_name(ours_from: Path) -> str:
    """Our package's name in `ours_from` (checkouts from before the layout change call it
    `exporter`)."""
    return "tmi_db_exporter" if (ours_from / "tmi_db_exporter").is_dir() else "exporter"


def missing_peers() -> list[str]:
    missing = [p for p in (PEER_PG, PEER_REDIS) if shutil.which(p) is None]
    if not PEER_QUERIES.exists():
        missing.append(str(PEER_QUERIES))
    return missing


class Targets:
    """The exporters under test against `servers`; ours runs from the checkout `ours_from`."""

    def __init__(self, servers: BenchServers, ours_from: Path) -> None:
        self.servers = servers
        self.ours_from = ours_from

    def is_ours(self, target: Target) -> bool:
        """Runs from our checkout. (A peer runs from the repository root, so with the default
        `ours_from` it counts too: its self-metric figures are then empty, and --profile
        attaches py-spy to it as well.)"""
        return target.cwd == self.ours_from

    def ours(
        self, name: str, *, postgres: bool, redis_: bool, fresh: bool = False, shared: bool = False
    ) -> Target:
        """Our exporter. Unless `shared`, with min_ttl 0: every scrape runs the TTL-0 queries
        as a scrape at a real interval does, instead of reusing what a scrape a moment ago
        collected (the default 1 s window is measured where it matters, in the interval phase)."""
        port = free_port()
        env = {
            "TMI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
            "TMI_EXPORTER_LISTEN_PORT": str(port),
            "TMI_EXPORTER_LOG_LEVEL": "warning",
            "PYTHONPATH": str(self.ours_from),
        }
        if not shared:
            env["TMI_EXPORTER_MIN_TTL"] = "0"
        pg, redis_server = self.servers.pg, self.servers.redis_server
        if postgres:
            assert pg is not None
            env |= {
                "POSTGRES_HOST": pg.host,
                "POSTGRES_PORT": str(pg.port),
                "POSTGRES_USER": OURS_ROLE,
                "POSTGRES_DATABASE": "postgres",
                "POSTGRES_SSL_MODE": "disable",
            }
        if redis_:
            assert redis_server is not None
            env |= {"REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}
        note = ""
        if fresh:
            queries = self.servers.tmp / "queries-ttl0.yaml"
            fresh_queries(queries, self.ours_from)
            env["TMI_EXPORTER_QUERIES_FILE"] = str(queries)
            note = "every TTL 0: each scrape runs every query"
        return Target(
            name,
            "postgres" if postgres else "redis",
            [sys.executable, "-m", package_name(self.ours_from), "run"],
            env,
            port,
            role=OURS_ROLE if postgres else None,
            redis_client=OURS_REDIS_CLIENT if redis_ else None,
            slow=fresh,
            cwd=self.ours_from,
            note=note,
        )

    def peer_postgres(self) -> Target:
        pg = self.servers.pg
        assert pg is not None
        queries = self.servers.tmp / "postgres_exporter-queries.yaml"
        peer_queries(queries)
        port = free_port()
        dsn = f"postgresql://{PEER_ROLE}@{pg.host}:{pg.port}/postgres?sslmode=disable"
        return Target(
            "postgres_exporter",
            "postgres",
            [
                PEER_PG,
                "--auto-discover-databases",
                f"--extend.query-path={queries}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            {"DATA_SOURCE_NAME": dsn},
            port,
            role=PEER_ROLE,
            note="Debian's example queries.yaml (fixed for PostgreSQL 13+),"
            " --auto-discover-databases",
        )

    def peer_redis(self, key_groups: bool) -> Target:
        redis_server = self.servers.redis_server
        assert redis_server is not None
        port = free_port()
        command = [
            PEER_REDIS,
            f"-redis.addr=redis://{redis_server.host}:{redis_server.port}",
            f"-web.listen-address=127.0.0.1:{port}",
        ]
        note = "INFO only (defaults)"
        if key_groups:
            command.append(f"-check-key-groups={PEER_KEY_GROUPS}")
            note = "key groups, default -check-keys-batch-size 1000"
        return Target(
            "redis_exporter" + (" (key groups)" if key_groups else ""),
            "redis",
            command,
            {},
            port,
            redis_client=PEER_REDIS_CLIENT,
            slow=key_groups,
            note=note,
        )

    def twin(self, target: Target, n: int) -> Target:
        """Another instance of `target` on its own port, connecting as its own role (so that
        its statements are counted apart)."""
        assert target.role is not None and self.servers.pg is not None
        role, port = f"{target.role}_{n}", free_port()
        data.create_monitoring_role(self.servers.pg.dsn(), role)
        old_addr, new_addr = f"127.0.0.1:{target.port}", f"127.0.0.1:{port}"

        def swap(text: str) -> str:
            if text == str(target.port):
                return str(port)
            text = text.replace(old_addr, new_addr)
            return text.replace(f"postgresql://{target.role}@", f"postgresql://{role}@")

        env = {k: (role if v == target.role else swap(v)) for k, v in target.env.items()}
        return replace(
            target, command=[swap(a) for a in target.command], env=env, port=port, role=role
        )
