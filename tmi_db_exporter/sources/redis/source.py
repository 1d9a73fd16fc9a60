"""Redis source: what the operations guide checks by hand, as metrics named as redis_exporter
names them (so its dashboards and alerts keep working).

Four collectors, each as expensive as it has to be:

- `redis` (every scrape): one `INFO ALL` answers server, clients, memory, persistence, stats,
  replication, CPU, commandstats, errorstats, latencystats and keyspace; it doubles as the
  reachability check behind `redis_up`. An INFO that the server refuses (renamed, ACL) leaves
  `redis_up 1` after a PING and counts as a collector error, never a failed scrape.
- `redis_slowlog` (every `slowlog_interval`): SLOWLOG LEN/GET and LATENCY LATEST.
- `redis_posture` (every `posture_interval`): security posture. Renamed and disabled commands
  are detected without calling them: `COMMAND INFO name` answers nil once `rename-command` moved
  a command away from its name, and `COMMAND LIST` still lists a renamed command under its
  original name but no longer lists one renamed to "" (disabled). The new name of a renamed
  command is never learned or shown. Whether authentication is required is seen the way an
  attacker would see it: a PING on a fresh connection without credentials.
- `redis_key_groups` (background, every `key_census_interval`): the key census of keygroups.py.

Degraded servers (CONFIG renamed or denied, LATENCY missing on managed Redis, a user with few
ACL permissions): every command the exporter uses is tried for real, a refusal is logged once
and exported as `tmi_db_exporter_redis_command_allowed 0`, and the command is left alone for
`posture_interval` (so a denied command does not fill the server's ACL LOG), while everything
else is still exported. Calling is the only reliable test: `ACL DRYRUN` would itself need
admin rights that a monitoring user should not have.

Never in a metric or a log line: key names, command arguments (the slowlog's command label is
only ever a name that INFO commandstats lists), the new name of a renamed command, passwords.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from tmi_db_exporter.config.settings import RedisSettings
from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.contract import PartialFailure, Skipped, Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.metrics import MetricDef
from tmi_db_exporter.core.reachability import backoff
from tmi_db_exporter.sources.redis.census import (
    KeyCensus,
    KeyCensusError,
    parse_key_groups,
    safe_error,
    without_census_lookups,
)

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ INFO

REDIS_UP = MetricDef(
    "redis_up", "1 if the exporter can reach Redis and authenticate (INFO or PING), else 0."
)
INSTANCE_INFO = MetricDef(
    "redis_instance_info",
    "Server identity as labels; always 1.",
    labels=(
        "role", "redis_version", "redis_build_id", "redis_mode", "os", "maxmemory_policy",
        "tcp_port", "run_id", "process_id",
    ),
)
START_TIME = MetricDef(
    "redis_start_time_seconds", "When the server started, seconds since the epoch."
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
HIT_RATIO = MetricDef(
    "redis_keyspace_hit_ratio",
    "Key lookups that found their key, 0-1, since start or CONFIG RESETSTAT (the guide's hit "
    "rate); absent before the first lookup.",
)
MEMORY_RATIO = MetricDef(
    "redis_memory_used_maxmemory_ratio",
    "Memory allocated by Redis as a fraction of maxmemory; absent when maxmemory is 0 (no limit).",
)
ACL_DENIED = MetricDef(
    "redis_acl_access_denied_total",
    "Requests refused by ACL, by reason (auth, cmd, key, channel).",
    "counter",
    labels=("reason",),
)
COMMANDS_TOTAL = MetricDef(
    "redis_commands_total", "Calls of the command (INFO commandstats).", "counter", labels=("cmd",)
)
COMMANDS_DURATION = MetricDef(
    "redis_commands_duration_seconds_total",
    "Time spent executing the command, in seconds.",
    "counter",
    labels=("cmd",),
)
COMMANDS_REJECTED = MetricDef(
    "redis_commands_rejected_calls_total",
    "Calls of the command refused before execution (unknown args, ACL, OOM, ...).",
    "counter",
    labels=("cmd",),
)
COMMANDS_FAILED = MetricDef(
    "redis_commands_failed_calls_total",
    "Calls of the command that failed during execution.",
    "counter",
    labels=("cmd",),
)
LATENCY_PERCENTILES = MetricDef(
    "redis_latency_percentiles_usec",
    "Latency percentile of the command in microseconds (INFO latencystats, Redis 7+); "
    "`quantile` is the percentile as Redis names it (50, 99, 99.9).",
    labels=("cmd", "quantile"),
)
ERRORS_TOTAL = MetricDef(
    "redis_errors_total",
    "Error replies by error code (INFO errorstats; Redis tracks at most 128 codes).",
    "counter",
    labels=("err",),
)
_MASTER = ("master_host", "master_port")
MASTER_LINK_UP = MetricDef(
    "redis_master_link_up", "On a replica: 1 if the link to the master is up.", labels=_MASTER
)
MASTER_LAST_IO = MetricDef(
    "redis_master_last_io_seconds_ago",
    "On a replica: seconds since the last interaction with the master.",
    labels=_MASTER,
)
MASTER_SYNC = MetricDef(
    "redis_master_sync_in_progress",
    "On a replica: 1 while it synchronises from the master.",
    labels=_MASTER,
)
SLAVE_REPL_OFFSET = MetricDef(
    "redis_slave_repl_offset", "On a replica: its replication offset.", labels=_MASTER
)
SLAVE_INFO = MetricDef(
    "redis_slave_info",
    "On a replica: its master and read-only flag as labels; always 1.",
    labels=(*_MASTER, "read_only"),
)
_REPLICA = ("slave_ip", "slave_port", "slave_state")
CONNECTED_SLAVE_OFFSET = MetricDef(
    "redis_connected_slave_offset_bytes",
    "On a master: replication offset of the connected replica.",
    labels=_REPLICA,
)
CONNECTED_SLAVE_LAG = MetricDef(
    "redis_connected_slave_lag_seconds",
    "On a master: seconds since the connected replica last acknowledged.",
    labels=_REPLICA,
)
COMMAND_ALLOWED = MetricDef(
    "tmi_db_exporter_redis_command_allowed",
    "1 if the exporter could run the command at its last try, 0 if the server refused it "
    "(ACL, renamed, unknown); a refused command's metrics are left out.",
    labels=("command",),
)


def _status(value: str) -> float:
    return 1.0 if value == "ok" else 0.0


def _micro(value: str) -> float:
    return float(value) / 1e6


def _milli(value: str) -> float:
    return float(value) / 1e3


# INFO field -> metric (name, type, help, converter; float() when None).
_INFO_TABLE: list[tuple[str, str, str, str, Any]] = [
    # Server
    ("uptime_in_seconds", "redis_uptime_in_seconds", "gauge", "Seconds since start.", None),
    ("io_threads_active", "redis_io_threads_active", "gauge",
     "1 while I/O threads are active.", None),
    # Clients
    ("connected_clients", "redis_connected_clients", "gauge", "Client connections.", None),
    ("blocked_clients", "redis_blocked_clients", "gauge",
     "Clients waiting in a blocking call (BLPOP, ...).", None),
    ("tracking_clients", "redis_tracking_clients", "gauge",
     "Clients with client-side caching (tracking) on.", None),
    ("clients_in_timeout_table", "redis_clients_in_timeout_table", "gauge",
     "Blocked clients with a timeout.", None),
    ("maxclients", "redis_config_maxclients", "gauge", "maxclients setting.", None),
    ("client_recent_max_input_buffer", "redis_client_recent_max_input_buffer_bytes", "gauge",
     "Largest client input buffer lately, in bytes.", None),
    ("client_recent_max_output_buffer", "redis_client_recent_max_output_buffer_bytes", "gauge",
     "Largest client output buffer lately, in bytes.", None),
    ("cluster_connections", "redis_cluster_connections", "gauge",
     "Cluster bus connections.", None),
    # Memory
    ("used_memory", "redis_memory_used_bytes", "gauge",
     "Memory allocated by Redis, in bytes.", None),
    ("used_memory_rss", "redis_memory_used_rss_bytes", "gauge",
     "Memory held from the operating system (RSS), in bytes.", None),
    ("used_memory_peak", "redis_memory_used_peak_bytes", "gauge",
     "Peak memory allocated by Redis, in bytes.", None),
    ("used_memory_overhead", "redis_memory_used_overhead_bytes", "gauge",
     "Memory for internal structures (not data), in bytes.", None),
    ("used_memory_startup", "redis_memory_used_startup_bytes", "gauge",
     "Memory allocated at startup, in bytes.", None),
    ("used_memory_dataset", "redis_memory_used_dataset_bytes", "gauge",
     "Memory holding the data set, in bytes.", None),
    ("used_memory_lua", "redis_memory_used_lua_bytes", "gauge",
     "Memory of the Lua engine, in bytes.", None),
    ("used_memory_scripts", "redis_memory_used_scripts_bytes", "gauge",
     "Memory of cached scripts, in bytes.", None),
    ("total_system_memory", "redis_total_system_memory_bytes", "gauge",
     "Memory of the host, in bytes.", None),
    ("maxmemory", "redis_memory_max_bytes", "gauge",
     "maxmemory setting in bytes; 0 means no limit.", None),
    ("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", "gauge",
     "RSS divided by allocated memory.", None),
    ("mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", "gauge",
     "RSS minus allocated memory, in bytes.", None),
    ("allocator_allocated", "redis_allocator_allocated_bytes", "gauge",
     "Bytes allocated by the allocator.", None),
    ("allocator_active", "redis_allocator_active_bytes", "gauge",
     "Bytes in the allocator's active pages.", None),
    ("allocator_resident", "redis_allocator_resident_bytes", "gauge",
     "Bytes resident in the allocator.", None),
    ("allocator_frag_ratio", "redis_allocator_frag_ratio", "gauge",
     "Allocator fragmentation ratio.", None),
    ("allocator_frag_bytes", "redis_allocator_frag_bytes", "gauge",
     "Allocator fragmentation, in bytes.", None),
    ("allocator_rss_ratio", "redis_allocator_rss_ratio", "gauge",
     "Allocator resident to active ratio.", None),
    ("allocator_rss_bytes", "redis_allocator_rss_bytes", "gauge",
     "Allocator resident minus active, in bytes.", None),
    ("mem_not_counted_for_evict", "redis_mem_not_counted_for_eviction_bytes", "gauge",
     "Memory not counted for maxmemory (replication and AOF buffers), in bytes.", None),
    ("mem_clients_slaves", "redis_mem_clients_slaves", "gauge",
     "Memory of replica client buffers, in bytes.", None),
    ("mem_clients_normal", "redis_mem_clients_normal", "gauge",
     "Memory of normal client buffers, in bytes.", None),
    ("lazyfree_pending_objects", "redis_lazyfree_pending_objects", "gauge",
     "Objects waiting to be freed in the background.", None),
    ("active_defrag_running", "redis_active_defrag_running", "gauge",
     "1 while active defragmentation runs.", None),
    # Persistence
    ("loading", "redis_loading_dump_file", "gauge", "1 while a dump file is being loaded.", None),
    ("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", "gauge",
     "Writes since the last RDB snapshot.", None),
    ("rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", "gauge",
     "1 while a background RDB save runs.", None),
    ("rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", "gauge",
     "Last successful RDB save (LASTSAVE), seconds since the epoch.", None),
    ("rdb_last_bgsave_status", "redis_rdb_last_bgsave_status", "gauge",
     "1 if the last background RDB save succeeded, else 0.", _status),
    ("rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_sec", "gauge",
     "Duration of the last background RDB save in seconds (-1: none yet).", None),
    ("rdb_current_bgsave_time_sec", "redis_rdb_current_bgsave_duration_sec", "gauge",
     "Duration of the running background RDB save in seconds (-1: none).", None),
    ("rdb_last_cow_size", "redis_rdb_last_cow_size_bytes", "gauge",
     "Copy-on-write memory of the last RDB save, in bytes.", None),
    ("rdb_saves", "redis_rdb_saves_total", "counter", "RDB snapshots made since start.", None),
    ("aof_enabled", "redis_aof_enabled", "gauge", "1 if AOF persistence is on.", None),
    ("aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", "gauge",
     "1 while an AOF rewrite runs.", None),
    ("aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", "gauge",
     "1 while an AOF rewrite waits for an RDB save to finish.", None),
    ("aof_last_rewrite_time_sec", "redis_aof_last_rewrite_duration_sec", "gauge",
     "Duration of the last AOF rewrite in seconds (-1: none yet).", None),
    ("aof_current_rewrite_time_sec", "redis_aof_current_rewrite_duration_sec", "gauge",
     "Duration of the running AOF rewrite in seconds (-1: none).", None),
    ("aof_last_bgrewrite_status", "redis_aof_last_bgrewrite_status", "gauge",
     "1 if the last AOF rewrite succeeded, else 0.", _status),
    ("aof_last_write_status", "redis_aof_last_write_status", "gauge",
     "1 if the last AOF write succeeded, else 0.", _status),
    ("aof_last_cow_size", "redis_aof_last_cow_size_bytes", "gauge",
     "Copy-on-write memory of the last AOF rewrite, in bytes.", None),
    ("aof_rewrites", "redis_aof_rewrites_total", "counter", "AOF rewrites since start.", None),
    ("aof_current_size", "redis_aof_current_size_bytes", "gauge",
     "Current AOF size, in bytes (AOF on only).", None),
    ("aof_base_size", "redis_aof_base_size_bytes", "gauge",
     "AOF size after the last rewrite, in bytes (AOF on only).", None),
    ("aof_buffer_length", "redis_aof_buffer_length", "gauge", "AOF buffer size.", None),
    ("aof_pending_bio_fsync", "redis_aof_pending_bio_fsync", "gauge",
     "fsync jobs waiting in the background queue.", None),
    ("aof_delayed_fsync", "redis_aof_delayed_fsync", "counter", "Delayed AOF fsyncs.", None),
    ("module_fork_in_progress", "redis_module_fork_in_progress", "gauge",
     "1 while a module fork runs.", None),
    ("latest_fork_usec", "redis_latest_fork_seconds", "gauge",
     "Duration of the latest fork, in seconds (the server stalls meanwhile).", _micro),
    ("total_forks", "redis_forks_total", "counter", "Forks since start.", None),
    # Stats
    ("total_commands_processed", "redis_commands_processed_total", "counter",
     "Commands processed by the server.", None),
    ("total_connections_received", "redis_connections_received_total", "counter",
     "Connections accepted by the server.", None),
    ("rejected_connections", "redis_rejected_connections_total", "counter",
     "Connections rejected because of maxclients.", None),
    ("expired_keys", "redis_expired_keys_total", "counter",
     "Keys removed because their TTL ran out.", None),
    ("expired_stale_perc", "redis_expired_stale_percentage", "gauge",
     "Estimated percentage of keys already expired but not yet removed.", None),
    ("expired_time_cap_reached_count", "redis_expired_time_cap_reached_total", "counter",
     "Active expire cycles stopped early by their time limit.", None),
    ("evicted_keys", "redis_evicted_keys_total", "counter",
     "Keys evicted because of maxmemory.", None),
    ("evicted_clients", "redis_evicted_clients_total", "counter",
     "Clients evicted because of maxmemory-clients.", None),
    ("total_eviction_exceeded_time", "redis_eviction_exceeded_seconds_total", "counter",
     "Time used_memory spent above maxmemory, in seconds.", _milli),
    ("keyspace_hits", "redis_keyspace_hits_total", "counter",
     "Successful key lookups (the key census' own lookups taken out).", None),
    ("keyspace_misses", "redis_keyspace_misses_total", "counter",
     "Key lookups that found nothing (the key census' own lookups taken out).", None),
    ("pubsub_channels", "redis_pubsub_channels", "gauge", "Pub/sub channels in use.", None),
    ("pubsub_patterns", "redis_pubsub_patterns", "gauge", "Pub/sub patterns in use.", None),
    ("total_error_replies", "redis_total_error_replies", "counter",
     "Error replies sent to clients.", None),
    ("unexpected_error_replies", "redis_unexpected_error_replies", "counter",
     "Unexpected error replies (AOF load, replication).", None),
    ("dump_payload_sanitizations", "redis_dump_payload_sanitizations", "counter",
     "Deep integrity checks of RESTORE payloads.", None),
    ("total_reads_processed", "redis_total_reads_processed", "counter",
     "Read events processed.", None),
    ("total_writes_processed", "redis_total_writes_processed", "counter",
     "Write events processed.", None),
    ("io_threaded_reads_processed", "redis_io_threaded_reads_processed", "counter",
     "Read events processed by I/O threads.", None),
    ("io_threaded_writes_processed", "redis_io_threaded_writes_processed", "counter",
     "Write events processed by I/O threads.", None),
    ("total_net_input_bytes", "redis_net_input_bytes_total", "counter",
     "Bytes received from clients.", None),
    ("total_net_output_bytes", "redis_net_output_bytes_total", "counter",
     "Bytes sent to clients.", None),
    ("total_net_repl_input_bytes", "redis_net_repl_input_bytes_total", "counter",
     "Bytes received for replication.", None),
    ("total_net_repl_output_bytes", "redis_net_repl_output_bytes_total", "counter",
     "Bytes sent for replication.", None),
    ("tracking_total_keys", "redis_tracking_total_keys", "gauge",
     "Keys tracked for client-side caching.", None),
    ("tracking_total_items", "redis_tracking_total_items", "gauge",
     "Client-key pairs tracked for client-side caching.", None),
    ("tracking_total_prefixes", "redis_tracking_total_prefixes", "gauge",
     "Prefixes tracked for broadcast client-side caching.", None),
    ("active_defrag_hits", "redis_defrag_hits", "counter",
     "Values moved by active defragmentation.", None),
    ("active_defrag_misses", "redis_defrag_misses", "counter",
     "Values active defragmentation looked at but left.", None),
    ("active_defrag_key_hits", "redis_defrag_key_hits", "counter",
     "Keys actively defragmented.", None),
    ("active_defrag_key_misses", "redis_defrag_key_misses", "counter",
     "Keys active defragmentation looked at but left.", None),
    ("sync_full", "redis_replica_resyncs_full", "counter", "Full resyncs with replicas.", None),
    ("sync_partial_ok", "redis_replica_partial_resync_accepted", "counter",
     "Partial resync requests accepted.", None),
    ("sync_partial_err", "redis_replica_partial_resync_denied", "counter",
     "Partial resync requests denied.", None),
    ("slave_expires_tracked_keys", "redis_slave_expires_tracked_keys", "gauge",
     "Keys tracked for expiry on a writable replica.", None),
    # Replication
    ("connected_slaves", "redis_connected_slaves", "gauge",
     "Replicas connected to this server.", None),
    ("master_repl_offset", "redis_master_repl_offset", "gauge",
     "Replication offset of this server.", None),
    ("second_repl_offset", "redis_second_repl_offset", "gauge",
     "Offset up to which the previous replication ID is accepted.", None),
    ("repl_backlog_active", "redis_repl_backlog_is_active", "gauge",
     "1 if the replication backlog is active.", None),
    ("repl_backlog_size", "redis_replication_backlog_bytes", "gauge",
     "Size of the replication backlog, in bytes.", None),
    ("repl_backlog_first_byte_offset", "redis_repl_backlog_first_byte_offset", "gauge",
     "Master offset of the backlog's first byte.", None),
    ("repl_backlog_histlen", "redis_repl_backlog_history_bytes", "gauge",
     "Data in the replication backlog, in bytes.", None),
    # CPU
    ("used_cpu_sys", "redis_cpu_sys_seconds_total", "counter",
     "System CPU time consumed by the server, in seconds.", None),
    ("used_cpu_user", "redis_cpu_user_seconds_total", "counter",
     "User CPU time consumed by the server, in seconds.", None),
    ("used_cpu_sys_children", "redis_cpu_sys_children_seconds_total", "counter",
     "System CPU time of forked children (saves, rewrites), in seconds.", None),
    ("used_cpu_user_children", "redis_cpu_user_children_seconds_total", "counter",
     "User CPU time of forked children (saves, rewrites), in seconds.", None),
    ("used_cpu_sys_main_thread", "redis_cpu_sys_main_thread_seconds_total", "counter",
     "System CPU time of the main thread, in seconds.", None),
    ("used_cpu_user_main_thread", "redis_cpu_user_main_thread_seconds_total", "counter",
     "User CPU time of the main thread, in seconds.", None),
]
INFO_METRICS: list[tuple[str, MetricDef, Any]] = [
    (field, MetricDef(name, help_, type_), conv)  # type: ignore[arg-type]
    for field, name, type_, help_, conv in _INFO_TABLE
]
_ACL_DENIED_FIELDS = {
    "acl_access_denied_auth": "auth",
    "acl_access_denied_cmd": "cmd",
    "acl_access_denied_key": "key",
    "acl_access_denied_channel": "channel",
}

INFO_ALL = (
    REDIS_UP,
    INSTANCE_INFO,
    START_TIME,
    DB_KEYS,
    DB_KEYS_EXPIRING,
    DB_AVG_TTL,
    HIT_RATIO,
    MEMORY_RATIO,
    *(d for _, d, _ in INFO_METRICS),
    ACL_DENIED,
    COMMANDS_TOTAL,
    COMMANDS_DURATION,
    COMMANDS_REJECTED,
    COMMANDS_FAILED,
    LATENCY_PERCENTILES,
    ERRORS_TOTAL,
    MASTER_LINK_UP,
    MASTER_LAST_IO,
    MASTER_SYNC,
    SLAVE_REPL_OFFSET,
    SLAVE_INFO,
    CONNECTED_SLAVE_OFFSET,
    CONNECTED_SLAVE_LAG,
    COMMAND_ALLOWED,
)

# --------------------------------------------------------------------- SLOWLOG and LATENCY

SLOWLOG_LENGTH = MetricDef("redis_slowlog_length", "Entries in the slowlog now.")
SLOWLOG_LAST_ID = MetricDef("redis_slowlog_last_id", "ID of the newest slowlog entry (0: none).")
SLOWLOG_ENTRIES = MetricDef(
    "redis_slowlog_entries_total",
    "Slowlog entries written since the server started (survives SLOWLOG RESET).",
    "counter",
)
LAST_SLOW_EXECUTION = MetricDef(
    "redis_last_slow_execution_duration_seconds",
    "Duration of the newest slowlog entry, in seconds (0: none).",
)
SLOWLOG_RECENT_MAX = MetricDef(
    "redis_slowlog_recent_max_duration_seconds",
    "Longest duration of the command among the newest slowlog entries (`slowlog_entries` of "
    "them), in seconds; by command name, never arguments.",
    labels=("cmd",),
)
SLOWLOG_RECENT_ENTRIES = MetricDef(
    "redis_slowlog_recent_entries",
    "Entries of the command among the newest slowlog entries (`slowlog_entries` of them).",
    labels=("cmd",),
)
LATENCY_SPIKE_LAST = MetricDef(
    "redis_latency_spike_last",
    "When the latest latency spike of the event happened, seconds since the epoch "
    "(LATENCY LATEST; needs latency-monitor-threshold).",
    labels=("event_name",),
)
LATENCY_SPIKE_DURATION = MetricDef(
    "redis_latency_spike_duration_seconds",
    "Duration of the latest latency spike of the event, in seconds.",
    labels=("event_name",),
)
SLOWLOG_ALL = (
    SLOWLOG_LENGTH,
    SLOWLOG_LAST_ID,
    SLOWLOG_ENTRIES,
    LAST_SLOW_EXECUTION,
    SLOWLOG_RECENT_MAX,
    SLOWLOG_RECENT_ENTRIES,
    LATENCY_SPIKE_LAST,
    LATENCY_SPIKE_DURATION,
)

# -------------------------------------------------------------------------------- posture

AUTH_REQUIRED = MetricDef(
    "redis_security_auth_required",
    "1 if a connection without credentials is refused (requirepass, or the ACL default user "
    "off or with a password), 0 if anyone who reaches the port can run commands.",
)
COMMAND_RENAMED = MetricDef(
    "redis_security_command_renamed",
    "1 if the dangerous command cannot be called by its own name (rename-command, to another "
    "name or to \"\"), else 0; seen with COMMAND INFO, without calling it.",
    labels=("command",),
)
COMMAND_DISABLED = MetricDef(
    "redis_security_command_disabled",
    "1 if the dangerous command is disabled altogether (rename-command to \"\"), else 0; "
    "Redis 7+ (COMMAND LIST).",
    labels=("command",),
)
PROTECTED_MODE = MetricDef(
    "redis_security_protected_mode", "1 if protected-mode is on (CONFIG GET), else 0."
)
CONFIG_SLOWLOG_THRESHOLD = MetricDef(
    "redis_config_slowlog_log_slower_than_seconds",
    "slowlog-log-slower-than in seconds (-1: slowlog off).",
)
CONFIG_SLOWLOG_MAX_LEN = MetricDef("redis_config_slowlog_max_len", "slowlog-max-len setting.")
POSTURE_ALL = (
    AUTH_REQUIRED,
    COMMAND_RENAMED,
    COMMAND_DISABLED,
    PROTECTED_MODE,
    CONFIG_SLOWLOG_THRESHOLD,
    CONFIG_SLOWLOG_MAX_LEN,
)

ALL = (*INFO_ALL, *SLOWLOG_ALL, *POSTURE_ALL)
CATALOG = (
    ("Redis INFO", INFO_ALL),
    ("Redis SLOWLOG, LATENCY LATEST", SLOWLOG_ALL),
    ("Redis COMMAND INFO/LIST, CONFIG GET, PING without credentials", POSTURE_ALL),
)

# What is left out when a command is refused (for the log line).
_LOST = {
    "INFO": "all INFO metrics",
    "SLOWLOG": "slowlog metrics",
    "LATENCY": "latency spike metrics",
    "COMMAND": "renamed-command detection",
    "CONFIG": "protected mode and slowlog settings",
    "SCAN": "the key census",
    "PEXPIRETIME": "the key census",
    "PTTL": "the key census",
    "TIME": "nothing (the exporter's clock is used for TTLs)",
    "MEMORY": "key group memory estimates",
}


# ------------------------------------------------------------------------------- parsing


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


def _pairs(value: str) -> dict[str, str]:
    """`keys=1,expires=0,avg_ttl=0` into a dict."""
    out = {}
    for part in value.split(","):
        key, sep, item = part.partition("=")
        if sep:
            out[key] = item
    return out


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def info_families(
    info: dict[str, str], selected_db: int = 0, now: float | None = None
) -> list[Family]:
    """Families from INFO ALL, parsed by `parse_info`."""
    families = []
    for field, metric, convert in INFO_METRICS:
        family = metric.family()
        if field in info:
            with contextlib.suppress(TypeError, ValueError):  # e.g. a field a fork left empty
                family.add(convert(info[field]) if convert else float(info[field]))
        families.append(family)

    identity = INSTANCE_INFO.family()
    identity.add(1, tuple((label, info.get(label, "")) for label in INSTANCE_INFO.labels))
    start = START_TIME.family()
    uptime = _number(info.get("uptime_in_seconds"))
    if uptime is not None:
        server_time = _number(info.get("server_time_usec"))
        clock = server_time / 1e6 if server_time else (now or time.time())
        start.add(math.floor(clock - uptime))  # uptime is whole seconds: never in the future
    families += [identity, start]

    keys, expiring, avg_ttl = DB_KEYS.family(), DB_KEYS_EXPIRING.family(), DB_AVG_TTL.family()
    dbs = {k: _pairs(v) for k, v in info.items() if k.startswith("db") and k[2:].isdigit()}
    dbs.setdefault(f"db{selected_db}", {})  # an empty database is 0 keys, not a missing series
    for name, stats in sorted(dbs.items(), key=lambda item: int(item[0][2:])):
        label = (("db", name),)
        keys.add(float(stats.get("keys", 0)), label)
        expiring.add(float(stats.get("expires", 0)), label)
        avg_ttl.add(float(stats.get("avg_ttl", 0)) / 1000, label)
    families += [keys, expiring, avg_ttl]

    ratio = HIT_RATIO.family()
    hits, misses = _number(info.get("keyspace_hits")), _number(info.get("keyspace_misses"))
    if hits is not None and misses is not None and hits + misses > 0:
        ratio.add(hits / (hits + misses))
    memory_ratio = MEMORY_RATIO.family()
    used, limit = _number(info.get("used_memory")), _number(info.get("maxmemory"))
    if used is not None and limit:  # maxmemory 0 means "no limit": never divide by it
        memory_ratio.add(used / limit)
    denied = ACL_DENIED.family()
    for field, reason in _ACL_DENIED_FIELDS.items():
        value = _number(info.get(field))
        if value is not None:
            denied.add(value, (("reason", reason),))
    families += [ratio, memory_ratio, denied]
    families += _command_families(info)
    families += _replication_families(info)
    return families


def _command_families(info: dict[str, str]) -> list[Family]:
    calls, spent = COMMANDS_TOTAL.family(), COMMANDS_DURATION.family()
    rejected, failed = COMMANDS_REJECTED.family(), COMMANDS_FAILED.family()
    percentiles, errors = LATENCY_PERCENTILES.family(), ERRORS_TOTAL.family()
    for field, value in info.items():
        if field.startswith("cmdstat_"):
            label = (("cmd", field[len("cmdstat_"):]),)
            stats = _pairs(value)
            for family, key, scale in (
                (calls, "calls", 1.0), (spent, "usec", 1e-6),
                (rejected, "rejected_calls", 1.0), (failed, "failed_calls", 1.0),
            ):
                number = _number(stats.get(key))
                if number is not None:
                    family.add(number * scale, label)
        elif field.startswith("latency_percentiles_usec_"):
            cmd = field[len("latency_percentiles_usec_"):]
            for quantile, number in _pairs(value).items():
                parsed = _number(number)
                if parsed is not None and quantile.startswith("p"):
                    percentiles.add(parsed, (("cmd", cmd), ("quantile", quantile[1:])))
        elif field.startswith("errorstat_"):
            count = _number(_pairs(value).get("count"))
            if count is not None:
                errors.add(count, (("err", field[len("errorstat_"):]),))
    return [calls, spent, rejected, failed, percentiles, errors]


def _replication_families(info: dict[str, str]) -> list[Family]:
    link, last_io, sync = MASTER_LINK_UP.family(), MASTER_LAST_IO.family(), MASTER_SYNC.family()
    offset, replica_info = SLAVE_REPL_OFFSET.family(), SLAVE_INFO.family()
    replica_offset, replica_lag = CONNECTED_SLAVE_OFFSET.family(), CONNECTED_SLAVE_LAG.family()
    if info.get("role") == "slave":
        master = (("master_host", info.get("master_host", "")),
                  ("master_port", info.get("master_port", "")))
        link.add(1.0 if info.get("master_link_status") == "up" else 0.0, master)
        for family, field in ((last_io, "master_last_io_seconds_ago"),
                              (sync, "master_sync_in_progress"), (offset, "slave_repl_offset")):
            number = _number(info.get(field))
            if number is not None:
                family.add(number, master)
        replica_info.add(1, (*master, ("read_only", info.get("slave_read_only", ""))))
    for field, value in info.items():
        if field.startswith("slave") and field[5:].isdigit():
            stats = _pairs(value)
            labels = (("slave_ip", stats.get("ip", "")), ("slave_port", stats.get("port", "")),
                      ("slave_state", stats.get("state", "")))
            for family, key in ((replica_offset, "offset"), (replica_lag, "lag")):
                number = _number(stats.get(key))
                if number is not None:
                    family.add(number, labels)
    return [link, last_io, sync, offset, replica_info, replica_offset, replica_lag]


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


# ------------------------------------------------------------------------------- clients

# Without CLIENT SETINFO: one command less on connect, and one less for the ACL to allow.
_NO_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}
)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=netloc))


def make_client(
    settings: RedisSettings,
    name: str | None,
    *,
    decode: bool = True,
    credentials: bool = True,
    retries: int = 1,
) -> aioredis.Redis:
    """A client with one connection, raw replies (no redis-py response parsing: INFO stays
    text, SLOWLOG keeps its argument lists) and the connection options of the settings."""
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.timeout,
        "decode_responses": decode,
        "protocol": 2,  # raw RESP2 replies: INFO as text, SLOWLOG entries as lists
        "encoding_errors": "replace",
        # One immediate retry replaces a pooled connection that a server restart closed.
        "retry": Retry(NoBackoff(), retries),
        **_NO_SETINFO,
    }
    if name:
        kwargs["client_name"] = name
    if credentials:
        if settings.username:
            kwargs["username"] = settings.username
        if settings.password is not None:
            kwargs["password"] = settings.password.get_secret_value()
    url = settings.url.get_secret_value() if settings.url is not None else None
    tls = settings.tls if url is None else url.startswith("rediss://")
    if tls:
        kwargs["ssl_cert_reqs"] = "none" if settings.tls_skip_verify else "required"
        kwargs["ssl_check_hostname"] = not settings.tls_skip_verify
        for key, path in (("ssl_ca_certs", settings.tls_ca_file),
                          ("ssl_certfile", settings.tls_cert_file),
                          ("ssl_keyfile", settings.tls_key_file)):
            if path is not None:
                kwargs[key] = str(path)
    pool_options = {"max_connections": 1, "timeout": settings.timeout}
    if url is not None:
        if not credentials:
            url = _without_credentials(url)
        pool = aioredis.BlockingConnectionPool.from_url(url, **pool_options, **kwargs)
    elif settings.socket is not None:
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=settings.socket,
            db=settings.db, **pool_options, **kwargs,
        )
    else:
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.SSLConnection if tls else aioredis.Connection,
            host=settings.host, port=settings.port, db=settings.db, **pool_options, **kwargs,
        )
    client = aioredis.Redis.from_pool(pool)
    client.response_callbacks.clear()
    return client


class CommandAccess:
    """Which commands the exporter may run here, learned by running them. A refusal is logged
    once (and again only when the reason changes), exported as 0, and the command is left alone
    for `recheck` seconds."""

    def __init__(self, recheck: float) -> None:
        self.recheck = recheck
        self._state: dict[str, tuple[bool, float, str]] = {}  # allowed, when, reason

    def may_try(self, command: str) -> bool:
        state = self._state.get(command)
        return state is None or state[0] or time.monotonic() - state[1] >= self.recheck

    def allowed(self, command: str) -> bool | None:
        state = self._state.get(command)
        return None if state is None else state[0]

    def report(self, command: str, error: BaseException | str | None) -> None:
        """Record a try; only a refusal by the server counts (not a lost connection)."""
        if error is not None and not isinstance(error, str | ResponseError):
            return
        previous = self._state.get(command)
        now = time.monotonic()
        if error is None:
            if previous is not None and not previous[0]:
                log.info("Redis: %s works now", command)
            self._state[command] = (True, now, "")
            return
        reason = error if isinstance(error, str) else safe_error(error)
        if previous is None or previous[0] or previous[2] != reason:
            log.warning(
                "Redis: the exporter cannot run %s (%s); left out: %s",
                command, reason, _LOST.get(command, "its metrics"),
            )
        self._state[command] = (False, now, reason)

    def family(self) -> Family:
        family = COMMAND_ALLOWED.family()
        for command, (allowed, _, _) in sorted(self._state.items()):
            family.add(1.0 if allowed else 0.0, (("command", command),))
        return family


# -------------------------------------------------------------------------------- source


class RedisSource:
    """The Redis collectors of one server."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self.up = False
        self._checked = False  # has INFO/PING been tried at all?
        self._last_error: str | None = None
        self._failures = 0
        self._retry_at = float("-inf")
        self._run_id = ""
        self._slowlog_seen: tuple[str, int] | None = None  # run_id, entries since start
        self.access = CommandAccess(recheck=settings.posture_interval)
        self.client = make_client(settings, "tmi-db-exporter")
        self.census: KeyCensus | None = None
        self.census_client: aioredis.Redis | None = None
        self._last_census: list[Family] | None = None
        groups = parse_key_groups(settings.key_groups)
        if groups:
            self.census_client = make_client(settings, "tmi-db-exporter-census", decode=False)
            db = int(self.census_client.connection_pool.connection_kwargs.get("db", 0) or 0)
            self.census = KeyCensus(
                self.census_client,
                groups,
                db,
                scan_count=settings.key_census_scan_count,
                pause=settings.key_census_pause,
                memory_samples=settings.key_census_memory_samples,
                ttl_buckets=settings.key_census_ttl_buckets,
                report=self.access.report,
                may_try=self.access.may_try,
            )

    def collectors(self, min_ttl: float) -> list[CachedCollector]:
        s = self.settings
        collectors = [
            # redis-py may spend a connect timeout and a retry before it gives up: outlast that,
            # so a hung server reads as a clean redis_up 0 rather than a collector timeout.
            CachedCollector(
                "redis", self._collect, ttl=0, timeout=s.timeout * 3 + 1,
                fallback=self._up_fallback, min_ttl=min_ttl,
            ),
            CachedCollector(
                "redis_slowlog", self._collect_slowlog, ttl=s.slowlog_interval,
                timeout=s.timeout * 2, min_ttl=min_ttl,
            ),
            CachedCollector(
                "redis_posture", self._collect_posture, ttl=s.posture_interval,
                timeout=s.timeout * 3, min_ttl=min_ttl,
            ),
        ]
        if self.census is not None:
            collectors.append(
                CachedCollector(
                    "redis_key_groups", self._collect_census, ttl=s.key_census_interval,
                    timeout=s.key_census_timeout, background=True, min_ttl=min_ttl,
                )
            )
        return collectors

    async def close(self) -> None:
        await self.client.aclose()
        if self.census_client is not None:
            await self.census_client.aclose()

    def _known_down(self) -> bool:
        return self._checked and not self.up

    # INFO, every scrape ------------------------------------------------------------------
    async def _collect(self) -> list[Family]:
        up = REDIS_UP.family()
        if self._known_down() and time.monotonic() < self._retry_at:
            up.add(0)  # backing off (see _mark): no new connection attempt yet
            return [up]
        try:
            if not self.access.may_try("INFO"):  # refused lately: PING until the recheck
                raise ResponseError("INFO refused lately")
            text = await self.client.execute_command("INFO", "ALL")
        except ResponseError as exc:  # reachable, but INFO is renamed or denied
            if str(exc) != "INFO refused lately":
                self.access.report("INFO", exc)
            try:
                await self.client.execute_command("PING")
            except (RedisError, OSError) as ping_error:
                return self._down(up, ping_error)
            up.add(1)
            self._mark(None)
            raise PartialFailure(
                [up, self.access.family()],
                "INFO is refused by the server; tried again every "
                f"{self.settings.posture_interval:g}s",
            ) from None
        except (RedisError, OSError) as exc:
            return self._down(up, exc)
        self.access.report("INFO", None)
        up.add(1)
        self._mark(None)
        info = parse_info(text)
        self._run_id = info.get("run_id", "")
        if self.census is not None:
            info = without_census_lookups(
                info, self.census.ttl_command, self.census.lookup_misses
            )
        return [up, *info_families(info, self.settings.db), self.access.family()]

    def _down(self, up: Family, error: BaseException) -> list[Family]:
        up.add(0)
        self._mark(error)
        return [up]

    def _up_fallback(self) -> list[Family]:
        """redis_up when INFO did not even fail in time (a hung server or link): down. The
        cache logs and counts the timeout."""
        self._checked, self.up = True, False
        up = REDIS_UP.family()
        up.add(0)
        return [up]

    def _mark(self, error: BaseException | None) -> None:
        self._checked = True
        if error is None:
            if not self.up:
                log.info("Redis %s is up", self.settings.describe())
            self.up, self._last_error, self._failures = True, None, 0
            return
        self._failures += 1
        self._retry_at = time.monotonic() + backoff(self._failures)
        message = str(error).strip() or type(error).__name__
        if message != self._last_error:
            log.warning("Redis %s is unreachable: %s", self.settings.describe(), message)
        self.up, self._last_error = False, message

    # SLOWLOG and LATENCY ------------------------------------------------------------------
    async def _collect_slowlog(self) -> list[Family]:
        if self._known_down():
            raise Unavailable
        want_slowlog, want_latency = self.access.may_try("SLOWLOG"), self.access.may_try("LATENCY")
        if not (want_slowlog or want_latency):
            raise Skipped("SLOWLOG and LATENCY are refused by the server")
        calls: list[tuple[str, tuple[Any, ...]]] = []
        if want_slowlog:
            calls += [("length", ("SLOWLOG", "LEN")),
                      ("entries", ("SLOWLOG", "GET", self.settings.slowlog_entries))]
            # The command names that tell a name from an argument (without INFO: all `other`).
            if self.access.may_try("INFO"):
                calls.append(("stats", ("INFO", "commandstats")))
        if want_latency:
            calls.append(("latest", ("LATENCY", "LATEST")))
        pipe = self.client.pipeline(transaction=False)
        for _, args in calls:
            pipe.execute_command(*args)
        try:
            replies = dict(zip([name for name, _ in calls],
                               await pipe.execute(raise_on_error=False), strict=True))
        except (RedisError, OSError):
            raise Unavailable from None
        families: list[Family] = []
        if want_slowlog:
            length, entries, stats = replies["length"], replies["entries"], replies.get("stats")
            error = next((r for r in (length, entries) if isinstance(r, ResponseError)), None)
            self.access.report("SLOWLOG", error)
            if isinstance(stats, ResponseError):
                self.access.report("INFO", stats)
            if error is None:
                known = {
                    field[len("cmdstat_"):]
                    for field in (parse_info(stats) if isinstance(stats, str) else {})
                    if field.startswith("cmdstat_")
                }
                families += self._slowlog_families(int(length), entries, known)
        if want_latency:
            latest = replies["latest"]
            if isinstance(latest, ResponseError):
                self.access.report("LATENCY", latest)
            else:
                self.access.report("LATENCY", None)
                families += _latency_families(latest)
        return families

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
        if newest:
            self._slowlog_seen = (self._run_id, int(newest[0]) + 1)
        elif self._slowlog_seen is not None and self._slowlog_seen[0] != self._run_id:
            self._slowlog_seen = None
        seen.add(self._slowlog_seen[1] if self._slowlog_seen else 0)
        longest, count = SLOWLOG_RECENT_MAX.family(), SLOWLOG_RECENT_ENTRIES.family()
        for entry in entries:
            label = (("cmd", slowlog_command(entry[3], known)),)
            duration = int(entry[2]) / 1e6
            longest.add(max(duration, longest.samples.get(label, 0.0)), label)
            count.add(count.samples.get(label, 0) + 1, label)
        return [size, last_id, seen, last, longest, count]

    # security posture ---------------------------------------------------------------------
    async def _collect_posture(self) -> list[Family]:
        if self._known_down():
            raise Unavailable
        families: list[Family] = []
        dangerous = sorted({c.upper() for c in self.settings.dangerous_commands})
        callable_: dict[str, bool] = {}
        if self.access.may_try("COMMAND"):
            checked = sorted({*dangerous, "CONFIG"})
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("COMMAND", "INFO", *checked)
            pipe.execute_command("COMMAND", "LIST")
            try:
                info, listed = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError):
                raise Unavailable from None
            self.access.report("COMMAND", info if isinstance(info, ResponseError) else None)
            if not isinstance(info, ResponseError):
                callable_ = {name: bool(entry) for name, entry in zip(checked, info, strict=True)}
                renamed, disabled = COMMAND_RENAMED.family(), COMMAND_DISABLED.family()
                names = None if isinstance(listed, ResponseError) else {n.lower() for n in listed}
                for name in dangerous:
                    label = (("command", name),)
                    renamed.add(0.0 if callable_[name] else 1.0, label)
                    if names is not None:  # COMMAND LIST: Redis 7+
                        disabled.add(0.0 if name.lower() in names else 1.0, label)
                families += [renamed, disabled]
        families += await self._config_families(callable_.get("CONFIG"))
        families += await self._auth_families()
        return families

    async def _config_families(self, config_callable: bool | None) -> list[Family]:
        """CONFIG GET of a few settings, unless CONFIG is known to be renamed away (then only
        by the name given in the settings) or was refused lately."""
        renamed_to = self.settings.config_command
        if renamed_to is None and config_callable is False:
            self.access.report("CONFIG", "renamed or disabled with rename-command; set "
                               "REDIS_CONFIG_COMMAND to let the exporter use the new name")
            return []
        if not self.access.may_try("CONFIG"):
            return []
        command = renamed_to.get_secret_value() if renamed_to is not None else "CONFIG"
        params = ("protected-mode", "slowlog-log-slower-than", "slowlog-max-len")
        pipe = self.client.pipeline(transaction=False)
        for param in params:  # one parameter per CONFIG GET works on every version
            pipe.execute_command(command, "GET", param)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError):
            raise Unavailable from None
        error = next((r for r in replies if isinstance(r, ResponseError)), None)
        self.access.report("CONFIG", error)
        if error is not None:
            return []
        values = {param: (reply[1] if len(reply) == 2 else None)
                  for param, reply in zip(params, replies, strict=True)}
        protected, threshold, max_len = (
            PROTECTED_MODE.family(), CONFIG_SLOWLOG_THRESHOLD.family(),
            CONFIG_SLOWLOG_MAX_LEN.family(),
        )
        if values["protected-mode"] is not None:
            protected.add(1.0 if values["protected-mode"] == "yes" else 0.0)
        micros = _number(values["slowlog-log-slower-than"])
        if micros is not None:
            threshold.add(micros / 1e6 if micros >= 0 else -1.0)
        length = _number(values["slowlog-max-len"])
        if length is not None:
            max_len.add(length)
        return [protected, threshold, max_len]

    async def _auth_families(self) -> list[Family]:
        """A PING on a fresh connection without credentials, as anyone on the network could."""
        probe = make_client(self.settings, None, credentials=False, retries=0)
        required = AUTH_REQUIRED.family()
        try:
            await probe.execute_command("PING")
            required.add(0)
        except AuthenticationError:  # NOAUTH
            required.add(1)
        except ResponseError as exc:  # e.g. NOPERM: let in as the default user, just not PING
            required.add(1.0 if str(exc).startswith("NOAUTH") else 0.0)
        except (RedisError, OSError):
            pass  # cannot tell; redis_up shows whether the server is there at all
        finally:
            await probe.aclose()
        return [required]

    # key census ---------------------------------------------------------------------------
    async def _collect_census(self) -> list[Family]:
        assert self.census is not None
        if self._known_down():
            raise Unavailable
        try:
            families = await self.census.run()
        except (KeyCensusError, RedisError, OSError) as exc:
            message = str(exc) if isinstance(exc, KeyCensusError) else safe_error(exc)
            if isinstance(exc, RedisError | OSError) and not isinstance(exc, ResponseError):
                message = f"{type(exc).__name__}: {exc}"  # connection trouble: no key inside
            if self._last_census is not None:
                raise PartialFailure(
                    self._last_census, f"key census failed, serving the previous one: {message}"
                ) from None
            raise KeyCensusError(f"key census failed: {message}") from None
        self._last_census = families
        return families


def _latency_families(latest: list[Any]) -> list[Family]:
    when, duration = LATENCY_SPIKE_LAST.family(), LATENCY_SPIKE_DURATION.family()
    for event in latest:
        if len(event) >= 3:
            label = (("event_name", str(event[0])),)
            when.add(float(event[1]), label)
            duration.add(float(event[2]) / 1e3, label)
    return [when, duration]
