"""What every throwaway server shares: a temp dir, a child in its own session, readiness
polling, cleanup, and the unprivileged user a server runs as when we are root.

Every server listens on 127.0.0.1 only and is removed again by ``stop()`` (or, if the caller
forgets, by an ``atexit`` hook).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

LOCALHOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
SERVER_USER_FALLBACK = "tmi-exporter-pg"


def free_port() -> int:
    """Return a currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


@functools.cache
def unprivileged_user() -> pwd.struct_passwd | None:
    """The user PostgreSQL runs as: None when we are not root (run directly)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVER_USER_FALLBACK):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER_FALLBACK,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # a concurrent run may have created it; only the lookup matters
        return pwd.getpwnam(SERVER_USER_FALLBACK)
    except KeyError:
        raise RuntimeError(
            f"could not create system user {SERVER_USER_FALLBACK}: {result.stderr.strip()}"
        ) from None


def as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """Popen keyword arguments that drop privileges to ``user`` in the child."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


# ------------------------------------------------------------------- lifecycle

_live_servers: set[LocalServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Stop servers whose owner forgot to, so no process or temp dir survives us."""
    for server in list(_live_servers):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            server.stop()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log file)"


class LocalServer:
    """Shared lifecycle: temp dir, child in its own session, readiness polling, cleanup.

    Subclasses provide the files (``_prepare``), the command line and the
    readiness check. ``kill``/``start_again`` keep the temp dir so tests can
    simulate an outage; ``stop`` removes everything.
    """

    name = "server"
    host = LOCALHOST
    stop_signal = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self.port: int = port if port is not None else free_port()
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # hooks -----------------------------------------------------------------
    def _prepare(self) -> None:
        """Create config/data files in ``self.base_dir`` (once per ``start``)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """Run once the freshly prepared server accepts connections."""

    def _temp_parent(self) -> str | None:
        """Where to create the temp dir (None: the tempfile default)."""
        return None

    @property
    def log_file(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / f"{self.name}.log"

    # public ----------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """PID of the server process (PostgreSQL: the postmaster), None if down."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        """Create a fresh temp dir, start the server and wait until it is usable."""
        if self.base_dir is not None:
            raise RuntimeError(f"{self.name} already started in {self.base_dir}")
        self.base_dir = Path(tempfile.mkdtemp(prefix=f"tmi-{self.name}-", dir=self._temp_parent()))
        _live_servers.add(self)
        try:
            self._prepare()
            self.start_again()
            self._after_first_start()
        except BaseException:
            self.stop()
            raise
        return self

    def start_again(self) -> None:
        """Start the process on the existing temp dir and port (after ``kill``)."""
        if self.base_dir is None:
            raise RuntimeError(f"{self.name} was never started (or already stopped)")
        if self._proc is not None:
            return
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,
                **self._popen_kwargs(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._is_ready():
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = f"exited with code {code}" if code is not None else "timed out"
                log_tail = _tail(self.log_file)
                self.kill()
                raise RuntimeError(
                    f"{self.name} on port {self.port} {why} while starting; log tail:\n{log_tail}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """Shut the server process down but keep its data (simulates an outage)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.send_signal(self.stop_signal)
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # The leader is not reaped yet, so its process group id is still ours.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self) -> None:
        """Stop the process and start it again on the same port and data."""
        self.kill()
        self.start_again()

    def stop(self) -> None:
        """Stop the process and delete the temp dir. Safe to call repeatedly."""
        self.kill()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir)
            self.base_dir = None
        _live_servers.discard(self)

    def __enter__(self) -> Self:
        return self if self.base_dir is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ------------------------------------------------------------------ PostgreSQL
