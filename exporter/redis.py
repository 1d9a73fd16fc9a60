"""Redis source: INFO parsed into metrics named as redis_exporter names them.

Names, types and meanings follow redis_exporter wherever it has the concept, so dashboards and
alerts written for it keep working; cumulative statistics are counters, current levels gauges.
One INFO per scrape answers everything here, and it doubles as the reachability check behind
`redis_up`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from exporter.cache import CachedCollector
from exporter.config import RedisSettings
from exporter.exposition import Family, MetricDef

log = logging.getLogger(__name__)

REDIS_UP = MetricDef("redis_up", "1 if the exporter can reach Redis and run INFO, else 0.")
INSTANCE_INFO = MetricDef(
    "redis_instance_info",
    "Server identity as labels; always 1.",
    labels=("redis_version", "redis_mode", "role", "os", "maxmemory_policy"),
)
DB_KEYS = MetricDef("redis_db_keys", "Keys in the database (DBSIZE).", labels=("db",))
DB_KEYS_EXPIRING = MetricDef(
    "redis_db_keys_expiring", "Keys with an expiry (TTL) in the database.", labels=("db",)
)
DB_AVG_TTL = MetricDef(
    "redis_db_avg_ttl_seconds",
    "Average TTL of the keys with an expiry, in seconds.",
    labels=("db",),
)


def _status(value: Any) -> float:
    return 1.0 if value == "ok" else 0.0


# INFO field -> metric; the value converter defaults to float().
INFO_METRICS: list[tuple[str, MetricDef, Any]] = [
    (field, MetricDef(name, help_, type_), conv)  # type: ignore[arg-type]
    for field, name, type_, help_, conv in [
        ("uptime_in_seconds", "redis_uptime_in_seconds", "gauge", "Seconds since start.", None),
        ("connected_clients", "redis_connected_clients", "gauge", "Client connections.", None),
        ("blocked_clients", "redis_blocked_clients", "gauge",
         "Clients waiting in a blocking call (BLPOP, ...).", None),
        ("used_memory", "redis_memory_used_bytes", "gauge",
         "Memory allocated by Redis, in bytes.", None),
        ("used_memory_rss", "redis_memory_used_rss_bytes", "gauge",
         "Memory held from the operating system (RSS), in bytes.", None),
        ("used_memory_peak", "redis_memory_used_peak_bytes", "gauge",
         "Peak memory allocated by Redis, in bytes.", None),
        ("maxmemory", "redis_memory_max_bytes", "gauge",
         "maxmemory setting in bytes; 0 means no limit.", None),
        ("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", "gauge",
         "RSS divided by allocated memory.", None),
        ("total_commands_processed", "redis_commands_processed_total", "counter",
         "Commands processed by the server.", None),
        ("total_connections_received", "redis_connections_received_total", "counter",
         "Connections accepted by the server.", None),
        ("rejected_connections", "redis_rejected_connections_total", "counter",
         "Connections rejected because of maxclients.", None),
        ("expired_keys", "redis_expired_keys_total", "counter",
         "Keys removed because their TTL ran out.", None),
        ("evicted_keys", "redis_evicted_keys_total", "counter",
         "Keys evicted because of maxmemory.", None),
        ("keyspace_hits", "redis_keyspace_hits_total", "counter",
         "Successful key lookups.", None),
        ("keyspace_misses", "redis_keyspace_misses_total", "counter",
         "Key lookups that found nothing.", None),
        ("total_net_input_bytes", "redis_net_input_bytes_total", "counter",
         "Bytes received from clients.", None),
        ("total_net_output_bytes", "redis_net_output_bytes_total", "counter",
         "Bytes sent to clients.", None),
        ("used_cpu_sys", "redis_cpu_sys_seconds_total", "counter",
         "System CPU time consumed by the server, in seconds.", None),
        ("used_cpu_user", "redis_cpu_user_seconds_total", "counter",
         "User CPU time consumed by the server, in seconds.", None),
        ("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", "gauge",
         "Writes since the last RDB snapshot.", None),
        ("rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", "gauge",
         "1 while a background RDB save runs.", None),
        ("rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", "gauge",
         "Last successful RDB save (LASTSAVE), seconds since the epoch.", None),
        ("rdb_last_bgsave_status", "redis_rdb_last_bgsave_status", "gauge",
         "1 if the last background RDB save succeeded, else 0.", _status),
        ("aof_enabled", "redis_aof_enabled", "gauge", "1 if AOF persistence is on.", None),
        ("aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", "gauge",
         "1 while an AOF rewrite runs.", None),
        ("aof_last_write_status", "redis_aof_last_write_status", "gauge",
         "1 if the last AOF write succeeded, else 0.", _status),
        ("connected_slaves", "redis_connected_slaves", "gauge",
         "Replicas connected to this server.", None),
        ("master_repl_offset", "redis_master_repl_offset", "gauge",
         "Replication offset of this server.", None),
    ]
]
ALL = (
    REDIS_UP,
    INSTANCE_INFO,
    DB_KEYS,
    DB_KEYS_EXPIRING,
    DB_AVG_TTL,
    *(d for _, d, _ in INFO_METRICS),
)


class RedisSource:
    """The Redis collector of one server."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.up = False
        self._last_error: str | None = None
        common: dict[str, Any] = {
            "socket_timeout": settings.timeout,
            "socket_connect_timeout": settings.timeout,
            "client_name": "tmi-db-exporter",
            "decode_responses": True,
            # One immediate retry replaces a pooled connection that a server restart closed.
            "retry": Retry(NoBackoff(), 1),
        }
        if settings.username:
            common["username"] = settings.username
        if settings.password is not None:
            common["password"] = settings.password.get_secret_value()
        if settings.url is not None:
            self.client = aioredis.Redis.from_url(settings.url.get_secret_value(), **common)
        else:
            self.client = aioredis.Redis(
                host=settings.host, port=settings.port, db=settings.db, **common
            )

    def collectors(self) -> list[CachedCollector]:
        return [CachedCollector("redis", self._collect, ttl=0, timeout=self.settings.timeout * 2)]

    async def close(self) -> None:
        await self.client.aclose()

    async def _collect(self) -> list[Family]:
        up = REDIS_UP.family()
        try:
            info = await self.client.info()
        except (RedisError, OSError) as exc:
            up.add(0)
            self._mark(exc)
            return [up]
        up.add(1)
        self._mark(None)
        return [up, *info_families(info, self.settings.db)]

    def _mark(self, error: BaseException | None) -> None:
        if error is None:
            if not self.up:
                log.info("Redis %s is up", self.settings.describe())
            self.up, self._last_error = True, None
            return
        message = str(error).strip() or type(error).__name__
        if message != self._last_error:
            log.warning("Redis %s is unreachable: %s", self.settings.describe(), message)
        self.up, self._last_error = False, message


def info_families(info: dict[str, Any], selected_db: int = 0) -> list[Family]:
    """Families from a parsed INFO reply (as redis-py returns it)."""
    families = []
    for field, metric, convert in INFO_METRICS:
        family = metric.family()
        if field in info:
            with contextlib.suppress(TypeError, ValueError):  # e.g. a field a fork left empty
                family.add(convert(info[field]) if convert else float(info[field]))
        families.append(family)

    identity = INSTANCE_INFO.family()
    identity.add(1, tuple((label, str(info.get(label, ""))) for label in INSTANCE_INFO.labels))
    families.append(identity)

    keys, expiring, avg_ttl = DB_KEYS.family(), DB_KEYS_EXPIRING.family(), DB_AVG_TTL.family()
    dbs = {k: v for k, v in info.items() if k.startswith("db") and k[2:].isdigit()}
    dbs.setdefault(f"db{selected_db}", {})  # an empty database is 0 keys, not a missing series
    for name, stats in sorted(dbs.items(), key=lambda item: int(item[0][2:])):
        label = (("db", name),)
        keys.add(float(stats.get("keys", 0)), label)
        expiring.add(float(stats.get("expires", 0)), label)
        avg_ttl.add(float(stats.get("avg_ttl", 0)) / 1000, label)
    families += [keys, expiring, avg_ttl]
    return families
