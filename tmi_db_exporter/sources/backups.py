"""Backup freshness: the newest file under each configured directory or glob.

The guide's backups (pg_dump files, pg_basebackup tarballs, copied RDB snapshots) are files on
disk written by cron jobs; a job that silently stops is found by the age of the newest file, so
"no backup in 26 hours" can page someone. Scanning runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import glob
import os
import time
from dataclasses import dataclass

from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.contract import PartialFailure
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup

METRICS = MetricGroup('backup files (`backup_paths`)', __name__)
FILES = METRICS.define(
    "tmi_db_backup_files", "Backup files found for this path or glob.", labels=("path",)
)
NEWEST_AGE = METRICS.define(
    "tmi_db_backup_newest_age_seconds",
    "Age of the newest backup file, in seconds (absent when there is none).",
    labels=("path",),
)
NEWEST_SIZE = METRICS.define(
    "tmi_db_backup_newest_size_bytes",
    "Size of the newest backup file, in bytes (0 bytes means the dump failed).",
    labels=("path",),
)
NEWEST_TIME = METRICS.define(
    "tmi_db_backup_newest_timestamp_seconds",
    "Modification time of the newest backup file, seconds since the epoch.",
    labels=("path",),
)


@dataclass(frozen=True)
class BackupScan:
    files: int
    newest_mtime: float | None
    newest_size: int | None


def scan(pattern: str) -> BackupScan:
    """Regular files matching `pattern` (a directory means the files directly inside it)."""
    if os.path.isdir(pattern):
        pattern = os.path.join(glob.escape(pattern), "*")
    files = 0
    newest: os.stat_result | None = None
    for path in glob.iglob(pattern, recursive=True):
        try:
            info = os.stat(path)
        except OSError:  # removed by a retention job while we looked
            continue
        if not os.path.isfile(path):
            continue
        files += 1
        if newest is None or info.st_mtime > newest.st_mtime:
            newest = info
    if newest is None:
        return BackupScan(files, None, None)
    return BackupScan(files, newest.st_mtime, newest.st_size)


SCAN_TTL = 30.0  # backups are made hours apart; a directory walk is not free on a slow mount
SCAN_TIMEOUT = 60.0


class BackupSource:
    """The backup-freshness collector over the configured paths."""

    up = True  # files on disk have no "down"; a missing path is 0 files

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        return [
            CachedCollector("backups", self._collect, ttl=SCAN_TTL, timeout=SCAN_TIMEOUT,
                            min_ttl=min_ttl)
        ]

    async def close(self) -> None:
        pass

    async def _collect(self) -> list[Family]:
        families = {d.name: d.family() for d in METRICS.defs}
        errors = []
        for pattern in self.paths:
            label = (("path", pattern),)
            try:
                found = await asyncio.to_thread(scan, pattern)
            except OSError as exc:
                errors.append(f"{pattern}: {exc.strerror}")
                continue
            families[FILES.name].add(found.files, label)
            if found.newest_mtime is not None:
                families[NEWEST_AGE.name].add(max(0.0, time.time() - found.newest_mtime), label)
                families[NEWEST_SIZE.name].add(found.newest_size or 0, label)
                families[NEWEST_TIME.name].add(found.newest_mtime, label)
        if errors:
            raise PartialFailure(list(families.values()), "; ".join(errors))
        return list(families.values())
