"""The Redis source of one server: its connections and its four collectors, wired together.

Each collector is as expensive as it has to be: `redis` (info.py) on every scrape,
`redis_slowlog` (slowlog.py) every `slowlog_interval`, `redis_posture` (posture.py) every
`posture_interval`, and `redis_key_groups` (census.py) in the background every
`key_census_interval`. They share one connection, one record of the commands the server refuses
(`CommandAccess`) and one up/down state, which the INFO collector keeps up to date; the census
has a connection of its own.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from tmi_db_exporter.config.settings import RedisSettings
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.sources.redis.budgets import (
    EVERY_SCRAPE,
    info_budget,
    posture_budget,
    slowlog_budget,
)
from tmi_db_exporter.sources.redis.census import CensusLookups, KeyCensus, KeyCensusCollector
from tmi_db_exporter.sources.redis.client import CommandAccess, make_client
from tmi_db_exporter.sources.redis.info import InfoCollector, ServerRun
from tmi_db_exporter.sources.redis.key_groups import KeyGroup, parse_key_groups
from tmi_db_exporter.sources.redis.posture import PostureCollector
from tmi_db_exporter.sources.redis.slowlog import SlowlogCollector


class RedisSource:
    """The Redis collectors of one server."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.reachability = Reachability("Redis", settings.describe())
        # A refused command is left alone until the next posture check.
        self.access = CommandAccess(recheck=settings.posture_interval)
        self.client = make_client(settings, "tmi-db-exporter")
        self.census_client: aioredis.Redis | None = None
        self.census: KeyCensusCollector | None = None
        census_lookups: CensusLookups | None = None
        groups = parse_key_groups(settings.key_groups)
        if groups:
            # A connection of its own, with bytes replies for key names, so that scrapes never
            # wait behind the census' pipelines.
            self.census_client = make_client(settings, "tmi-db-exporter-census", decode=False)
            census_lookups = CensusLookups()
            census = self._key_census(self.census_client, groups, census_lookups)
            self.census = KeyCensusCollector(census, self.reachability)
        server_run = ServerRun()
        self.info = InfoCollector(
            self.client, access=self.access, reachability=self.reachability,
            server_run=server_run, census_lookups=census_lookups, selected_db=settings.db,
        )
        self.slowlog = SlowlogCollector(
            self.client, entries=settings.slowlog_entries, access=self.access,
            reachability=self.reachability, server_run=server_run,
        )
        self.posture = PostureCollector(
            self.client, settings, access=self.access, reachability=self.reachability
        )

    def _key_census(
        self, client: aioredis.Redis, groups: list[KeyGroup], lookups: CensusLookups
    ) -> KeyCensus:
        """The census of the database the client selected (a URL may name another than `db`)."""
        settings = self.settings
        db = int(client.connection_pool.connection_kwargs.get("db", 0) or 0)
        return KeyCensus(
            client,
            groups,
            db,
            scan_count=settings.key_census_scan_count,
            pause=settings.key_census_pause,
            memory_samples=settings.key_census_memory_samples,
            ttl_buckets=settings.key_census_ttl_buckets,
            access=self.access,
            lookups=lookups,
        )

    @property
    def up(self) -> bool:
        return self.reachability.up

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        timeout = self.settings.timeout
        collectors = [
            CachedCollector(
                "redis", self.info.collect, ttl=EVERY_SCRAPE, timeout=info_budget(timeout),
                fallback=self.info.fallback, min_ttl=min_ttl,
            ),
            CachedCollector(
                "redis_slowlog", self.slowlog.collect, ttl=self.settings.slowlog_interval,
                timeout=slowlog_budget(timeout), min_ttl=min_ttl,
            ),
            CachedCollector(
                "redis_posture", self.posture.collect, ttl=self.settings.posture_interval,
                timeout=posture_budget(timeout), min_ttl=min_ttl,
            ),
        ]
        if self.census is not None:
            collectors.append(
                CachedCollector(
                    "redis_key_groups", self.census.collect,
                    ttl=self.settings.key_census_interval,
                    timeout=self.settings.key_census_timeout, background=True, min_ttl=min_ttl,
                )
            )
        return collectors

    async def close(self) -> None:
        await self.client.aclose()
        if self.census_client is not None:
            await self.census_client.aclose()
