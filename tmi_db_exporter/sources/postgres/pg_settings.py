"""`pg_settings_<name>`: every numeric or boolean server setting, as postgres_exporter has them.

Values are converted to base units (seconds, bytes) with postgres_exporter's names and
suffixes, so that dashboards and alert rules written for it work unchanged.
"""

from __future__ import annotations

from tmi_db_exporter.config.settings import PostgresSettings
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.sources.postgres.connections import Connections
from tmi_db_exporter.sources.postgres.probe import Probe
from tmi_db_exporter.sources.postgres.queries import QuerySpec

# The exporter sets these for its own session, so pg_settings would show our values, not the
# server's: they are left out rather than reported wrongly.
_SESSION_SETTINGS = ("statement_timeout", "lock_timeout", "default_transaction_read_only")
_SETTINGS_SQL = (
    "SELECT name, setting, coalesce(unit, ''), vartype, short_desc FROM pg_settings"
    " WHERE vartype IN ('bool', 'integer', 'real')"
    f" AND name NOT IN ({', '.join(repr(n) for n in _SESSION_SETTINGS)})"
)

# unit -> (factor to the base unit, metric name suffix), as postgres_exporter converts them
_SETTING_UNITS: dict[str, tuple[float, str]] = {
    "": (1, ""),
    "ms": (0.001, "_seconds"),
    "s": (1, "_seconds"),
    "min": (60, "_seconds"),
    "h": (3600, "_seconds"),
    "d": (86400, "_seconds"),
    "B": (1, "_bytes"),
    "kB": (1024, "_bytes"),
    "8kB": (8192, "_bytes"),
    "16kB": (16384, "_bytes"),
    "32kB": (32768, "_bytes"),
    "MB": (1024**2, "_bytes"),
    "16MB": (16 * 1024**2, "_bytes"),
    "32MB": (32 * 1024**2, "_bytes"),
    "64MB": (64 * 1024**2, "_bytes"),
    "GB": (1024**3, "_bytes"),
    "TB": (1024**4, "_bytes"),
}


def setting_value(setting: str, unit: str, vartype: str) -> tuple[float, str] | None:
    """(value in base units, name suffix) of a pg_settings row; -1 ("off") stays -1."""
    if vartype == "bool":
        return (1.0 if setting == "on" else 0.0), ""
    if unit not in _SETTING_UNITS:
        return None
    try:
        raw = float(setting)
    except ValueError:
        return None
    factor, suffix = _SETTING_UNITS[unit]
    return (raw if raw == -1 else raw * factor), suffix


class ServerSettings:
    """The pg_settings collector of one server."""

    def __init__(
        self,
        settings: PostgresSettings,
        specs: list[QuerySpec],
        probe: Probe,
        connections: Connections,
    ) -> None:
        self._statement_timeout = settings.statement_timeout
        self._specs = specs
        self._probe = probe
        self._connections = connections

    async def collect(self) -> list[Family]:
        """Every numeric server setting as pg_settings_<name>, in base units, named as
        postgres_exporter names them; names a queries.yaml entry already makes are left out."""
        await self._probe.require_up()
        main = await self._connections.main_session()
        result = await main.query(_SETTINGS_SQL, self._statement_timeout)
        taken = {spec.metric_name(m) for spec in self._specs for m in spec.metrics}
        families = []
        for name, setting, unit, vartype, description in result.rows:
            converted = setting_value(setting, unit, vartype)
            if converted is None:
                continue
            value, suffix = converted
            metric = "pg_settings_" + name.replace(".", "_") + suffix
            if metric in taken:
                continue
            family = Family(metric, f"Server setting {name}: {description}")
            family.add(value)
            families.append(family)
        return families
