"""HTTP server and CLI end to end: /metrics always 200, gzip, deadlines, no secrets shown."""

from __future__ import annotations

import gc
import gzip

import aiohttp
import pytest

from tests.support.scraping import Scrape, eventually
from tests.support.servers import pg_env, redis_env
from tests.support.serving import run_cli, running
from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis, free_port

pytestmark = pytest.mark.integration


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept-Encoding": "identity", **headers}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=20)) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_metrics_plain_and_gzip_landing_and_health(
    postgres: LocalPostgres, private_redis: LocalRedis
) -> None:
    env = pg_env(postgres) | redis_env(private_redis) | {"POSTGRES_PASSWORD": "pg-secret-pw"}
    async with running(env) as base:
        status, headers, body = await get(f"{base}/metrics")
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        plain = Scrape(body.decode())
        assert plain.value("pg_up") == 1 and plain.value("redis_up") == 1
        assert int(headers["Content-Length"]) == len(body)  # written block by block
        assert gc.get_freeze_count() > 0  # startup objects are out of the collector's way

        status, headers, body = await get(f"{base}/metrics", **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert int(headers["Content-Length"]) == len(body)
        zipped = Scrape(gzip.decompress(body).decode())
        assert zipped.value("pg_up") == 1 and zipped.value("redis_up") == 1

        status, _, page = await get(f"{base}/")
        assert status == 200
        assert f"127.0.0.1:{postgres.port}" in page.decode()
        assert f"127.0.0.1:{private_redis.port}" in page.decode()
        assert (await get(f"{base}/healthz"))[0] == 200
    for secret in ("pg-secret-pw", private_redis.password):
        assert secret not in page.decode() and secret not in plain.text


async def test_postgres_stopped_during_run_gives_pg_up_0_then_1(
    private_postgres: LocalPostgres,
) -> None:
    async with running(pg_env(private_postgres)) as base:
        status, _, body = await get(f"{base}/metrics")
        assert status == 200 and Scrape(body.decode()).value("pg_up") == 1
        private_postgres.kill()
        status, _, body = await get(f"{base}/metrics")
        assert status == 200 and Scrape(body.decode()).value("pg_up") == 0
        private_postgres.start_again()

        async def metrics() -> Scrape:
            status, _, body = await get(f"{base}/metrics")
            assert status == 200
            return Scrape(body.decode())

        result = await eventually(metrics, lambda r: r.value("pg_up") == 1)
        assert result.value("pg_up") == 1


async def test_scrape_timeout_header_serves_what_is_ready(
    postgres: LocalPostgres, tmp_path
) -> None:
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "pg_slow:\n  help: Slow.\n  sql: SELECT 1 AS x FROM pg_sleep(3)\n  timeout: 10s\n"
        "  metrics:\n    - {column: x, type: gauge, help: X.}\n"
    )
    flags = {"extra_queries_files": str(slow), "postgres.auto_discover_databases": "false"}
    async with running(pg_env(postgres), flags) as base:
        status, _, body = await get(
            f"{base}/metrics", **{"X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
        )
        result = Scrape(body.decode())
    assert status == 200
    assert result.value("pg_up") == 1
    assert result.series("pg_slow_x") == []
    misses = "tmi_db_exporter_collector_deadline_misses_total"
    assert result.value(misses, collector="pg:pg_slow") == 1


def test_once_prints_metrics_and_exit_code_tells_if_a_database_is_down(
    postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    good = run_cli("once", env=pg_env(postgres) | redis_env(redis_server))
    assert good.returncode == 0, good.stderr
    result = Scrape(good.stdout)
    assert result.value("pg_up") == 1 and result.value("redis_up") == 1
    assert result.value("pg_database_size_bytes", datname="postgres") > 0

    closed = str(free_port())
    bad = run_cli("once", "--postgres-port", closed, env=pg_env(postgres))
    assert bad.returncode == 1
    assert Scrape(bad.stdout).value("pg_up") == 0
    assert "Traceback" not in bad.stderr
