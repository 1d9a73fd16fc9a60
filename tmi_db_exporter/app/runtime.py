"""The live configuration: the default target, the named /probe targets, and reloading them.

A reload (SIGHUP or POST /-/reload) builds everything from the files again and swaps it in only
when all of it is valid; otherwise the last good configuration keeps serving and the failure
shows in `tmi_db_exporter_config_last_reload_successful` and the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tmi_db_exporter.app.target import Exporter
from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.config.yamlfile import ConfigError
from tmi_db_exporter.core.exposition import Block
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.sources.postgres.queries import QuerySpec

log = logging.getLogger(__name__)

METRICS = MetricGroup('exporter', __name__)
RELOAD_OK = METRICS.define(
    "tmi_db_exporter_config_last_reload_successful",
    "1 if the last configuration reload succeeded (or none was asked for), else 0.",
)
RELOAD_TIME = METRICS.define(
    "tmi_db_exporter_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully, seconds since the epoch.",
)

Loader = Callable[[], tuple[Settings, list[QuerySpec]]]


def build_exporters(
    settings: Settings, specs: list[QuerySpec]
) -> tuple[Exporter, dict[str, Exporter]]:
    """The default exporter (top-level postgres/redis) and one per named target."""
    targets = {
        name: Exporter(
            settings.model_copy(
                update={
                    "postgres": target.postgres,
                    "redis": target.redis,
                    "backup_paths": target.backup_paths,
                }
            ),
            specs,
        )
        for name, target in settings.targets.items()
    }
    return Exporter(settings, specs), targets


class Runtime:
    """What the server serves; swapped whole on a successful reload."""

    def __init__(self, load: Loader, settings: Settings, specs: list[QuerySpec]) -> None:
        self._load = load
        self.settings = settings
        self.default, self.targets = build_exporters(settings, specs)
        self.reload_ok = True
        self.reloaded_at = time.time()
        self._lock = asyncio.Lock()

    async def reload(self) -> bool:
        """Load everything again; keep the old configuration unless all of it is valid."""
        async with self._lock:
            try:
                settings, specs = await asyncio.to_thread(self._load)
                default, targets = build_exporters(settings, specs)
            except ConfigError as exc:
                self.reload_ok = False
                log.error("reload failed, keeping the previous configuration:\n%s", exc)
                return False
            old = [self.default, *self.targets.values()]
            self.settings, self.default, self.targets = settings, default, targets
            self.reload_ok, self.reloaded_at = True, time.time()
            for exporter in old:
                await exporter.close()
            log.info("configuration reloaded")
            return True

    def block(self) -> Block:
        ok, at = RELOAD_OK.family(), RELOAD_TIME.family()
        ok.add(1 if self.reload_ok else 0)
        at.add(self.reloaded_at)
        return Block([ok, at])

    async def close(self) -> None:
        for exporter in [self.default, *self.targets.values()]:
            await exporter.close()

