"""The `redis_slowlog` collector (every `slowlog_interval`): SLOWLOG LEN/GET and LATENCY LATEST.

The slowlog's command label is only ever a name that INFO commandstats lists, never an argument
(a key, or a renamed command's new name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from tmi_db_exporter.core.contract import Skipped, Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.sources.redis.client import CommandAccess
from tmi_db_exporter.sources.redis.info import ServerRun, parse_info

METRICS = MetricGroup("Redis SLOWLOG, LATENCY LATEST", __name__)
SLOWLOG_LENGTH = METRICS.define("redis_slowlog_length", "Entries in the slowlog now.")
SLOWLOG_LAST_ID = METRICS.define(
    "redis_slowlog_last_id", "ID of the newest slowlog entry (0: none)."
)
SLOWLOG_ENTRIES = METRICS.define(
    "redis_slowlog_entries_total",
    "Slowlog entries written since the server started (survives SLOWLOG RESET).",
    "counter",
)
LAST_SLOW_EXECUTION = METRICS.define(
    "redis_last_slow_execution_duration_seconds",
    "Duration of the newest slowlog entry, in seconds (0: none).",
)
SLOWLOG_RECENT_MAX = METRICS.define(
    "redis_slowlog_recent_max_duration_seconds",
    "Longest duration of the command among the newest slowlog entries (`slowlog_entries` of "
    "them), in seconds; by command name, never arguments.",
    labels=("cmd",),
)
SLOWLOG_RECENT_ENTRIES = METRICS.define(
    "redis_slowlog_recent_entries",
    "Entries of the command among the newest slowlog entries (`slowlog_entries` of them).",
    labels=("cmd",),
)
LATENCY_SPIKE_LAST = METRICS.define(
    "redis_latency_spike_last",
    "When the latest latency spike of the event happened, seconds since the epoch "
    "(LATENCY LATEST; needs latency-monitor-threshold).",
    labels=("event_name",),
)
LATENCY_SPIKE_DURATION = METRICS.define(
    "redis_latency_spike_duration_seconds",
    "Duration of the latest latency spike of the event, in seconds.",
    labels=("event_name",),
)


def slowlog_command(args: Sequence[str], known: set[str]) -> str:
    """The command of a slowlog entry as a label: a name INFO commandstats knows (`config|get`,
    `debug`), else `other`. Arguments never pass: a renamed command's new name or a key is not
    a commandstats name."""
    if not args:
        return "other"
    first = str(args[0]).lower()
    if len(args) > 1:
        sub = f"{first}|{str(args[1]).lower()}"
        if sub in known:
            return sub
    return first if first in known else "other"


class SlowlogCollector:
    """`redis_slowlog`: the newest slowlog entries by command, and the latest latency spikes."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        entries: int,
        access: CommandAccess,
        reachability: Reachability,
        server_run: ServerRun,
    ) -> None:
        self.client = client  # from make_client: raw replies
        self.entries = entries  # newest SLOWLOG entries read (`slowlog_entries`)
        self.access = access
        self.reachability = reachability
        self.server_run = server_run  # kept up to date by the INFO collector
        self._seen: tuple[str, int] | None = None  # run_id, entries since start

    async def collect(self) -> list[Family]:
        if self.reachability.known_down:
            raise Unavailable
        want_slowlog, want_latency = self.access.may_try("SLOWLOG"), self.access.may_try("LATENCY")
        if not (want_slowlog or want_latency):
            raise Skipped("SLOWLOG and LATENCY are refused by the server")
        replies = await self._read(want_slowlog, want_latency)
        families: list[Family] = []
        if want_slowlog:
            families += self._slowlog_reply(replies["length"], replies["entries"],
                                            replies.get("stats"))
        if want_latency:
            families += self._latency_reply(replies["latest"])
        return families

    async def _read(self, want_slowlog: bool, want_latency: bool) -> dict[str, Any]:
        """Every reply in one pipelined round trip; a refused command's reply is its error."""
        calls: list[tuple[str, tuple[Any, ...]]] = []
        if want_slowlog:
            calls += [("length", ("SLOWLOG", "LEN")),
                      ("entries", ("SLOWLOG", "GET", self.entries))]
            # The command names that tell a name from an argument (without INFO: all `other`).
            if self.access.may_try("INFO"):
                calls.append(("stats", ("INFO", "commandstats")))
        if want_latency:
            calls.append(("latest", ("LATENCY", "LATEST")))
        pipe = self.client.pipeline(transaction=False)
        for _, args in calls:
            pipe.execute_command(*args)
        try:
            return dict(zip([name for name, _ in calls],
                            await pipe.execute(raise_on_error=False), strict=True))
        except (RedisError, OSError):
            raise Unavailable from None

    def _slowlog_reply(self, length: Any, entries: Any, stats: Any) -> list[Family]:
        error = next((r for r in (length, entries) if isinstance(r, ResponseError)), None)
        self.access.report("SLOWLOG", error)
        if isinstance(stats, ResponseError):
            self.access.report("INFO", stats)
        if error is not None:
            return []
        known = {
            field[len("cmdstat_"):]
            for field in (parse_info(stats) if isinstance(stats, str) else {})
            if field.startswith("cmdstat_")
        }
        return self._slowlog_families(int(length), entries, known)

    def _latency_reply(self, latest: Any) -> list[Family]:
        if isinstance(latest, ResponseError):
            self.access.report("LATENCY", latest)
            return []
        self.access.report("LATENCY", None)
        return _latency_families(latest)

    def _slowlog_families(self, length: int, entries: list[Any], known: set[str]) -> list[Family]:
        size, last_id, seen = (
            SLOWLOG_LENGTH.family(), SLOWLOG_LAST_ID.family(), SLOWLOG_ENTRIES.family()
        )
        last = LAST_SLOW_EXECUTION.family()
        size.add(length)
        newest = entries[0] if entries else None
        last_id.add(int(newest[0]) if newest else 0)
        last.add(int(newest[2]) / 1e6 if newest else 0)
        # IDs count up from 0 since start and SLOWLOG RESET does not reset them; an empty log
        # of the same server run keeps the count seen before.
        run_id = self.server_run.run_id
        if newest:
            self._seen = (run_id, int(newest[0]) + 1)
        elif self._seen is not None and self._seen[0] != run_id:
            self._seen = None
        seen.add(self._seen[1] if self._seen else 0)
        longest, count = SLOWLOG_RECENT_MAX.family(), SLOWLOG_RECENT_ENTRIES.family()
        for entry in entries:
            label = (("cmd", slowlog_command(entry[3], known)),)
            duration = int(entry[2]) / 1e6
            longest.add(max(duration, longest.samples.get(label, 0.0)), label)
            count.add(count.samples.get(label, 0) + 1, label)
        return [size, last_id, seen, last, longest, count]


def _latency_families(latest: list[Any]) -> list[Family]:
    when, duration = LATENCY_SPIKE_LAST.family(), LATENCY_SPIKE_DURATION.family()
    for event in latest:
        if len(event) >= 3:
            label = (("event_name", str(event[0])),)
            when.add(float(event[1]), label)
            duration.add(float(event[2]) / 1e3, label)
    return [when, duration]
