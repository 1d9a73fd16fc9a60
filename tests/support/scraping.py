"""A target built as `run` builds one, scraped in-process (what `/metrics` serves) and read
back through the parser that checks the text format."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bench.exposition import Scrape
from tests.support.servers import FRESH
from tmi_db_exporter.app.target import Target
from tmi_db_exporter.config.loading import load_settings
from tmi_db_exporter.sources.postgres.queries import load_specs

__all__ = ["Scrape", "eventually", "make_target", "scrape", "scrape_once"]

T = TypeVar("T")


def make_target(env: dict[str, str], flags: dict[str, Any] | None = None) -> Target:
    settings = load_settings(env=FRESH | env, flags=flags)
    return Target(settings, load_specs(settings))


async def scrape(exporter: Target, timeout: float = 10.0) -> Scrape:
    blocks = await exporter.scrape(timeout)
    return Scrape(b"".join(b.text for b in blocks).decode())


async def eventually(
    produce: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    attempts: int = 60,
    pause: float = 0.5,
) -> T:
    """Scrape (or look) until `ok` holds (statistics, background work and a server noticing a
    closed socket land a moment later); the last result is returned either way, so the
    caller's assertions say what was missing."""
    for _ in range(attempts - 1):
        result = await produce()
        if ok(result):
            return result
        await asyncio.sleep(pause)
    return await produce()


async def scrape_once(env: dict[str, str], flags: dict[str, Any] | None = None) -> Scrape:
    """A fresh target, one scrape, closed again."""
    exporter = make_target(env, flags)
    try:
        return await scrape(exporter)
    finally:
        await exporter.close()
