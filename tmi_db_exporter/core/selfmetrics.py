"""The exporter's own health metrics: one series per collector, and the configuration reload.

They are few (a handful per collector) and change on every scrape, so they are the only block
rendered each time; everything else comes from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tmi_db_exporter import __version__
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.exposition import Block
from tmi_db_exporter.core.metrics import MetricGroup

METRICS = MetricGroup('exporter', __name__)
BUILD_INFO = METRICS.define(
    "tmi_db_exporter_build_info", "Version of tmi-db-exporter; always 1.", labels=("version",)
)
DURATION = METRICS.define(
    "tmi_db_exporter_collector_duration_seconds",
    "How long the collector's last run took, in seconds.",
    labels=("collector",),
)
ERRORS = METRICS.define(
    "tmi_db_exporter_collector_errors_total",
    "Runs of the collector that failed (query error, timeout, partial failure).",
    "counter",
    labels=("collector",),
)
DEADLINE_MISSES = METRICS.define(
    "tmi_db_exporter_collector_deadline_misses_total",
    "Scrapes that could not wait for this collector and served its previous result.",
    "counter",
    labels=("collector",),
)
LAST_SUCCESS = METRICS.define(
    "tmi_db_exporter_collector_last_success_timestamp_seconds",
    "When the collector last succeeded, seconds since the epoch (0 = never).",
    labels=("collector",),
)
SERIES = METRICS.define(
    "tmi_db_exporter_collector_series",
    "Series in the collector's current result.",
    labels=("collector",),
)
AGE = METRICS.define(
    "tmi_db_exporter_collector_age_seconds",
    "Age of the result served for this collector, in seconds (absent when it has none).",
    labels=("collector",),
)
SKIPPED = METRICS.define(
    "tmi_db_exporter_query_skipped",
    "1 when a collector cannot run on this server, with the reason (e.g. missing extension).",
    labels=("collector", "reason"),
)

RELOAD_OK = METRICS.define(
    "tmi_db_exporter_config_last_reload_successful",
    "1 if the last configuration reload succeeded (or none was asked for), else 0.",
)
RELOAD_TIME = METRICS.define(
    "tmi_db_exporter_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully, seconds since the epoch.",
)


@dataclass(slots=True)
class ReloadStatus:
    """The outcome of the last configuration load, kept by the serving process."""

    ok: bool = True
    loaded_at: float = field(default_factory=time.time)  # wall clock of the last good load


def render(collectors: Iterable[CachedCollector], reload: ReloadStatus | None = None) -> Block:
    """`reload`: the serving process' reload status (absent for `once`, which never reloads)."""
    families = {d.name: d.family() for d in METRICS.defs}
    if reload is None:
        del families[RELOAD_OK.name], families[RELOAD_TIME.name]
    else:
        families[RELOAD_OK.name].add(1 if reload.ok else 0)
        families[RELOAD_TIME.name].add(reload.loaded_at)
    families[BUILD_INFO.name].add(1, (("version", __version__),))
    for c in collectors:
        label = (("collector", c.name),)
        families[DURATION.name].add(c.duration, label)
        families[ERRORS.name].add(c.errors_total, label)
        families[DEADLINE_MISSES.name].add(c.deadline_misses_total, label)
        families[LAST_SUCCESS.name].add(c.last_success, label)
        families[SERIES.name].add(c.series, label)
        age = c.age()
        if age is not None:
            families[AGE.name].add(age, label)
        if c.skipped:
            families[SKIPPED.name].add(1, (*label, ("reason", c.skipped)))
    return Block(families.values())
