"""Tests for tmi_db_exporter.demo.servers: real PostgreSQL and Redis processes, no mocks."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support.servers import pid_alive
from tmi_db_exporter.demo.servers import (
    LocalPostgres,
    LocalRedis,
    PostgresBinaries,
    find_postgres_binaries,
)

PG_INSTALLS = find_postgres_binaries()
REPO_ROOT = Path(__file__).resolve().parents[2]




def test_finds_debian_15_and_embedded_18() -> None:
    majors = [b.major for b in PG_INSTALLS]
    assert {15, 18} <= set(majors)
    assert majors == sorted(majors, reverse=True)
    assert len(majors) == len(set(majors))


@pytest.mark.parametrize("binaries", PG_INSTALLS, ids=lambda b: f"pg{b.major}")
def test_postgres_start_query_stop(binaries: PostgresBinaries) -> None:
    pg = LocalPostgres(binaries).start()
    base_dir, pid = pg.base_dir, pg.pid
    assert base_dir is not None and pid is not None
    try:
        with psycopg.connect(pg.dsn()) as conn:
            version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])
            assert version_num // 10000 == binaries.major == pg.major
            assert conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0] >= 0
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("SHOW track_io_timing").fetchone()[0] == "on"
    finally:
        pg.stop()
    assert not base_dir.exists()
    assert not pid_alive(pid)
    pg.stop()  # a second stop is a no-op


def test_postgres_down_then_up_again_on_same_port_with_data() -> None:
    with LocalPostgres() as pg:
        port = pg.port
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE survives (x int)")
        first_pid = pg.pid
        assert first_pid is not None

        pg.kill()
        assert not pid_alive(first_pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.dsn(), connect_timeout=2)

        pg.start_again()
        assert pg.port == port
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SELECT count(*) FROM survives").fetchone()[0] == 0

        pg.restart()
        assert pg.port == port
        with psycopg.connect(pg.dsn()) as conn:
            conn.execute("SELECT 1")


def test_postgres_start_failure_reports_log_and_cleans_up() -> None:
    # Bound but not listening: postgres cannot bind, yet probes are refused at once
    # (a listening socket would make each psycopg probe wait for its 2 s timeout).
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        pg = LocalPostgres(port=blocker.getsockname()[1])
        with pytest.raises(RuntimeError, match="log tail") as excinfo:
            pg.start()
    assert "could not" in str(excinfo.value)  # e.g. "could not bind IPv4 address"
    assert pg.base_dir is None and pg.pid is None


def test_redis_password_required_and_cleanup() -> None:
    server = LocalRedis(password="s3cret p@ss").start()
    base_dir, pid = server.base_dir, server.pid
    assert base_dir is not None and pid is not None
    try:
        # RESP2 so SET itself gets NOAUTH (RESP3 fails earlier, at HELLO); no retries,
        # since redis-py otherwise backs off for seconds on this ConnectionError subclass.
        anonymous = redis.Redis(host=server.host, port=server.port, protocol=2, retry=None)
        with pytest.raises(redis.AuthenticationError, match="Authentication required"):
            anonymous.set("k", "v")
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    finally:
        server.stop()
    assert not base_dir.exists()
    assert not pid_alive(pid)
    server.stop()


def test_redis_down_then_up_again_with_extra_config() -> None:
    with LocalRedis(extra_config={"appendonly": "yes", "appendfsync": "always"}) as server:
        client = redis.Redis.from_url(server.url)
        client.set("kept", "1")
        client.close()
        port = server.port

        server.kill()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, retry=None).ping()

        server.start_again()
        assert server.port == port
        client = redis.Redis.from_url(server.url)
        assert client.get("kept") == b"1"  # the AOF in the kept temp dir was replayed
        client.close()


def test_redis_start_failure_reports_log() -> None:
    server = LocalRedis(extra_config={"no-such-directive": "1"})
    with pytest.raises(RuntimeError, match="no-such-directive"):
        server.start()
    assert server.base_dir is None


def test_atexit_stops_forgotten_servers() -> None:
    script = (
        "import json\n"
        "from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis\n"
        "pg, rd = LocalPostgres().start(), LocalRedis().start()\n"
        "print(json.dumps([pg.pid, str(pg.base_dir), rd.pid, str(rd.base_dir)]))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    pg_pid, pg_dir, redis_pid, redis_dir = json.loads(out)
    assert not pid_alive(pg_pid) and not pid_alive(redis_pid)
    assert not Path(pg_dir).exists() and not Path(redis_dir).exists()
