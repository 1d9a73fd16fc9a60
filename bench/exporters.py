"""An exporter under test: how to start it (`Target`), and a started one (`Running`), whose whole
process group ends with `stop()`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import RssSampler

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


@dataclass
class Target:
    """One exporter process under test."""

    name: str
    kind: str  # "postgres" or "redis"
    command: list[str]
    env: dict[str, str]
    port: int
    role: str | None = None  # PostgreSQL role it connects as
    redis_client: str | None = None  # its CLIENT SETNAME
    slow: bool = False  # seconds per scrape: use preset.slow_scrapes
    cwd: Path = ROOT
    note: str = ""


class Running:
    """A started exporter: its process group is ended by `stop()`, whatever happens."""

    def __init__(self, target: Target, log_dir: Path) -> None:
        self.target = target
        self.log_path = log_dir / f"{target.name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_"))}
        env.update(target.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                target.command,
                env=env,
                cwd=target.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_listening()
            self.rss = RssSampler(self.proc.pid)
            self.rss.start()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self) -> None:
        """Wait for the port to accept connections, without a scrape (the first is 'cold')."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.target.port), timeout=1
            ):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.target.name} did not start listening (exit code {self.proc.poll()});"
                    f" log:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if getattr(self, "rss", None) is not None:
            self.rss.stop()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
