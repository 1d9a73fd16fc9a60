"""The configured sources and one scrape over all their collectors.

Data flows one way: settings and specs build the sources, the sources hand out cached
collectors, and a scrape gathers their rendered blocks within a deadline. The HTTP server and
the `once` command both scrape through here.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.config.yamlfile import ConfigError, Problem
from tmi_db_exporter.core import selfmetrics
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.exposition import Block
from tmi_db_exporter.sources.backups import BackupSource
from tmi_db_exporter.sources.postgres.queries import QuerySpec, default_queries_path, load_queries

if TYPE_CHECKING:
    from tmi_db_exporter.sources.postgres.source import PostgresSource
    from tmi_db_exporter.sources.redis.source import RedisSource


def load_specs(settings: Settings) -> list[QuerySpec]:
    """The queries the settings ask for: built-in (or replaced) plus extra files, minus those
    turned off, plus the off-by-default ones turned on."""
    main = settings.queries_file or default_queries_path()
    specs = load_queries([main, *settings.extra_queries_files])
    if settings.postgres is None:
        return specs
    enable, disable = settings.postgres.enable_queries, settings.postgres.disable_queries
    unknown = sorted(set(enable + disable) - {s.name for s in specs})
    if unknown:
        raise ConfigError(
            [Problem("postgres.enable_queries/disable_queries", "", f"no such query: {n}")
             for n in unknown]
        )
    return [s for s in specs if (s.enabled or s.name in enable) and s.name not in disable]


class Exporter:
    def __init__(self, settings: Settings, specs: list[QuerySpec]) -> None:
        self.settings = settings
        # Each database's client library is imported only when that database is monitored:
        # psycopg and redis-py cost about 10 and 7 MB of memory each.
        self.postgres: PostgresSource | None = None
        self.redis: RedisSource | None = None
        if settings.postgres:
            from tmi_db_exporter.sources.postgres.source import PostgresSource

            self.postgres = PostgresSource(settings.postgres, specs)
        if settings.redis:
            from tmi_db_exporter.sources.redis.source import RedisSource

            self.redis = RedisSource(settings.redis)
        self.backups = BackupSource(settings.backup_paths) if settings.backup_paths else None
        self.collectors: list[CachedCollector] = []
        for source in self.sources:
            self.collectors += source.collectors(settings.min_ttl)

    @property
    def sources(self) -> list[PostgresSource | RedisSource | BackupSource]:
        return [s for s in (self.postgres, self.redis, self.backups) if s is not None]

    async def scrape(self, timeout: float) -> list[Block]:
        """Every collector's block (fresh or cached) within `timeout` seconds, then self metrics."""
        deadline = time.monotonic() + timeout
        blocks = await asyncio.gather(*(c.result(deadline) for c in self.collectors))
        return [b for b in blocks if b is not None] + [selfmetrics.render(self.collectors)]

    def all_up(self) -> bool:
        return all(source.up for source in self.sources)

    async def close(self) -> None:
        for collector in self.collectors:
            await collector.close()
        for source in self.sources:
            await source.close()
