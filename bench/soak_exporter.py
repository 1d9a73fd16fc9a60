"""The exporter under soak as a real process, and the HTTPS client that scrapes it.

`python -m tmi_db_exporter run --enable-lifecycle --web-config-file web.yml` on a fixed local
port: TLS with a certificate from a throwaway CA (bench/certs.py) and basic auth with a bcrypt
hash, as an operator would set it up. The client trusts that CA and sends the password; every
scrape is parsed with bench/exposition.py (valid text format, no series twice) and must carry
`pg_up` and `redis_up`. Half the scrapes reuse one keep-alive connection (as Prometheus does),
the other half open a new TLS connection each (handshake and authentication every time).

A SIGTERM ends one process; `terminate()` says how long it took, its exit code and whether its
stderr holds a traceback, and the soak starts the next process on the same port. What a process
holds is read from outside with psutil (`held()`): file descriptors, RSS and its TCP sockets by
peer. Python's live objects (gc) cannot be counted across processes; the sockets to each proxy
stand in for the connection objects the in-process soak used to count.
"""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
import bcrypt
import psutil

from bench.certs import make_certs
from bench.exposition import Scrape

ROOT = Path(__file__).resolve().parents[1]  # `python -m tmi_db_exporter` runs from here
SCRAPE_USER = "prometheus"
SCRAPE_PASSWORD = "soak-scrape-pw"
SCRAPE_TIMEOUT = 5.0
STOP_LIMIT = 5.0  # SIGTERM: gone within this long; also the bound of a reload's answer
RELOAD_TIME = "tmi_db_exporter_config_last_reload_success_timestamp_seconds"


@dataclass(frozen=True)
class WebSetup:
    config: Path  # the web config file the exporter reads
    ca: Path  # the CA clients trust

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def write_web_config(directory: Path) -> WebSetup:
    """Certificates for 127.0.0.1 and a web config with TLS and one basic auth user."""
    directory.mkdir(parents=True, exist_ok=True)
    certs = make_certs(directory / "tls", "soak")
    hashed = bcrypt.hashpw(SCRAPE_PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    config = directory / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {certs.cert}\n  key_file: {certs.key}\n"
        f"basic_auth_users:\n  {SCRAPE_USER}: '{hashed}'\n"
    )
    return WebSetup(config, certs.ca)


class ScrapeFailed(Exception):
    """An answer that is not a usable scrape (not 200)."""


class Https:
    """Scrapes, reloads and health checks over HTTPS with basic auth."""

    def __init__(self, port: int, web: WebSetup) -> None:
        self.base = f"https://127.0.0.1:{port}"
        self._context = web.client_context()
        token = base64.b64encode(f"{SCRAPE_USER}:{SCRAPE_PASSWORD}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._kept = self._session(keep_alive=True)
        self._fresh = self._session(keep_alive=False)

    def _session(self, keep_alive: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._context, force_close=not keep_alive)
        return aiohttp.ClientSession(connector=connector, headers=self._headers)

    async def renew(self) -> None:
        """Drop the keep-alive connection (before measuring the exporter, or once a new
        process listens: the old one's connection is dead)."""
        old, self._kept = self._kept, self._session(keep_alive=True)
        await old.close()

    async def close(self) -> None:
        await self._kept.close()
        await self._fresh.close()

    async def scrape(self, fresh: bool) -> Scrape:
        session = self._fresh if fresh else self._kept
        async with session.get(
            self.base + "/metrics",
            headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)},
            timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT + 5),
        ) as response:
            body = await response.text()
        if response.status != 200:
            raise ScrapeFailed(f"HTTP {response.status}: {body[:200]}")
        return Scrape(body)

    async def reload(self) -> int:
        """POST /-/reload; its status (a timeout of STOP_LIMIT raises)."""
        async with self._fresh.post(
            self.base + "/-/reload", timeout=aiohttp.ClientTimeout(total=STOP_LIMIT)
        ) as response:
            await response.read()
            return response.status

    async def healthy(self) -> bool:
        try:
            async with self._fresh.get(
                self.base + "/healthz", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False


@dataclass
class Held:
    """What one exporter process holds, read from outside."""

    fds: int
    rss: int
    sockets: dict[str, int] = field(default_factory=dict)  # TCP sockets by peer


@dataclass
class Exit:
    seconds: float  # from SIGTERM until gone (inf: still there after STOP_LIMIT, killed)
    code: int | None
    traceback: bool  # "Traceback" in its stderr
    stderr_tail: str


class ExporterProcess:
    """One `run` process on `port`; its stderr goes to `log`."""

    def __init__(self, env: dict[str, str], port: int, web: WebSetup, log: Path) -> None:
        self.port = port
        self.log = log
        self._stderr: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "tmi_db_exporter", "run", "--enable-lifecycle",
             "--web-config-file", str(web.config), "--listen-address", "127.0.0.1",
             "--listen-port", str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr, cwd=ROOT,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        )
        self.pid = self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def reload_by_signal(self) -> None:
        os.kill(self.pid, signal.SIGHUP)

    def terminate(self) -> Exit:
        """SIGTERM, and wait (blocking) up to STOP_LIMIT; killed if still there then."""
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.popen.wait(STOP_LIMIT)
            seconds = time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            code, seconds = None, float("inf")
        self._stderr.close()
        err = self.stderr()
        return Exit(seconds, code, "Traceback" in err, err[-2000:])

    def kill(self) -> None:
        """The way out when the soak itself fails: no checks."""
        if self.running:
            self.popen.kill()
            self.popen.wait()
        self._stderr.close()

    def held(self, peers: dict[int, str]) -> Held:
        """File descriptors, RSS, and TCP sockets named by `peers` (remote port -> name);
        `listening` for the listening socket, `scrapers` for accepted ones, else `other`."""
        process = psutil.Process(self.pid)
        sockets: dict[str, int] = {}
        for conn in process.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                name = "listening"
            elif conn.raddr and conn.raddr.port in peers:
                name = peers[conn.raddr.port]
            elif conn.laddr and conn.laddr.port == self.port:
                name = "scrapers"
            else:
                name = "other"
            sockets[name] = sockets.get(name, 0) + 1
        return Held(process.num_fds(), process.memory_info().rss, dict(sorted(sockets.items())))
