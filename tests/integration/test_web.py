"""Web security and operations: TLS and basic auth on every endpoint, /probe only for named
targets, reload that keeps the last good configuration, JSON logs, graceful shutdown."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import bcrypt
import psycopg
import pytest

from tests.support.certs import make_certs
from tests.support.scraping import Scrape
from tests.support.servers import pg_env, redis_env
from tests.support.serving import running
from tmi_db_exporter.app.webconfig import load_web_config
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, free_port

pytestmark = pytest.mark.integration

ENDPOINTS = ["/", "/metrics", "/healthz", "/probe?target=cache"]


def go_style_hash(password: str) -> str:
    """A bcrypt hash as Go's htpasswd tools write it ($2y$), cheap rounds for tests."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return "$2y$" + hashed[4:]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def fetch(url: str, *, auth: dict[str, str] | None = None,
                context: ssl.SSLContext | None = None, method: str = "GET") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=auth or {}, ssl=context) as response,
    ):
        return response.status, await response.text()


async def test_tls_and_basic_auth_guard_every_endpoint(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    certs = make_certs(tmp_path / "tls")
    web = tmp_path / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {certs.cert}\n  key_file: {certs.key}\n"
        f"basic_auth_users:\n  prometheus: '{go_style_hash('scrape-pw')}'\n"
    )
    config = tmp_path / "config.yml"
    config.write_text(
        f"targets:\n  cache:\n    redis:\n      host: 127.0.0.1\n      port: {redis_server.port}\n"
    )
    client_tls = ssl.create_default_context(cafile=certs.ca)
    good = basic("prometheus", "scrape-pw")
    async with running(redis_env(redis_server), config_file=config,
                       web_config=load_web_config(web), scheme="https") as base:
        for path in ENDPOINTS:
            assert (await fetch(base + path, context=client_tls))[0] == 401, path
            bad = basic("prometheus", "wrong")
            assert (await fetch(base + path, auth=bad, context=client_tls))[0] == 401
            nobody = basic("nobody", "scrape-pw")
            assert (await fetch(base + path, auth=nobody, context=client_tls))[0] == 401
            status, _ = await fetch(base + path, auth=good, context=client_tls)
            assert status == 200, path
        status, _ = await fetch(base + "/-/reload", auth=None, context=client_tls, method="POST")
        assert status == 401
        status, body = await fetch(base + "/metrics", auth=good, context=client_tls)
        assert Scrape(body).value("redis_up") == 1
        # Plain HTTP to the TLS port gets nowhere, and an untrusting client refuses the server.
        with pytest.raises(aiohttp.ClientError):
            await fetch(base.replace("https", "http") + "/healthz", auth=good)
        with pytest.raises(aiohttp.ClientError):
            await fetch(base + "/healthz", auth=good, context=ssl.create_default_context())


async def test_probe_serves_only_named_targets(tmp_path: Path, redis_server: LocalRedis,
                                                postgres: LocalPostgres) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "targets:\n"
        f"  cache:\n    redis: {{host: 127.0.0.1, port: {redis_server.port}}}\n"
        f"  main-db:\n    postgres: {{host: 127.0.0.1, port: {postgres.port}, ssl_mode: disable,"
        " auto_discover_databases: false}\n"
    )
    async with running({}, config_file=config) as base:
        status, body = await fetch(f"{base}/probe?target=cache")
        assert status == 200
        cache = Scrape(body)
        assert cache.value("redis_up") == 1 and cache.series("pg_up") == []
        status, body = await fetch(f"{base}/probe?target=main-db")
        assert status == 200 and Scrape(body).value("pg_up") == 1
        for target in ("http://127.0.0.1:22", "127.0.0.1:6379", "../cache", "nope"):
            status, body = await fetch(f"{base}/probe?target={target}")
            assert status == 404 and "unknown target" in body
        assert (await fetch(f"{base}/probe"))[0] == 400
        status, body = await fetch(f"{base}/metrics")  # the default target has no database
        assert status == 200 and Scrape(body).series("redis_up") == []


async def test_reload_applies_valid_config_and_keeps_the_last_good_one(
    tmp_path: Path, redis_server: LocalRedis
) -> None:
    config = tmp_path / "config.yml"
    one = f"  one:\n    redis: {{host: 127.0.0.1, port: {redis_server.port}}}\n"
    config.write_text("targets:\n" + one)
    async with running({}, config_file=config) as base:  # off unless asked for
        assert (await fetch(f"{base}/-/reload", method="POST"))[0] == 403
    async with running({}, {"enable_lifecycle": "true"}, config_file=config) as base:
        assert (await fetch(f"{base}/probe?target=one"))[0] == 200
        config.write_text("targets:\n  one: [this is not, a target]\n")
        status, _ = await fetch(f"{base}/-/reload", method="POST")
        assert status == 500
        status, body = await fetch(f"{base}/probe?target=one")  # still the last good config
        assert status == 200 and Scrape(body).value("redis_up") == 1
        metrics = Scrape((await fetch(f"{base}/metrics"))[1])
        assert metrics.value("tmi_db_exporter_config_last_reload_successful") == 0
        config.write_text("targets:\n" + one + one.replace("one", "two"))
        assert (await fetch(f"{base}/-/reload", method="POST"))[0] == 200
        assert (await fetch(f"{base}/probe?target=two"))[0] == 200
        metrics = Scrape((await fetch(f"{base}/metrics"))[1])
        assert metrics.value("tmi_db_exporter_config_last_reload_successful") == 1
        assert (await fetch(f"{base}/-/reload"))[0] == 405  # GET does not reload


def _get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tmi_db_exporter", "run", "--listen-address", "127.0.0.1",
         "--listen-port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": os.environ["PATH"], **env},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if _get(base + "/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    return process, base


def test_sighup_reloads_and_json_logs(tmp_path: Path, redis_server: LocalRedis) -> None:
    config = tmp_path / "config.yml"
    config.write_text("log_format: json\nlisten_port: 1\n")  # the flag wins over the file
    env = redis_env(redis_server)
    process, base = _start(["--config", str(config)], env)
    try:
        assert _get(base + "/probe?target=late")[0] == 404
        config.write_text(
            "log_format: json\ntargets:\n"
            f"  late:\n    redis: {{host: 127.0.0.1, port: {redis_server.port}}}\n"
        )
        process.send_signal(signal.SIGHUP)
        for _ in range(100):
            if _get(base + "/probe?target=late")[0] == 200:
                break
            time.sleep(0.1)
        assert _get(base + "/probe?target=late")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = [entry["message"] for entry in lines]
    assert "configuration reloaded" in messages
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)


def test_graceful_shutdown_finishes_the_scrape_and_closes_connections(
    tmp_path: Path, postgres: LocalPostgres
) -> None:
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "pg_slow:\n  help: Slow.\n  sql: SELECT 1 AS x FROM pg_sleep(2)\n  timeout: 10s\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    env = pg_env(postgres) | {"POSTGRES_AUTO_DISCOVER_DATABASES": "false"}
    process, base = _start(["--extra-queries-files", str(slow)], env)
    result: dict[str, tuple[int, str]] = {}
    scraper = threading.Thread(target=lambda: result.setdefault("scrape", _get(base + "/metrics")))
    try:
        scraper.start()
        time.sleep(0.7)  # the scrape is now waiting for pg_sleep
        process.send_signal(signal.SIGTERM)
        scraper.join(20)
    finally:
        process.communicate(timeout=30)
    assert process.returncode == 0
    status, body = result["scrape"]
    assert status == 200 and Scrape(body).value("pg_slow_x") == 1
    with psycopg.connect(postgres.dsn()) as conn:
        (left,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tmi-db-exporter'"
        ).fetchone()
    assert left == 0
