"""Degraded and locked-down Redis servers: renamed commands, minimal ACL users, TLS, sockets.
The exporter must export what it can, say once what it cannot, and never leak a key name, a
command argument or a renamed command's new name."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.scraping import Scrape, eventually, make_target, scrape
from tests.support.servers import redis_env
from tmi_db_exporter.demo.servers import LocalRedis, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = "cfg-9f3e7a-renamed"  # CONFIG's new name: as secret as a password
MARKER = "zq7-private-marker"  # in key names and arguments; must never come out


# Busy for 15 ms (over the default slowlog threshold of 10 ms), whatever its arguments.
BUSY_SCRIPT = """
local t0 = redis.call('TIME')
repeat local t = redis.call('TIME') until (t[1] - t0[1]) * 1e6 + (t[2] - t0[2]) > 15000
return 1
"""


def client(server: LocalRedis, **kwargs: object) -> redis.Redis:
    return redis.Redis(host=server.host, port=server.port, password=server.password,
                       protocol=2, decode_responses=True, lib_name=None, lib_version=None,
                       **kwargs)


def readme_acl_line() -> list[str]:
    """The minimal ACL line the README gives: the arguments after the user name."""
    readme = (ROOT / "README.md").read_text()
    (line,) = re.findall(r"^ACL SETUSER tmi-exporter .*$", readme, flags=re.MULTILINE)
    return line.split()[3:]


async def scrapes(env: dict[str, str], count: int = 3, pause: float = 0.0) -> list[Scrape]:
    exporter = make_target(env)
    try:
        results = []
        for _ in range(count):
            results.append(await scrape(exporter))
            await asyncio.sleep(pause)
        return results
    finally:
        await exporter.close()


@pytest.fixture(scope="module")
def renamed_redis() -> Iterator[LocalRedis]:
    config = {
        'rename-command FLUSHDB': '""',
        'rename-command CONFIG': SECRET_NAME,
        'rename-command LATENCY': '""',  # as on managed services without LATENCY
    }
    with LocalRedis(extra_config=config) as server:
        yield server


async def test_renamed_commands_are_reported_and_the_exporter_still_works(
    renamed_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client(renamed_redis).set("session:u1:s1", "x")
    env = redis_env(renamed_redis) | {
        "REDIS_POSTURE_INTERVAL": "20ms", "REDIS_SLOWLOG_INTERVAL": "20ms",
    }
    first, *_, last = await scrapes(env, count=5, pause=0.03)

    def state(command: str) -> tuple[float, float]:
        return (last.value("redis_security_command_renamed", command=command),
                last.value("redis_security_command_disabled", command=command))

    assert state("FLUSHDB") == (1, 1)  # renamed to "": disabled
    assert state("CONFIG") == (1, 0)  # renamed to another name
    assert state("FLUSHALL") == (0, 0)
    assert state("KEYS") == (0, 0)
    assert last.value("redis_up") == 1
    assert last.value("redis_key_group_keys_without_ttl", db="db0", key_group="session") == 1
    assert last.value("redis_slowlog_length") >= 0
    assert last.value("tmi_db_exporter_redis_command_allowed", command="CONFIG") == 0
    assert last.value("tmi_db_exporter_redis_command_allowed", command="LATENCY") == 0
    assert last.series("redis_security_protected_mode") == []
    assert last.series("redis_latency_spike_duration_seconds") == []
    assert last.value("tmi_db_exporter_collector_errors_total", collector="redis_posture") == 0
    assert last.value("tmi_db_exporter_collector_errors_total", collector="redis_slowlog") == 0
    # Said once, not on every posture check, and the new name never shows.
    assert len([r for r in caplog.records if "cannot run CONFIG" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "cannot run LATENCY" in r.getMessage()]) == 1
    assert SECRET_NAME not in caplog.text and SECRET_NAME not in first.text + last.text

    # Given the new name (as a secret), the exporter uses it.
    named = (await scrapes(env | {"REDIS_CONFIG_COMMAND": SECRET_NAME}, count=1))[0]
    assert named.value("redis_security_protected_mode") in (0, 1)
    assert named.value("redis_config_slowlog_max_len") == 128
    assert SECRET_NAME not in named.text


@pytest.fixture
def acl_redis() -> Iterator[LocalRedis]:
    with LocalRedis(password="admin-pw-31", extra_config={"enable-debug-command": "yes"}) as s:
        yield s


async def test_minimal_acl_user_from_the_readme_works(
    acl_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = client(acl_redis)
    admin.execute_command("ACL", "SETUSER", "tmi-exporter", *[
        ">exporter-pw-47" if arg == ">CHANGE-ME" else arg for arg in readme_acl_line()
    ])
    admin.set(f"session:{MARKER}:1", "x")
    admin.set(f"cache:threat:{MARKER}", "y", ex=600)
    admin.execute_command("DEBUG", "SLEEP", "0.02")
    admin.eval(BUSY_SCRIPT, 1, f"lock:{MARKER}:1", MARKER)  # a slow command with our marker
    env = {"REDIS_HOST": acl_redis.host, "REDIS_PORT": str(acl_redis.port),
           "REDIS_USERNAME": "tmi-exporter", "REDIS_PASSWORD": "exporter-pw-47"}
    *_, result = await scrapes(env, count=2)
    assert result.value("redis_slowlog_recent_entries", cmd="eval") == 1
    assert MARKER not in result.text and MARKER not in caplog.text
    assert result.value("redis_up") == 1
    assert result.value("redis_connected_clients") >= 1
    assert result.value("redis_slowlog_recent_entries", cmd="debug") == 1
    assert result.value("redis_key_group_count", db="db0", key_group="session") == 1
    assert result.value("redis_key_group_memory_sampled_keys", db="db0", key_group="cache") == 1
    assert result.value("redis_security_auth_required") == 1
    assert result.value("redis_security_command_renamed", command="FLUSHDB") == 0
    for command in ("INFO", "SLOWLOG", "LATENCY", "COMMAND", "SCAN", "PEXPIRETIME", "MEMORY"):
        assert result.value("tmi_db_exporter_redis_command_allowed", command=command) == 1
    assert result.value("tmi_db_exporter_redis_command_allowed", command="CONFIG") == 0
    for collector in ("redis", "redis_slowlog", "redis_posture", "redis_key_groups"):
        assert result.value("tmi_db_exporter_collector_errors_total", collector=collector) == 0
    assert len([r for r in caplog.records if "cannot run CONFIG" in r.getMessage()]) == 1
    # The user could not write even if the exporter wanted to.
    user = redis.Redis(host=acl_redis.host, port=acl_redis.port, username="tmi-exporter",
                       password="exporter-pw-47", protocol=2, lib_name=None, lib_version=None)
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.set("cache:x", "y")


async def test_refused_info_keys_and_memory_degrade_without_leaking(
    acl_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A user without INFO and without access to most keys: redis_up stays 1 (PING), the
    failures are errors of their collectors, and no key name or argument comes out anywhere."""
    caplog.set_level(logging.DEBUG)
    admin = client(acl_redis)
    admin.execute_command(
        "ACL", "SETUSER", "narrow", "on", ">narrow-pw", "resetkeys", "%R~cache:*", "-@all",
        "+ping", "+client|setname", "+slowlog|get", "+slowlog|len", "+command|info",
        "+command|list", "+scan", "+pexpiretime", "+time",  # no INFO, no MEMORY, no LATENCY
    )
    for i in range(5):
        admin.set(f"session:{MARKER}:{i}", MARKER, ex=60)
    admin.set(f"cache:threat:{MARKER}", MARKER, ex=60)
    with pytest.raises(redis.ResponseError):
        admin.lpush(f"cache:threat:{MARKER}", MARKER)  # an error reply naming the key
    admin.eval("local t = redis.call('TIME') return 1", 1, f"lock:{MARKER}:1", MARKER)
    admin.execute_command("DEBUG", "SLEEP", "0.02")
    env = {"REDIS_HOST": acl_redis.host, "REDIS_PORT": str(acl_redis.port),
           "REDIS_USERNAME": "narrow", "REDIS_PASSWORD": "narrow-pw",
           "REDIS_KEY_CENSUS_INTERVAL": "50ms", "REDIS_SLOWLOG_INTERVAL": "20ms"}
    # Scrapes over ~3 s: the background census fails on its own schedule, whatever the load.
    results = await scrapes(env, count=10, pause=0.3)
    last = results[-1]
    assert last.value("redis_up") == 1
    assert last.series("redis_memory_used_bytes") == []
    assert last.value("tmi_db_exporter_redis_command_allowed", command="INFO") == 0
    assert last.value("tmi_db_exporter_collector_errors_total", collector="redis") >= 1
    assert last.value("tmi_db_exporter_collector_errors_total", collector="redis_key_groups") >= 1
    # Without INFO there are no commandstats to tell a command name from an argument.
    assert last.value("redis_slowlog_recent_entries", cmd="other") == 1
    text = "".join(r.text for r in results)
    assert MARKER not in text
    assert MARKER not in caplog.text
    assert "PEXPIRETIME failed: NOPERM" in caplog.text
    assert len([r for r in caplog.records if "cannot run INFO" in r.getMessage()]) == 1

    # With the whole keyspace readable but MEMORY refused, the census runs without estimates.
    # A refused command is not tried again on every scrape or census (the ACL LOG stays quiet).
    admin.execute_command("ACL", "SETUSER", "narrow", "resetkeys", "%R~*")

    def refusals() -> dict[str, int]:
        stats = admin.info("commandstats")
        return {cmd: stats.get(f"cmdstat_{cmd}", {}).get("rejected_calls", 0)
                for cmd in ("info", "latency|latest", "config|get", "memory|usage", "echo")}

    exporter = make_target(env)
    try:
        await scrape(exporter)
        await asyncio.sleep(0.1)
        await scrape(exporter)
        tried = refusals()
        for _ in range(3):
            await asyncio.sleep(0.1)  # several slowlog runs and censuses
            last = await scrape(exporter)
    finally:
        await exporter.close()
    assert tried.pop("echo") == 0 and all(tried.values()), tried
    tried["echo"] = 0
    assert refusals() == tried
    assert last.value("redis_key_group_count", db="db0", key_group="session") == 5
    assert last.series("redis_key_group_memory_usage_bytes") == []
    assert last.value("tmi_db_exporter_redis_command_allowed", command="MEMORY") == 0
    assert MARKER not in last.text and MARKER not in caplog.text


async def test_a_failed_census_serves_the_previous_one(
    acl_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    admin = client(acl_redis)
    admin.execute_command("ACL", "SETUSER", "census", "on", ">census-pw", "~*", "+@all")
    admin.set("lock:diagram:1", "w", ex=300)
    env = {"REDIS_HOST": acl_redis.host, "REDIS_PORT": str(acl_redis.port),
           "REDIS_USERNAME": "census", "REDIS_PASSWORD": "census-pw",
           "REDIS_KEY_CENSUS_INTERVAL": "20ms"}
    exporter = make_target(env)
    try:
        first = await eventually(  # the first census, made in the background
            lambda: scrape(exporter),
            lambda r: bool(r.series("redis_key_census_last_finished_timestamp_seconds")),
        )
        admin.execute_command("ACL", "SETUSER", "census", "-pexpiretime")
        for _ in range(100):
            await asyncio.sleep(0.05)
            later = await scrape(exporter)
            if later.value("tmi_db_exporter_collector_errors_total",
                           collector="redis_key_groups") > 0:
                break
    finally:
        await exporter.close()
    group = {"db": "db0", "key_group": "lock"}
    assert first.value("redis_key_group_count", **group) == 1
    assert later.value("redis_key_group_count", **group) == 1  # the previous census
    assert (later.value("redis_key_census_last_finished_timestamp_seconds")
            == first.value("redis_key_census_last_finished_timestamp_seconds"))
    assert "serving the previous one" in caplog.text


async def test_unix_socket(tmp_path: Path) -> None:
    with LocalRedis(extra_config={"unixsocket": str(tmp_path / "redis.sock"),
                                  "unixsocketperm": "700"}) as server:
        *_, result = await scrapes({"REDIS_SOCKET": str(tmp_path / "redis.sock")}, count=1)
        assert result.value("redis_up") == 1
        assert result.value("redis_instance_info", tcp_port=str(server.port)) == 1


def _certificates(directory: Path) -> dict[str, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl not found (Debian package openssl)")
    files = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key")}
    run = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run([*run, "-subj", "/CN=test-ca", "-keyout", files["ca-key"],
                    "-out", files["ca"]], check=True, capture_output=True)
    csr = directory / "server.csr"
    subprocess.run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", files["key"], "-out", csr], check=True, capture_output=True)
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey",
                    files["ca-key"], "-CAcreateserial", "-days", "1", "-extfile", ext,
                    "-out", files["cert"]], check=True, capture_output=True)
    for path in files.values():
        path.chmod(0o644)  # redis-server may run as another user
    return files


async def test_tls_with_ca_file(tmp_path: Path) -> None:
    files = _certificates(tmp_path)
    tls_port = free_port()
    config = {"tls-port": str(tls_port), "tls-cert-file": str(files["cert"]),
              "tls-key-file": str(files["key"]), "tls-ca-cert-file": str(files["ca"]),
              "tls-auth-clients": "no"}
    with LocalRedis(extra_config=config):
        env = {"REDIS_URL": f"rediss://127.0.0.1:{tls_port}/0",
               "REDIS_TLS_CA_FILE": str(files["ca"])}
        (result,) = await scrapes(env, count=1)
        assert result.value("redis_up") == 1
        (unverified,) = await scrapes({"REDIS_URL": f"rediss://127.0.0.1:{tls_port}/0"}, count=1)
        assert unverified.value("redis_up") == 0  # the system CAs do not know ours
