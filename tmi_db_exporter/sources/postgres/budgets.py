"""How long each PostgreSQL wait may last and how often its built-in collectors run.

Every wait has a bound; a call site names the policy it follows instead of doing arithmetic on
timeouts, so that the reason for a margin is written once, here.
"""

from __future__ import annotations

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.sources.postgres.queries import QuerySpec

PROBE_REUSE_SECONDS = 1.0  # a probe serves all collectors of a scrape and concurrent scrapes
LOCK_TIMEOUT_MS = 1000  # monitoring must never queue behind an application's lock
UP_TTL_SECONDS = 0  # pg_up is asked afresh at every scrape (min_ttl still shares it)
SETTINGS_TTL_SECONDS = 60  # server settings change only on a reload or restart of the server
# Closing a connection that another task is querying on (or stopping a probe in flight): its
# socket is shut down first, then the query has this long to let go before the close gives up.
BUSY_CLOSE_WAIT = 0.5


def probe_wait(settings: PostgresSettings) -> float:
    """How long a collector waits for the probe. The probe gives up after connect_timeout, but
    psycopg may take a while longer to abandon a hung query (it tries to cancel it on the server
    first): not our wait."""
    return settings.connect_timeout + 0.5


def built_in_collector_timeout(settings: PostgresSettings) -> float:
    """The backstop of pg_up and pg_settings: the probe's wait plus a margin, so that the probe
    decides (pg_up 0) before the collector as a whole is cut off."""
    return settings.connect_timeout + 1


def spec_backstop(spec: QuerySpec) -> float:
    """The backstop of a queries.yaml entry's collector. The entry's own timeout bounds each
    statement; the backstop covers every database of a database-scope entry."""
    return spec.timeout * 4 + 2
