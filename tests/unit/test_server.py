"""The command line without a database server: nothing to monitor, and a listen address that
cannot be used, each one clear line (the server against real databases:
tests/integration/test_server.py)."""

from __future__ import annotations

import socket

import pytest

from tests.support.serving import run_cli
from tmi_db_exporter.demo.servers import free_port


@pytest.mark.parametrize("command", ["run", "once", "check-config"])
def test_nothing_configured_is_a_clear_error(command: str) -> None:
    result = run_cli(command, env={})
    assert result.returncode == 2
    assert "nothing to monitor" in result.stderr


def test_a_bad_listen_address_or_a_port_in_use_is_one_clear_line() -> None:
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(free_port())}
    wrong = run_cli("run", "--listen-address", "127.0.0.1:19530", env=env)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].startswith(
        "error: cannot listen on 127.0.0.1:19530 port 9432:"
    ), wrong.stderr
    assert "Traceback" not in wrong.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("run", "--listen-address", "127.0.0.1", "--listen-port", str(port), env=env)
    assert busy.returncode == 2
    assert f"error: cannot listen on 127.0.0.1 port {port}: Address already in use" in busy.stderr
    assert "Traceback" not in busy.stderr
