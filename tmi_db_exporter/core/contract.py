"""What a source is to the rest of the exporter, and how a collector says it has nothing.

A source (one PostgreSQL server, one Redis server, the backup files) knows whether its server
is up, hands out the cached collectors that read it, and closes its connections. Collectors
raise the exceptions below instead of returning half-truths; the cache turns them into error
counters, skip reasons and `*_up 0`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tmi_db_exporter.core.cache import CachedCollector
    from tmi_db_exporter.core.exposition import Family


class Source(Protocol):
    """One monitored thing: PostgreSQL, Redis or the backup files of one target."""

    @property
    def up(self) -> bool:
        """Whether the server answered at the last look (always true for files)."""
        ...

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        """The source's collectors; results younger than `min_ttl` are always shared."""
        ...

    async def close(self) -> None:
        """Stop background work and close every connection, within a bounded time."""
        ...


class Unavailable(Exception):
    """The source is down; its `*_up` metric says so, the collector quietly has nothing."""


class Skipped(Exception):
    """The collector cannot run on this server (missing extension, no SQL for its version).
    `reason` becomes a label; `hint` (what to do about it) goes to the log, once."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.hint = hint


class PartialFailure(Exception):
    """Some of the work failed (e.g. one database of several): keep what was collected."""

    def __init__(self, families: list[Family], message: str) -> None:
        super().__init__(message)
        self.families = families
