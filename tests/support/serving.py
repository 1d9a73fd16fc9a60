"""The exporter as `run` serves it, in-process on a free port (`running`), and its command line
as a subprocess (`run_cli`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tmi_db_exporter.app.runtime import Runtime
from tmi_db_exporter.app.server import serve
from tmi_db_exporter.app.webconfig import WebConfig
from tmi_db_exporter.config.loading import load_settings
from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.demo.servers import free_port
from tmi_db_exporter.sources.postgres.queries import load_specs


@asynccontextmanager
async def running(
    env: dict[str, str],
    flags: dict | None = None,
    config_file: Path | None = None,
    web_config: WebConfig | None = None,
    scheme: str = "http",
) -> AsyncIterator[str]:
    """The real server on a free port, configured as `run` would configure it."""
    port = free_port()
    flags = {"listen_address": "127.0.0.1", "listen_port": str(port), **(flags or {})}

    def load() -> tuple[Settings, list]:
        settings = load_settings(config_file, env, flags)
        return settings, load_specs(settings)

    runtime = Runtime(load, *load())
    stop = asyncio.Event()
    task = asyncio.create_task(serve(runtime, web_config, stop))
    base = f"{scheme}://127.0.0.1:{port}"
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        await task


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m tmi_db_exporter ARGS` with `env` and a PATH, nothing else of this process."""
    return subprocess.run(
        [sys.executable, "-m", "tmi_db_exporter", *args],
        capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
    )
