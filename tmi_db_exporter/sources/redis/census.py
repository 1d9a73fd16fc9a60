"""Key census: how many keys each TMI key pattern holds, how many never expire, how much memory
they take and when they expire.

The operations guide counts keys per pattern with `redis-cli --scan --pattern ... | wc -l` and
clears sessions without a TTL by hand; this module does the same continuously, without ever
blocking the server that TMI depends on:

- one incremental SCAN pass with a small COUNT classifies every key into the first group whose
  glob matches (Redis MATCH syntax, tested here on the client, so one pass serves all groups);
- the TTLs of each SCAN batch are read in one pipelined round trip of PEXPIRETIME commands
  (PTTL before Redis 7) and one TIME, which Redis runs and times one by one (each is O(1)),
  unlike a Lua script that would hold the server for the whole batch; no KEYS, no Lua;
- a TTL lookup counts as a keyspace hit on the server, which would drown the guide's hit rate
  (a million lookups per census); the census therefore uses a command that applications hardly
  use, publishes it with its misses (`CensusLookups`), and the INFO collector subtracts that
  command's commandstats calls from the hits (see `without_census_lookups`), exactly, since
  INFO is one snapshot;
- memory is estimated from a uniform sample (reservoir sampling) of MEMORY USAGE per group,
  and the sample size is exported next to the estimate;
- a pause between steps leaves the server to its clients; the census runs in the background
  (`CachedCollector(background=True)`) and scrapes only read the last finished result.

Key names are never kept beyond the batch that classifies them and never appear in a metric,
a log line or an error message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError, ResponseError

from tmi_db_exporter.core.contract import PartialFailure, Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricGroup
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.core.stopping import check_stop
from tmi_db_exporter.sources.redis.client import CommandAccess, safe_error
from tmi_db_exporter.sources.redis.key_groups import UNCLASSIFIED, KeyGroup, classify

_GROUP = ("db", "key_group")
METRICS = MetricGroup("Redis key census (background SCAN)", __name__)
KEY_GROUP_COUNT = METRICS.define(
    "redis_key_group_count", "Keys in the group at the last key census.", labels=_GROUP
)
KEY_GROUP_NO_TTL = METRICS.define(
    "redis_key_group_keys_without_ttl",
    "Keys of the group without an expiry (a session without TTL is a leak).",
    labels=_GROUP,
)
KEY_GROUP_TTL = METRICS.define(
    "redis_key_group_keys_by_ttl",
    "Keys of the group whose remaining TTL is at most `le` seconds, cumulative like histogram "
    "buckets; `le=\"+Inf\"` counts every key of the group that has a TTL.",
    labels=(*_GROUP, "le"),
)
KEY_GROUP_MEMORY = METRICS.define(
    "redis_key_group_memory_usage_bytes",
    "Estimated memory of the group's keys, in bytes: mean MEMORY USAGE of a uniform sample "
    "times the key count.",
    labels=_GROUP,
)
KEY_GROUP_MEMORY_SAMPLES = METRICS.define(
    "redis_key_group_memory_sampled_keys",
    "Keys of the group whose MEMORY USAGE the estimate is based on (the sample size).",
    labels=_GROUP,
)
CENSUS_DURATION = METRICS.define(
    "redis_key_census_duration_seconds", "How long the last finished key census took, in seconds."
)
CENSUS_FINISHED = METRICS.define(
    "redis_key_census_last_finished_timestamp_seconds",
    "When the last key census finished, seconds since the epoch.",
)
CENSUS_KEYS = METRICS.define(
    "redis_key_census_keys_scanned",
    "Keys the last key census looked at (SCAN may return a key twice while the server rehashes).",
)
TTL_COMMANDS = ("PEXPIRETIME", "PTTL")  # the first the server knows is used

CENSUS_COMMANDS = METRICS.define(
    "redis_key_census_commands",
    "Commands the last key census sent, by command.",
    labels=("command",),
)


@dataclass
class CensusLookups:
    """The census' own key lookups, which the server counts as keyspace hits and misses: the
    census writes them, the INFO collector takes them out of the application's figures."""

    command: str = TTL_COMMANDS[0]  # the TTL lookup command in use
    misses: int = 0  # lookups of this process that found no key

    def taken_out_of(self, info: dict[str, str]) -> dict[str, str]:
        return without_census_lookups(info, self.command, self.misses)


@dataclass
class _Tally:
    """One group's figures during a census; no key names."""

    buckets: int
    keys: int = 0
    no_ttl: int = 0
    ttl_counts: list[int] = field(default_factory=list)  # per bucket, not cumulative
    with_ttl: int = 0
    offered: int = 0  # keys offered to the memory reservoir
    sample: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ttl_counts = [0] * self.buckets


class KeyCensusError(Exception):
    """A census step failed; the message names the command and the server's error code only."""


class KeyCensus:
    """The key census of one database, run by a background collector."""

    def __init__(
        self,
        client: Any,
        groups: Sequence[KeyGroup],
        db: int,
        *,
        scan_count: int,
        pause: float,
        memory_samples: int,
        ttl_buckets: Sequence[float],
        access: CommandAccess,
        lookups: CensusLookups,
        seed: int | None = None,
    ) -> None:
        self.client = client  # redis.asyncio.Redis, bytes replies, no response callbacks
        self.groups = list(groups)
        self.db_label = f"db{db}"
        self.scan_count = scan_count
        self.pause = pause
        self.memory_samples = memory_samples
        self.ttl_buckets = sorted(set(ttl_buckets))
        self.access = access  # shared with the other Redis collectors
        self.lookups = lookups  # published for the INFO collector
        self._rng = random.Random(seed)

    async def run(self) -> list[Family]:
        started = time.monotonic()
        names = [g.name for g in self.groups] + [UNCLASSIFIED]
        tallies = {name: _Tally(len(self.ttl_buckets)) for name in names}
        commands = {"SCAN": 0, "TIME": 0, self.lookups.command: 0, "MEMORY USAGE": 0}
        scanned = 0
        memory_ok = self.memory_samples > 0 and self.access.may_try("MEMORY")
        cursor: bytes | int = 0
        while True:
            check_stop()  # between commands: redis-py may have swallowed a cancellation
            cursor, keys = await self._call("SCAN", "SCAN", cursor, "COUNT", self.scan_count)
            commands["SCAN"] += 1
            scanned += len(keys)
            if keys:
                check_stop()
                memory_ok = await self._tally_batch(keys, tallies, commands, memory_ok)
            if int(cursor) == 0:
                break
            if self.pause > 0:
                await asyncio.sleep(self.pause)
        duration = time.monotonic() - started
        return self._families(tallies, commands, scanned, duration, memory_ok)

    async def _call(self, command: str, *args: Any) -> Any:
        try:
            reply = await self.client.execute_command(*args)
        except ResponseError as exc:
            self.access.report(command, exc)
            raise KeyCensusError(f"{command} failed: {safe_error(exc)}") from None
        self.access.report(command, None)
        return reply

    async def _tally_batch(
        self, keys: list[bytes], tallies: dict[str, _Tally], commands: dict[str, int],
        memory_ok: bool,
    ) -> bool:
        """Expiry of every key and MEMORY USAGE of the sampled ones, in one round trip."""
        groups = [classify(key, self.groups) for key in keys]
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("TIME")
        for key in keys:
            pipe.execute_command(self.lookups.command, key)
        measured = self._queue_memory_samples(pipe, keys, groups, tallies) if memory_ok else []
        replies = await pipe.execute(raise_on_error=False)
        clock, expiries, usages = replies[0], replies[1 : len(keys) + 1], replies[len(keys) + 1 :]
        commands["TIME"] += 1
        commands[self.lookups.command] = commands.get(self.lookups.command, 0) + len(keys)
        commands["MEMORY USAGE"] += len(measured)

        memory_error = next((r for r in usages if isinstance(r, BaseException)), None)
        if memory_error is not None:
            self.access.report("MEMORY", memory_error)  # before a TTL error ends the census
        first_error = next((r for r in expiries if isinstance(r, BaseException)), None)
        if first_error is not None:
            self.access.report(self.lookups.command, first_error)
            if "unknown command" in safe_error(first_error) and self.lookups.command != "PTTL":
                self.lookups.command = "PTTL"  # Redis before 7.0
                return await self._tally_batch(keys, tallies, commands, memory_ok)
            raise KeyCensusError(f"{self.lookups.command} failed: {safe_error(first_error)}")
        self.access.report(self.lookups.command, None)
        self._count_expiries(groups, expiries, tallies, self._server_clock_ms(clock))
        return memory_ok and self._keep_memory_samples(measured, usages, tallies)

    def _queue_memory_samples(
        self, pipe: Any, keys: list[bytes], groups: list[str], tallies: dict[str, _Tally]
    ) -> list[tuple[str, int]]:
        """MEMORY USAGE of the keys that enter their group's sample, queued on `pipe`; each
        measured key's group and the sample slot it takes (-1: appended)."""
        # Reservoir sampling (algorithm R): the k-th key of a group enters a full sample with
        # probability n/k, replacing a random member, so the sample stays uniform over the group.
        measured: list[tuple[str, int]] = []
        for key, name in zip(keys, groups, strict=True):
            tally = tallies[name]
            tally.offered += 1
            if tally.offered <= self.memory_samples:
                slot = -1  # the first n keys fill the sample
            else:
                slot = self._rng.randrange(tally.offered)
                if slot >= self.memory_samples:
                    continue
            pipe.execute_command("MEMORY USAGE", key)
            measured.append((name, slot))
        return measured

    def _server_clock_ms(self, clock: Any) -> float:
        """The server's TIME in milliseconds; the exporter's clock when TIME was refused."""
        if isinstance(clock, BaseException):
            self.access.report("TIME", clock)
            return time.time() * 1000
        self.access.report("TIME", None)
        return int(clock[0]) * 1000 + int(clock[1]) / 1000

    def _count_expiries(
        self, groups: list[str], expiries: list[Any], tallies: dict[str, _Tally], now_ms: float
    ) -> None:
        absolute = self.lookups.command == "PEXPIRETIME"
        for name, expiry in zip(groups, expiries, strict=True):
            if expiry == -2:  # gone since SCAN saw it (expired or deleted)
                self.lookups.misses += 1
                continue
            tally = tallies[name]
            tally.keys += 1
            if expiry == -1:
                tally.no_ttl += 1
                continue
            tally.with_ttl += 1
            seconds = max(0.0, (expiry - now_ms) if absolute else expiry) / 1000
            for i, bound in enumerate(self.ttl_buckets):
                if seconds <= bound:
                    tally.ttl_counts[i] += 1
                    break

    def _keep_memory_samples(
        self, measured: list[tuple[str, int]], usages: list[Any], tallies: dict[str, _Tally]
    ) -> bool:
        """Put the measured sizes into the samples; False when MEMORY USAGE failed."""
        for (name, slot), usage in zip(measured, usages, strict=True):
            if isinstance(usage, BaseException):
                # Denied (ACL) or unknown (old server): no memory estimate this time.
                for tally in tallies.values():
                    tally.sample.clear()
                return False
            if usage is None:  # expired meanwhile
                continue
            sample = tallies[name].sample
            if 0 <= slot < len(sample):
                sample[slot] = float(usage)
            elif len(sample) < self.memory_samples:  # a filling key, or one that took the
                sample.append(float(usage))  # place of a key that vanished before it was measured
        if measured:
            self.access.report("MEMORY", None)
        return True

    def _families(
        self, tallies: dict[str, _Tally], commands: dict[str, int], scanned: int,
        duration: float, memory_ok: bool,
    ) -> list[Family]:
        count, no_ttl, by_ttl = (
            KEY_GROUP_COUNT.family(), KEY_GROUP_NO_TTL.family(), KEY_GROUP_TTL.family()
        )
        memory, samples = KEY_GROUP_MEMORY.family(), KEY_GROUP_MEMORY_SAMPLES.family()
        for name, tally in tallies.items():
            labels = (("db", self.db_label), ("key_group", name))
            count.add(tally.keys, labels)
            no_ttl.add(tally.no_ttl, labels)
            running = 0
            for bound, n in zip(self.ttl_buckets, tally.ttl_counts, strict=True):
                running += n
                by_ttl.add(running, (*labels, ("le", _bound(bound))))
            by_ttl.add(tally.with_ttl, (*labels, ("le", "+Inf")))
            if memory_ok:
                mean = sum(tally.sample) / len(tally.sample) if tally.sample else 0.0
                memory.add(round(mean * tally.keys), labels)
                samples.add(len(tally.sample), labels)
        census_duration, finished = CENSUS_DURATION.family(), CENSUS_FINISHED.family()
        census_duration.add(duration)
        finished.add(time.time())
        keys_scanned = CENSUS_KEYS.family()
        keys_scanned.add(scanned)
        sent = CENSUS_COMMANDS.family()
        for command, n in commands.items():
            sent.add(n, (("command", command),))
        return [
            count, no_ttl, by_ttl, memory, samples, census_duration, finished, keys_scanned, sent,
        ]


class KeyCensusCollector:
    """`redis_key_groups`: the census as a background collector; a census that fails serves the
    previous one, if any."""

    def __init__(self, census: KeyCensus, reachability: Reachability) -> None:
        self.census = census
        self.reachability = reachability  # kept up to date by the INFO collector
        self._last: list[Family] | None = None

    async def collect(self) -> list[Family]:
        if self.reachability.known_down:
            raise Unavailable
        try:
            families = await self.census.run()
        except (KeyCensusError, RedisError, OSError) as exc:
            message = str(exc) if isinstance(exc, KeyCensusError) else safe_error(exc)
            if isinstance(exc, RedisError | OSError) and not isinstance(exc, ResponseError):
                message = f"{type(exc).__name__}: {exc}"  # connection trouble: no key inside
            if self._last is not None:
                raise PartialFailure(
                    self._last, f"key census failed, serving the previous one: {message}"
                ) from None
            raise KeyCensusError(f"key census failed: {message}") from None
        self._last = families
        return families


def _bound(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(seconds)


def without_census_lookups(info: dict[str, str], command: str, misses: int) -> dict[str, str]:
    """INFO fields with the census' own TTL lookups taken out of keyspace_hits/misses.

    Every call of `command` (PEXPIRETIME or PTTL) is taken for a census lookup, since
    applications hardly use it; commandstats and the keyspace counters come from the same INFO
    snapshot and are reset together (restart, CONFIG RESETSTAT), so the correction is exact,
    whatever exporter process made the calls. Of those lookups, the `misses` this process saw
    (keys that vanished between SCAN and lookup) were misses, the rest hits.
    """
    stats = info.get(f"cmdstat_{command.lower()}")
    if stats is None or "keyspace_hits" not in info or "keyspace_misses" not in info:
        return info
    try:
        calls = int(dict(p.split("=", 1) for p in stats.split(",") if "=" in p)["calls"])
        hits, missed = int(info["keyspace_hits"]), int(info["keyspace_misses"])
    except (KeyError, ValueError):
        return info
    misses = min(misses, calls, missed)
    return {
        **info,
        "keyspace_hits": str(max(0, hits - (calls - misses))),
        "keyspace_misses": str(max(0, missed - misses)),
    }
