"""The exporter's own health metrics, one series per collector, rendered on every scrape.

They are few (a handful per collector) and change on every scrape, so they are the only block
rendered each time; everything else comes from the cache.
"""

from __future__ import annotations

from collections.abc import Iterable

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



def render(collectors: Iterable[CachedCollector]) -> Block:
    families = {d.name: d.family() for d in METRICS.defs}
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
