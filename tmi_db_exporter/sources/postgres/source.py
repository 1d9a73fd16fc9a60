"""PostgreSQL source: the collectors of one server, wired to its connections and probe.

Every collector shares the server's connections (`connections.py`, one per database), the probe
that decides `pg_up` (`probe.py`) and the list of monitored databases (`discovery.py`); the
queries.yaml entries run through `specs.py`, the server settings through `pg_settings.py`.
"""

from __future__ import annotations

from functools import partial

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.sources.postgres.budgets import (
    SETTINGS_TTL_SECONDS,
    UP_TTL_SECONDS,
    built_in_collector_timeout,
    spec_backstop,
)
from tmi_db_exporter.sources.postgres.connections import Connections
from tmi_db_exporter.sources.postgres.discovery import Databases
from tmi_db_exporter.sources.postgres.pg_settings import ServerSettings
from tmi_db_exporter.sources.postgres.probe import Probe
from tmi_db_exporter.sources.postgres.queries import QuerySpec
from tmi_db_exporter.sources.postgres.specs import SpecRunner


class PostgresSource:
    """All PostgreSQL collectors of one server."""

    def __init__(self, settings: PostgresSettings, specs: list[QuerySpec]) -> None:
        self.settings = settings
        self.specs = specs
        self.connections = Connections(settings)
        self.databases = Databases(settings, self.connections)
        self.probe = Probe(settings, self.connections, self.databases)
        self.spec_runner = SpecRunner(settings, self.probe, self.connections, self.databases)
        self.server_settings = ServerSettings(settings, specs, self.probe, self.connections)

    @property
    def up(self) -> bool:
        return self.probe.up

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        timeout = built_in_collector_timeout(self.settings)
        collectors = [
            CachedCollector(
                "pg_up", self.probe.collect_up, ttl=UP_TTL_SECONDS, timeout=timeout,
                fallback=self.probe.up_fallback, min_ttl=min_ttl,
            ),
            CachedCollector(
                "pg_settings", self.server_settings.collect, ttl=SETTINGS_TTL_SECONDS,
                timeout=timeout, min_ttl=min_ttl,
            ),
        ]
        for spec in self.specs:
            collector = CachedCollector(
                f"pg:{spec.name}", partial(self.spec_runner.collect, spec), spec.ttl,
                spec_backstop(spec), background=spec.background, min_ttl=min_ttl,
            )
            collectors.append(collector)
            if spec.scope == "database":
                self.databases.follow(collector)
        return collectors

    async def close(self) -> None:
        await self.probe.close()
        await self.connections.close()
