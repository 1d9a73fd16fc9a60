"""The `redis` collector: one INFO ALL on every scrape, as redis_exporter's metrics.

One INFO ALL answers server, clients, memory, persistence, stats, replication, CPU,
commandstats, errorstats, latencystats and keyspace; it doubles as the reachability check
behind `redis_up`. An INFO that the server refuses (renamed, ACL) leaves `redis_up 1` after a
PING and counts as a collector error, never a failed scrape.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from tmi_db_exporter.core.contract import PartialFailure
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricDef, MetricGroup
from tmi_db_exporter.core.reachability import Reachability
from tmi_db_exporter.sources.redis.client import CommandAccess
from tmi_db_exporter.sources.redis.info_fields import INFO_FIELDS

if TYPE_CHECKING:
    # Types only: the census writes these lookups, the INFO collector reads them.
    from tmi_db_exporter.sources.redis.census import CensusLookups

METRICS = MetricGroup("Redis INFO", __name__)
REDIS_UP = METRICS.define(
    "redis_up", "1 if the exporter can reach Redis and authenticate (INFO or PING), else 0."
)
INSTANCE_INFO = METRICS.define(
    "redis_instance_info",
    "Server identity as labels; always 1.",
    labels=(
        "role", "redis_version", "redis_build_id", "redis_mode", "os", "maxmemory_policy",
        "tcp_port", "run_id", "process_id",
    ),
)
START_TIME = METRICS.define(
    "redis_start_time_seconds", "When the server started, seconds since the epoch."
)
DB_KEYS = METRICS.define("redis_db_keys", "Keys in the database (DBSIZE).", labels=("db",))
DB_KEYS_EXPIRING = METRICS.define(
    "redis_db_keys_expiring", "Keys with an expiry (TTL) in the database.", labels=("db",)
)
DB_AVG_TTL = METRICS.define(
    "redis_db_avg_ttl_seconds",
    "Average TTL of the keys with an expiry, in seconds.",
    labels=("db",),
)
HIT_RATIO = METRICS.define(
    "redis_keyspace_hit_ratio",
    "Key lookups that found their key, 0-1, since start or CONFIG RESETSTAT (the guide's hit "
    "rate); absent before the first lookup.",
)
MEMORY_RATIO = METRICS.define(
    "redis_memory_used_maxmemory_ratio",
    "Memory allocated by Redis as a fraction of maxmemory; absent when maxmemory is 0 (no limit).",
)
# The fields INFO gives as they are (info_fields.py), one metric each.
FIELD_METRICS: dict[str, MetricDef] = {
    field: METRICS.define(spec.metric, spec.help, spec.type) for field, spec in INFO_FIELDS.items()
}
ACL_DENIED = METRICS.define(
    "redis_acl_access_denied_total",
    "Requests refused by ACL, by reason (auth, cmd, key, channel).",
    "counter",
    labels=("reason",),
)
COMMANDS_TOTAL = METRICS.define(
    "redis_commands_total", "Calls of the command (INFO commandstats).", "counter", labels=("cmd",)
)
COMMANDS_DURATION = METRICS.define(
    "redis_commands_duration_seconds_total",
    "Time spent executing the command, in seconds.",
    "counter",
    labels=("cmd",),
)
COMMANDS_REJECTED = METRICS.define(
    "redis_commands_rejected_calls_total",
    "Calls of the command refused before execution (unknown args, ACL, OOM, ...).",
    "counter",
    labels=("cmd",),
)
COMMANDS_FAILED = METRICS.define(
    "redis_commands_failed_calls_total",
    "Calls of the command that failed during execution.",
    "counter",
    labels=("cmd",),
)
LATENCY_PERCENTILES = METRICS.define(
    "redis_latency_percentiles_usec",
    "Latency percentile of the command in microseconds (INFO latencystats, Redis 7+); "
    "`quantile` is the percentile as Redis names it (50, 99, 99.9).",
    labels=("cmd", "quantile"),
)
ERRORS_TOTAL = METRICS.define(
    "redis_errors_total",
    "Error replies by error code (INFO errorstats; Redis tracks at most 128 codes).",
    "counter",
    labels=("err",),
)
_MASTER = ("master_host", "master_port")
MASTER_LINK_UP = METRICS.define(
    "redis_master_link_up", "On a replica: 1 if the link to the master is up.", labels=_MASTER
)
MASTER_LAST_IO = METRICS.define(
    "redis_master_last_io_seconds_ago",
    "On a replica: seconds since the last interaction with the master.",
    labels=_MASTER,
)
MASTER_SYNC = METRICS.define(
    "redis_master_sync_in_progress",
    "On a replica: 1 while it synchronises from the master.",
    labels=_MASTER,
)
SLAVE_REPL_OFFSET = METRICS.define(
    "redis_slave_repl_offset", "On a replica: its replication offset.", labels=_MASTER
)
SLAVE_INFO = METRICS.define(
    "redis_slave_info",
    "On a replica: its master and read-only flag as labels; always 1.",
    labels=(*_MASTER, "read_only"),
)
_REPLICA = ("slave_ip", "slave_port", "slave_state")
CONNECTED_SLAVE_OFFSET = METRICS.define(
    "redis_connected_slave_offset_bytes",
    "On a master: replication offset of the connected replica.",
    labels=_REPLICA,
)
CONNECTED_SLAVE_LAG = METRICS.define(
    "redis_connected_slave_lag_seconds",
    "On a master: seconds since the connected replica last acknowledged.",
    labels=_REPLICA,
)
# Filled from the tries of every Redis collector (CommandAccess), exported with INFO.
COMMAND_ALLOWED = METRICS.define(
    "tmi_db_exporter_redis_command_allowed",
    "1 if the exporter could run the command at its last try, 0 if the server refused it "
    "(ACL, renamed, unknown); a refused command's metrics are left out.",
    labels=("command",),
)

_ACL_DENIED_FIELDS = {
    "acl_access_denied_auth": "auth",
    "acl_access_denied_cmd": "cmd",
    "acl_access_denied_key": "key",
    "acl_access_denied_channel": "channel",
}


def parse_info(text: str) -> dict[str, str]:
    """INFO text into field -> raw value (sections do not matter: field names are unique)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def _parse_pairs(value: str) -> dict[str, str]:
    """`keys=1,expires=0,avg_ttl=0` into a dict."""
    out = {}
    for part in value.split(","):
        key, sep, item = part.partition("=")
        if sep:
            out[key] = item
    return out


def parse_number(value: str | None) -> float | None:
    """A number Redis gave as text; None when there is none."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def info_families(
    info: dict[str, str], selected_db: int = 0, now: float | None = None
) -> list[Family]:
    """Families from INFO ALL, parsed by `parse_info`."""
    return [
        *_field_families(info),
        *_server_families(info, now),
        *_keyspace_families(info, selected_db),
        *_ratio_families(info),
        _acl_denied_family(info),
        *_command_families(info),
        *_replication_families(info),
    ]


def _field_families(info: dict[str, str]) -> list[Family]:
    families = []
    for field, metric in FIELD_METRICS.items():
        family = metric.family()
        if field in info:
            with contextlib.suppress(TypeError, ValueError):  # e.g. a field a fork left empty
                family.add(INFO_FIELDS[field].convert(info[field]))
        families.append(family)
    return families


def _server_families(info: dict[str, str], now: float | None) -> list[Family]:
    identity = INSTANCE_INFO.family()
    identity.add(1, tuple((label, info.get(label, "")) for label in INSTANCE_INFO.labels))
    start = START_TIME.family()
    uptime = parse_number(info.get("uptime_in_seconds"))
    if uptime is not None:
        server_time = parse_number(info.get("server_time_usec"))
        clock = server_time / 1e6 if server_time else (now or time.time())
        start.add(math.floor(clock - uptime))  # uptime is whole seconds: never in the future
    return [identity, start]


def _keyspace_families(info: dict[str, str], selected_db: int) -> list[Family]:
    keys, expiring, avg_ttl = DB_KEYS.family(), DB_KEYS_EXPIRING.family(), DB_AVG_TTL.family()
    dbs = {k: _parse_pairs(v) for k, v in info.items() if k.startswith("db") and k[2:].isdigit()}
    dbs.setdefault(f"db{selected_db}", {})  # an empty database is 0 keys, not a missing series
    for name, stats in sorted(dbs.items(), key=lambda item: int(item[0][2:])):
        label = (("db", name),)
        keys.add(float(stats.get("keys", 0)), label)
        expiring.add(float(stats.get("expires", 0)), label)
        avg_ttl.add(float(stats.get("avg_ttl", 0)) / 1000, label)
    return [keys, expiring, avg_ttl]


def _ratio_families(info: dict[str, str]) -> list[Family]:
    ratio = HIT_RATIO.family()
    hits = parse_number(info.get("keyspace_hits"))
    misses = parse_number(info.get("keyspace_misses"))
    if hits is not None and misses is not None and hits + misses > 0:
        ratio.add(hits / (hits + misses))
    memory_ratio = MEMORY_RATIO.family()
    used, limit = parse_number(info.get("used_memory")), parse_number(info.get("maxmemory"))
    if used is not None and limit:  # maxmemory 0 means "no limit": never divide by it
        memory_ratio.add(used / limit)
    return [ratio, memory_ratio]


def _acl_denied_family(info: dict[str, str]) -> Family:
    denied = ACL_DENIED.family()
    for field, reason in _ACL_DENIED_FIELDS.items():
        value = parse_number(info.get(field))
        if value is not None:
            denied.add(value, (("reason", reason),))
    return denied


def _command_families(info: dict[str, str]) -> list[Family]:
    """Per command (commandstats, latencystats) and per error code (errorstats)."""
    calls, spent = COMMANDS_TOTAL.family(), COMMANDS_DURATION.family()
    rejected, failed = COMMANDS_REJECTED.family(), COMMANDS_FAILED.family()
    percentiles, errors = LATENCY_PERCENTILES.family(), ERRORS_TOTAL.family()
    for field, value in info.items():
        if field.startswith("cmdstat_"):
            label = (("cmd", field[len("cmdstat_"):]),)
            stats = _parse_pairs(value)
            for family, key, scale in (
                (calls, "calls", 1.0), (spent, "usec", 1e-6),
                (rejected, "rejected_calls", 1.0), (failed, "failed_calls", 1.0),
            ):
                number = parse_number(stats.get(key))
                if number is not None:
                    family.add(number * scale, label)
        elif field.startswith("latency_percentiles_usec_"):
            cmd = field[len("latency_percentiles_usec_"):]
            for quantile, number in _parse_pairs(value).items():
                parsed = parse_number(number)
                if parsed is not None and quantile.startswith("p"):
                    percentiles.add(parsed, (("cmd", cmd), ("quantile", quantile[1:])))
        elif field.startswith("errorstat_"):
            count = parse_number(_parse_pairs(value).get("count"))
            if count is not None:
                errors.add(count, (("err", field[len("errorstat_"):]),))
    return [calls, spent, rejected, failed, percentiles, errors]


def _replication_families(info: dict[str, str]) -> list[Family]:
    """A replica's link to its master, and a master's connected replicas."""
    link, last_io, sync = MASTER_LINK_UP.family(), MASTER_LAST_IO.family(), MASTER_SYNC.family()
    offset, replica_info = SLAVE_REPL_OFFSET.family(), SLAVE_INFO.family()
    replica_offset, replica_lag = CONNECTED_SLAVE_OFFSET.family(), CONNECTED_SLAVE_LAG.family()
    if info.get("role") == "slave":
        master = (("master_host", info.get("master_host", "")),
                  ("master_port", info.get("master_port", "")))
        link.add(1.0 if info.get("master_link_status") == "up" else 0.0, master)
        for family, field in ((last_io, "master_last_io_seconds_ago"),
                              (sync, "master_sync_in_progress"), (offset, "slave_repl_offset")):
            number = parse_number(info.get(field))
            if number is not None:
                family.add(number, master)
        replica_info.add(1, (*master, ("read_only", info.get("slave_read_only", ""))))
    for field, value in info.items():
        if field.startswith("slave") and field[5:].isdigit():
            stats = _parse_pairs(value)
            labels = (("slave_ip", stats.get("ip", "")), ("slave_port", stats.get("port", "")),
                      ("slave_state", stats.get("state", "")))
            for family, key in ((replica_offset, "offset"), (replica_lag, "lag")):
                number = parse_number(stats.get(key))
                if number is not None:
                    family.add(number, labels)
    return [link, last_io, sync, offset, replica_info, replica_offset, replica_lag]


def command_allowed_family(access: CommandAccess) -> Family:
    """Whether the server ran each command the exporter tried, at its last try."""
    family = COMMAND_ALLOWED.family()
    for command, allowed in access.last_tries():
        family.add(1.0 if allowed else 0.0, (("command", command),))
    return family


@dataclass
class ServerRun:
    """The server run INFO saw last (its `run_id` changes with every restart), for collectors
    whose figures start again with a new run."""

    run_id: str = ""


class InfoCollector:
    """`redis`: INFO ALL on every scrape, and with it `redis_up`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        access: CommandAccess,
        reachability: Reachability,
        server_run: ServerRun,
        census_lookups: CensusLookups | None,
        selected_db: int,
    ) -> None:
        self.client = client  # from make_client: raw replies
        self.access = access
        self.reachability = reachability  # kept up to date here, read by the other collectors
        self.server_run = server_run  # written here
        self.census_lookups = census_lookups  # taken out of keyspace hits and misses
        self.selected_db = selected_db

    async def collect(self) -> list[Family]:
        up = REDIS_UP.family()
        if self.reachability.known_down and self.reachability.backoff.waiting:
            up.add(0)  # backing off: no new connection attempt yet
            return [up]
        if not self.access.may_try("INFO"):  # refused lately: PING until the recheck
            return await self._ping_instead(up)
        try:
            text = await self.client.execute_command("INFO", "ALL")
        except ResponseError as exc:  # reachable, but INFO is renamed or denied
            self.access.report("INFO", exc)
            return await self._ping_instead(up)
        except (RedisError, OSError) as exc:
            return self._down(up, exc)
        self.access.report("INFO", None)
        up.add(1)
        self.reachability.succeeded()
        info = parse_info(text)
        self.server_run.run_id = info.get("run_id", "")
        if self.census_lookups is not None:
            info = self.census_lookups.taken_out_of(info)
        return [up, *info_families(info, self.selected_db), command_allowed_family(self.access)]

    async def _ping_instead(self, up: Family) -> list[Family]:
        """redis_up from a PING when INFO is refused; the collector still counts an error."""
        try:
            await self.client.execute_command("PING")
        except (RedisError, OSError) as ping_error:
            return self._down(up, ping_error)
        up.add(1)
        self.reachability.succeeded()
        raise PartialFailure(
            [up, command_allowed_family(self.access)],
            f"INFO is refused by the server; tried again every {self.access.recheck:g}s",
        ) from None

    def _down(self, up: Family, error: BaseException) -> list[Family]:
        up.add(0)
        self.reachability.failed(error)
        return [up]

    def fallback(self) -> list[Family]:
        """redis_up when INFO did not even fail in time (a hung server or link): down. The
        cache logs and counts the timeout."""
        self.reachability.down()
        up = REDIS_UP.family()
        up.add(0)
        return [up]
