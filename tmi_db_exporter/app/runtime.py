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

from tmi_db_exporter.app.target import Target
from tmi_db_exporter.config.settings import Settings
from tmi_db_exporter.config.yamlfile import ConfigError
from tmi_db_exporter.core.selfmetrics import ReloadStatus
from tmi_db_exporter.sources.postgres.queries import QuerySpec

log = logging.getLogger(__name__)

Loader = Callable[[], tuple[Settings, list[QuerySpec]]]
# Scrapes still running on the targets a reload swapped out get this long to finish before
# those targets close (a scrape is normally over in milliseconds; the reload answers after).
RELOAD_DRAIN = 1.5


def build_targets(settings: Settings, specs: list[QuerySpec]) -> tuple[Target, dict[str, Target]]:
    """The default target (top-level postgres/redis) and one per named target."""
    named = {
        name: Target(
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
    return Target(settings, specs), named


class Runtime:
    """What the server serves; swapped whole on a successful reload."""

    def __init__(self, load: Loader, settings: Settings, specs: list[QuerySpec]) -> None:
        self._load = load
        self.settings = settings
        self.default, self.targets = build_targets(settings, specs)
        self.reload_status = ReloadStatus()
        self._lock = asyncio.Lock()
        self._closed = False

    async def reload(self) -> bool:
        """Load everything again; keep the old configuration unless all of it is valid. The
        old targets are closed after the swap, outside the lock, so that a second reload never
        waits for the first one's connections to close."""
        async with self._lock:
            if self._closed:
                return False
            try:
                settings, specs = await asyncio.to_thread(self._load)
                default, targets = build_targets(settings, specs)
            except ConfigError as exc:
                self.reload_status.ok = False
                log.error("reload failed, keeping the previous configuration:\n%s", exc)
                return False
            old = [self.default, *self.targets.values()]
            self.settings, self.default, self.targets = settings, default, targets
            self.reload_status = ReloadStatus(ok=True, loaded_at=time.time())
        await asyncio.gather(*(target.close(drain=RELOAD_DRAIN) for target in old))
        log.info("configuration reloaded")
        return True

    async def close(self) -> None:
        async with self._lock:  # a reload in progress swaps first; none starts afterwards
            self._closed = True
            targets = [self.default, *self.targets.values()]
        await asyncio.gather(*(target.close() for target in targets))
