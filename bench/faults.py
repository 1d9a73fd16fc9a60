"""Real faults for the fault and soak tests: a TCP proxy that breaks the link on demand, and
what the exporter holds on each server (its connections there, its file descriptors, its memory).

The proxy: a tiny TCP proxy that puts real network faults between the exporter and a server.

The exporter connects to the proxy's port instead of the server's. On demand the proxy

- `cut()`s every connection it carries (both sockets closed at once, as a dropped link or a
  restarted middlebox does, also in the middle of a query),
- `blackhole()`s the link: connections stay open but no byte moves either way (a partition
  without resets; what is held back flows again after `restore()`),
- `reject()`s new connections (accepted, counted, closed at once: a server that hangs up), or
- `refuse()`s them (the listening socket goes away: connection refused).

It counts the connections it accepted and when, which is how a test sees reconnect attempts and
their backoff without reaching into the exporter. It runs on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Literal, Self

import psutil
import psycopg
import redis

from tmi_db_exporter.demo.servers import LocalPostgres, LocalRedis

APPLICATION_NAME = "tmi-db-exporter"

Mode = Literal["pass", "reject", "blackhole"]


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self.mode: Mode = "pass"
        self.accepted: list[float] = []  # time.monotonic() of every accepted connection
        self.cuts = 0  # connections closed by cut()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)
        return self

    @property
    def live(self) -> int:
        """Connections currently carried."""
        return len(self._pairs)

    # --- faults -----------------------------------------------------------------------------

    async def cut(self) -> int:
        """Close every carried connection, both ends, without flushing. Returns how many."""
        pairs, self._pairs = list(self._pairs), set()
        for client, upstream in pairs:
            for writer in (client, upstream):
                _abort(writer)
        self.cuts += len(pairs)
        await asyncio.sleep(0)  # let the pumps notice
        return len(pairs)

    def blackhole(self) -> None:
        """Stop moving bytes on every connection, old and new; nothing is closed."""
        self.mode = "blackhole"
        self._flowing.clear()

    def reject(self) -> None:
        """Accept new connections and hang up at once (existing ones are left alone)."""
        self.mode = "reject"

    async def refuse(self) -> None:
        """Close the listening socket: new connections are refused by the kernel."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restore(self) -> None:
        """Back to a working link (listening again on the same port if refused)."""
        self.mode = "pass"
        self._flowing.set()
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.refuse()
        await self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- plumbing ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted.append(time.monotonic())
        if self.mode == "reject":
            _abort(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        for task in pumps:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pairs.discard(pair)
            for task in pumps:
                task.cancel()
            _abort(writer)
            _abort(up_writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                await self._flowing.wait()
                if writer.is_closing():
                    return
                writer.write(data)
                await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


# --- what the exporter holds ------------------------------------------------------------------


def pg_exporter_connections(server: LocalPostgres) -> dict[str, int]:
    """The exporter's connections on `server`, by database (pg_stat_activity, application_name)."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND pid <> pg_backend_pid() GROUP BY datname",
            (APPLICATION_NAME,),
        ).fetchall()
    return {datname: count for datname, count in rows}


def pg_exporter_pids(server: LocalPostgres) -> set[int]:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APPLICATION_NAME,)
        ).fetchall()
    return {pid for (pid,) in rows}


def redis_exporter_clients(server: LocalRedis) -> dict[str, int]:
    """The exporter's connections on `server`, by client name (CLIENT LIST)."""
    client = redis.Redis(host=server.host, port=server.port, password=server.password)
    try:
        clients = client.client_list()
    finally:
        client.close()
    names: dict[str, int] = {}
    for entry in clients:
        if entry.get("name", "").startswith(APPLICATION_NAME):
            names[entry["name"]] = names.get(entry["name"], 0) + 1
    return names


def open_fds(pid: int | None = None) -> int:
    """File descriptors of process `pid` (default: this one), sockets included."""
    return psutil.Process(pid).num_fds()


def rss_bytes(pid: int | None = None) -> int:
    return psutil.Process(pid).memory_info().rss
