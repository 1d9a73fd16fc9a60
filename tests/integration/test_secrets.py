"""Secrets: the PostgreSQL and Redis passwords never show in metrics, labels, logs, error pages,
the landing page or `check-config` output, also when the password is wrong or the settings are.

Real servers that require the passwords (PostgreSQL: SCRAM for the monitoring role via
pg_hba.conf; Redis: requirepass), the exporter as a real process (`python -m tmi_db_exporter run`,
debug logging) scraped over HTTP on every endpoint, then everything it wrote is searched for
the secrets, raw and URL-encoded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from psycopg import sql

from tests.support.postgres import pg_connect
from tests.support.scraping import Scrape
from tests.support.secrets import PG_SECRET, REDIS_SECRET, assert_no_secret, cli
from tests.support.servers import REQUIRED_MAJORS, postgres_binaries
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE_PG_SECRET = "probe-pg-S3cr3t-9c1d"
WRONG_SECRETS = ("wrong-pg-S3cr3t-44e0", "wrong-redis-S3cr3t-0b7a")
MONITOR = "tmi_monitor"


@pytest.fixture
def servers() -> Iterator[tuple[LocalPostgres, LocalRedis]]:
    """PostgreSQL where the monitoring role must give its password (SCRAM), Redis with
    requirepass."""
    with (
        LocalPostgres(postgres_binaries(REQUIRED_MAJORS[-1])) as pg,
        LocalRedis(password=REDIS_SECRET) as redis_server,
    ):
        with pg_connect(pg) as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE pg_monitor").format(
                sql.Identifier(MONITOR), sql.Literal(PG_SECRET)))
            conn.execute(sql.SQL("CREATE ROLE probe_monitor LOGIN PASSWORD {} IN ROLE pg_monitor")
                         .format(sql.Literal(PROBE_PG_SECRET)))
        assert pg.data_dir is not None
        hba = pg.data_dir / "pg_hba.conf"
        hba.write_text(
            f"host all {MONITOR},probe_monitor 127.0.0.1/32 scram-sha-256\n" + hba.read_text()
        )
        with pg_connect(pg) as conn:
            conn.execute("SELECT pg_reload_conf()")
        with pytest.raises(psycopg.OperationalError):  # the password is really required
            psycopg.connect(host=pg.host, port=pg.port, user=MONITOR, dbname="postgres")
        yield pg, redis_server


def exporter_env(pg: LocalPostgres, redis_server: LocalRedis, tmp_path: Path,
                 pg_password: str = PG_SECRET,
                 redis_password: str = REDIS_SECRET) -> dict[str, str]:
    secret_file = tmp_path / "pg-password"
    secret_file.write_text(pg_password + "\n")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "POSTGRES_HOST": pg.host, "POSTGRES_PORT": str(pg.port), "POSTGRES_USER": MONITOR,
        "POSTGRES_PASSWORD_FILE": str(secret_file), "POSTGRES_SSL_MODE": "disable",
        "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port),
        "REDIS_PASSWORD": redis_password,
        "TMI_EXPORTER_LOG_LEVEL": "debug",
    }


def config_with_probe_target(pg: LocalPostgres, tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        "  other:\n"
        "    postgres:\n"
        f"      host: {pg.host}\n      port: {pg.port}\n      user: probe_monitor\n"
        f"      password: \"{PROBE_PG_SECRET}\"\n      ssl_mode: disable\n"
    )
    return path


async def fetch_all(base: str) -> dict[str, tuple[int, str]]:
    """Every endpoint, including error pages, as (status, body)."""
    pages = {}
    async with aiohttp.ClientSession() as session:
        for name, method, path in [
            ("metrics", "GET", "/metrics"), ("metrics gzip", "GET", "/metrics?gzip"),
            ("landing", "GET", "/"), ("healthz", "GET", "/healthz"),
            ("probe", "GET", "/probe?target=other"), ("probe unknown", "GET", "/probe?target=x"),
            ("probe no target", "GET", "/probe"), ("probe dsn", "GET",
             f"/probe?target=postgresql://{MONITOR}@127.0.0.1/postgres"),
            ("not found", "GET", "/no/such/page"), ("reload", "POST", "/-/reload"),
            ("wrong method", "DELETE", "/metrics"),
        ]:
            headers = {"Accept-Encoding": "gzip" if name == "metrics gzip" else "identity"}
            async with session.request(method, base + path, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=30)) as response:
                pages[name] = (response.status, await response.text(errors="replace"))
    return pages


class Running:
    """`python -m tmi_db_exporter run` in the background; its output is kept for the search."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        env = env | {"TMI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
                     "TMI_EXPORTER_LISTEN_PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tmi_db_exporter", "run", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        for _ in range(200):
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited:\n{self.proc.stdout.read()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("exporter did not start listening")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out


async def test_secrets_never_show_anywhere(
    servers: tuple[LocalPostgres, LocalRedis], tmp_path: Path
) -> None:
    pg, redis_server = servers
    env = exporter_env(pg, redis_server, tmp_path)
    config = config_with_probe_target(pg, tmp_path)
    secrets = (PG_SECRET, REDIS_SECRET, PROBE_PG_SECRET)
    running = Running(env, "--config", str(config))
    try:
        await running.ready()
        pages = await fetch_all(running.base)
        os.kill(running.proc.pid, signal.SIGHUP)  # a reload logs the settings it loads
        await asyncio.sleep(0.5)
        pages |= {"after reload": (200, (await fetch_all(running.base))["metrics"][1])}
    finally:
        logs = running.stop()
    metrics = Scrape(pages["metrics"][1])
    assert metrics.value("pg_up") == 1 and metrics.value("redis_up") == 1  # really logged in
    assert Scrape(pages["probe"][1]).value("pg_up") == 1
    assert MONITOR in logs or "postgres" in logs  # the log is not simply empty
    for name, (_, body) in pages.items():
        assert_no_secret(body, name, secrets)
    assert_no_secret(logs, "the exporter's log", secrets)

    for args in (["check-config", "--config", str(config)], ["once", "--config", str(config)]):
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert_no_secret(result.stdout + result.stderr, " ".join(args[:1]), secrets)


async def test_wrong_passwords_do_not_show_either(
    servers: tuple[LocalPostgres, LocalRedis], tmp_path: Path
) -> None:
    pg, redis_server = servers
    wrong_pg, wrong_redis = WRONG_SECRETS
    env = exporter_env(pg, redis_server, tmp_path, wrong_pg, wrong_redis)
    running = Running(env)
    try:
        await running.ready()
        pages = await fetch_all(running.base)
    finally:
        logs = running.stop()
    metrics = Scrape(pages["metrics"][1])
    assert metrics.value("pg_up") == 0 and metrics.value("redis_up") == 0
    assert "password authentication failed" in logs  # the failure is told, without the value
    secrets = (PG_SECRET, REDIS_SECRET, *WRONG_SECRETS)
    for name, (_, body) in pages.items():
        assert_no_secret(body, name, secrets)
    assert_no_secret(logs, "the exporter's log", secrets)
    once = cli("once", env=env)
    assert once.returncode == 1
    assert_no_secret(once.stdout + once.stderr, "once", secrets)
