"""A throwaway redis-server (from PATH) with a generated config file."""

from __future__ import annotations

import shutil
import socket
from urllib.parse import quote

from tmi_db_exporter.demo.servers.process import LOCALHOST, LocalServer


def _redis_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LocalRedis(LocalServer):
    """A throwaway redis-server (from PATH) with a generated config file."""

    name = "redis"

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        super().__init__(port)
        self.password = password
        self.extra_config = dict(extra_config or {})

    @property
    def url(self) -> str:
        """redis-py URL, password included (percent-encoded)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def _prepare(self) -> None:
        assert self.base_dir is not None
        if shutil.which("redis-server") is None:
            raise RuntimeError(
                "redis-server not found on PATH; install the "
                "`redis-server` package (apt-get install redis-server)"
            )
        config = {
            "port": str(self.port),
            "bind": LOCALHOST,
            "dir": _redis_quote(str(self.base_dir)),
            "daemonize": "no",
            "save": '""',  # no RDB snapshots unless extra_config asks for them
            "appendonly": "no",
            "logfile": _redis_quote(str(self.log_file)),
        }
        if self.password:
            config["requirepass"] = _redis_quote(self.password)
        config.update(self.extra_config)  # values are written verbatim
        (self.base_dir / "redis.conf").write_text(
            "".join(f"{key} {value}\n" for key, value in config.items())
        )

    def _command(self) -> list[str]:
        assert self.base_dir is not None
        return ["redis-server", str(self.base_dir / "redis.conf")]

    def _is_ready(self) -> bool:
        """PING over a raw socket; NOAUTH also proves the server is serving."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))
