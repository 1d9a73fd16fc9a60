"""One target: the sources of one PostgreSQL / Redis / backup-files set, and a scrape over them.

Data flows one way: settings and specs build the sources, the sources hand out cached
collectors, and a scrape gathers their rendered blocks within a deadline. The HTTP server
(`/metrics` and each `/probe` target) and the `once` command all scrape through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.core import selfmetrics
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.contract import Source
from tmi_db_exporter.core.exposition import Block
from tmi_db_exporter.sources.backups import BackupSource
from tmi_db_exporter.sources.postgres.queries import QuerySpec

log = logging.getLogger(__name__)

# Closing the connections of a source, then waiting for a collection that was stuck in a
# command on one of them: each bounded, after the collectors' own CLOSE_WAIT (core/cache.py).
SOURCE_CLOSE_WAIT = 1.0
LEFTOVER_WAIT = 0.5


class Target:
    """The sources of one target and their collectors."""

    def __init__(self, settings: Settings, specs: list[QuerySpec]) -> None:
        self.settings = settings
        self.sources: list[Source] = []
        # Each database's client library is imported only when that database is monitored:
        # psycopg and redis-py cost about 10 and 7 MB of memory each.
        if settings.postgres:
            from tmi_db_exporter.sources.postgres.source import PostgresSource

            self.sources.append(PostgresSource(settings.postgres, specs))
        if settings.redis:
            from tmi_db_exporter.sources.redis.source import RedisSource

            self.sources.append(RedisSource(settings.redis))
        if settings.backup_paths:
            self.sources.append(BackupSource(settings.backup_paths))
        self._scrapes = 0  # in flight
        self._idle = asyncio.Event()
        self._idle.set()
        self.collectors: list[CachedCollector] = []
        for source in self.sources:
            self.collectors += source.collectors(settings.min_ttl)

    async def scrape(
        self,
        timeout: float,
        reload: selfmetrics.ReloadStatus | None = None,
        *,
        complete: bool = False,
    ) -> list[Block]:
        """Every collector's block (fresh or cached) within `timeout` seconds, then the
        exporter's own metrics. `complete` (for `once`): background collectors are waited for
        too, until the deadline, instead of serving whatever they have."""
        deadline = time.monotonic() + timeout
        self._scrapes += 1
        self._idle.clear()
        try:
            blocks = await asyncio.gather(
                *((c.first_result if complete else c.result)(deadline) for c in self.collectors)
            )
        finally:
            self._scrapes -= 1
            if not self._scrapes:
                self._idle.set()
        return [b for b in blocks if b is not None] + [
            selfmetrics.render(self.collectors, reload)
        ]

    def all_up(self) -> bool:
        return all(source.up for source in self.sources)

    async def close(self, drain: float = 0.0) -> None:
        """Stop every collector, then close the connections, each step bounded: a collection
        stuck in a command whose cancellation a library swallowed ends once its connection is
        closed under it. `drain`: first give scrapes in flight up to this long to finish (a
        reload swapped this target out; they should still get a whole answer)."""
        if drain > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain)
        stuck = await asyncio.gather(*(c.close() for c in self.collectors))
        for source in self.sources:
            try:
                async with asyncio.timeout(SOURCE_CLOSE_WAIT):
                    await source.close()
            except TimeoutError:
                log.warning("closing the connections of %s took over %gs; left to the OS",
                            type(source).__name__, SOURCE_CLOSE_WAIT)
        leftovers = {task for task in stuck if task is not None}
        if leftovers:
            _, pending = await asyncio.wait(leftovers, timeout=LEFTOVER_WAIT)
            for task in pending:
                log.error("%s still runs after its connections were closed", task.get_name())
