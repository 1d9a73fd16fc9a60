"""Which databases the database-scope queries run in: found on the server, not configured.

With auto discovery every database that accepts connections (templates aside) is monitored,
narrowed by the include and exclude lists; the main database always is. The list is refreshed
by the probe at most once per discovery interval, so that a new database appears and a dropped
one is forgotten without restarting the exporter.
"""

from __future__ import annotations

import time

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.sources.postgres.connections import Connections
from tmi_db_exporter.sources.postgres.session import Session

_DATABASES_SQL = (
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"
)


class Databases:
    """The monitored databases of one server, main database first when it is not listed."""

    def __init__(self, settings: PostgresSettings, connections: Connections) -> None:
        self.settings = settings
        self.names: list[str] = [settings.database]
        self._connections = connections
        self._discovered_at = float("-inf")  # monotonic
        self._per_database: list[CachedCollector] = []

    def follow(self, collector: CachedCollector) -> None:
        """Collect `collector` afresh whenever the list changes."""
        self._per_database.append(collector)

    async def discover(self, main: Session) -> None:
        """Keep the list of databases current: new ones appear, dropped ones are forgotten."""
        settings = self.settings
        if not settings.auto_discover_databases or (
            time.monotonic() - self._discovered_at < settings.discovery_interval
        ):
            return
        result = await main.query(_DATABASES_SQL, settings.statement_timeout)
        names = [
            row[0]
            for row in result.rows
            if row[0] not in settings.exclude_databases
            and (not settings.include_databases or row[0] in settings.include_databases)
        ]
        if settings.database not in names:
            names.insert(0, settings.database)
        await self._connections.keep_only(names)
        if names != self.names:
            for collector in self._per_database:  # a new database should not wait for a TTL
                collector.invalidate()
        self.names = names
        self._discovered_at = time.monotonic()
