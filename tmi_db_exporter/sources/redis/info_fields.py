"""The INFO fields exported one to one, as plain data: INFO field -> metric name, type and help,
section by section in the order INFO lists them, named as redis_exporter names them.

The INFO collector (info.py) defines a metric for each and fills it with the field's value. The
figures that need labels or arithmetic (keyspace, commandstats, replicas, ratios) are built
there instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tmi_db_exporter.core.exposition import MetricType


@dataclass(frozen=True, slots=True)
class InfoField:
    """One INFO field as one metric without labels."""

    metric: str
    help: str
    type: MetricType
    convert: Callable[[str], float]  # the field's text into the metric's value and unit


def gauge(metric: str, help: str, convert: Callable[[str], float] = float) -> InfoField:
    return InfoField(metric, help, "gauge", convert)


def counter(metric: str, help: str, convert: Callable[[str], float] = float) -> InfoField:
    return InfoField(metric, help, "counter", convert)


def _ok_as_one(value: str) -> float:
    """A last-run status: `ok` is 1, anything else (`err`) 0."""
    return 1.0 if value == "ok" else 0.0


def _microseconds(value: str) -> float:
    return float(value) / 1e6


def _milliseconds(value: str) -> float:
    return float(value) / 1e3


INFO_FIELDS: dict[str, InfoField] = {
    # Server
    "uptime_in_seconds": gauge("redis_uptime_in_seconds", "Seconds since start."),
    "io_threads_active": gauge("redis_io_threads_active", "1 while I/O threads are active."),
    # Clients
    "connected_clients": gauge("redis_connected_clients", "Client connections."),
    "blocked_clients": gauge(
        "redis_blocked_clients", "Clients waiting in a blocking call (BLPOP, ...)."
    ),
    "tracking_clients": gauge(
        "redis_tracking_clients", "Clients with client-side caching (tracking) on."
    ),
    "clients_in_timeout_table": gauge(
        "redis_clients_in_timeout_table", "Blocked clients with a timeout."
    ),
    "maxclients": gauge("redis_config_maxclients", "maxclients setting."),
    "client_recent_max_input_buffer": gauge(
        "redis_client_recent_max_input_buffer_bytes",
        "Largest client input buffer lately, in bytes.",
    ),
    "client_recent_max_output_buffer": gauge(
        "redis_client_recent_max_output_buffer_bytes",
        "Largest client output buffer lately, in bytes.",
    ),
    "cluster_connections": gauge("redis_cluster_connections", "Cluster bus connections."),
    # Memory
    "used_memory": gauge("redis_memory_used_bytes", "Memory allocated by Redis, in bytes."),
    "used_memory_rss": gauge(
        "redis_memory_used_rss_bytes", "Memory held from the operating system (RSS), in bytes."
    ),
    "used_memory_peak": gauge(
        "redis_memory_used_peak_bytes", "Peak memory allocated by Redis, in bytes."
    ),
    "used_memory_overhead": gauge(
        "redis_memory_used_overhead_bytes", "Memory for internal structures (not data), in bytes."
    ),
    "used_memory_startup": gauge(
        "redis_memory_used_startup_bytes", "Memory allocated at startup, in bytes."
    ),
    "used_memory_dataset": gauge(
        "redis_memory_used_dataset_bytes", "Memory holding the data set, in bytes."
    ),
    "used_memory_lua": gauge("redis_memory_used_lua_bytes", "Memory of the Lua engine, in bytes."),
    "used_memory_scripts": gauge(
        "redis_memory_used_scripts_bytes", "Memory of cached scripts, in bytes."
    ),
    "total_system_memory": gauge(
        "redis_total_system_memory_bytes", "Memory of the host, in bytes."
    ),
    "maxmemory": gauge("redis_memory_max_bytes", "maxmemory setting in bytes; 0 means no limit."),
    "mem_fragmentation_ratio": gauge(
        "redis_mem_fragmentation_ratio", "RSS divided by allocated memory."
    ),
    "mem_fragmentation_bytes": gauge(
        "redis_mem_fragmentation_bytes", "RSS minus allocated memory, in bytes."
    ),
    "allocator_allocated": gauge(
        "redis_allocator_allocated_bytes", "Bytes allocated by the allocator."
    ),
    "allocator_active": gauge(
        "redis_allocator_active_bytes", "Bytes in the allocator's active pages."
    ),
    "allocator_resident": gauge(
        "redis_allocator_resident_bytes", "Bytes resident in the allocator."
    ),
    "allocator_frag_ratio": gauge("redis_allocator_frag_ratio", "Allocator fragmentation ratio."),
    "allocator_frag_bytes": gauge(
        "redis_allocator_frag_bytes", "Allocator fragmentation, in bytes."
    ),
    "allocator_rss_ratio": gauge(
        "redis_allocator_rss_ratio", "Allocator resident to active ratio."
    ),
    "allocator_rss_bytes": gauge(
        "redis_allocator_rss_bytes", "Allocator resident minus active, in bytes."
    ),
    "mem_not_counted_for_evict": gauge(
        "redis_mem_not_counted_for_eviction_bytes",
        "Memory not counted for maxmemory (replication and AOF buffers), in bytes.",
    ),
    "mem_clients_slaves": gauge(
        "redis_mem_clients_slaves", "Memory of replica client buffers, in bytes."
    ),
    "mem_clients_normal": gauge(
        "redis_mem_clients_normal", "Memory of normal client buffers, in bytes."
    ),
    "lazyfree_pending_objects": gauge(
        "redis_lazyfree_pending_objects", "Objects waiting to be freed in the background."
    ),
    "active_defrag_running": gauge(
        "redis_active_defrag_running", "1 while active defragmentation runs."
    ),
    # Persistence
    "loading": gauge("redis_loading_dump_file", "1 while a dump file is being loaded."),
    "rdb_changes_since_last_save": gauge(
        "redis_rdb_changes_since_last_save", "Writes since the last RDB snapshot."
    ),
    "rdb_bgsave_in_progress": gauge(
        "redis_rdb_bgsave_in_progress", "1 while a background RDB save runs."
    ),
    "rdb_last_save_time": gauge(
        "redis_rdb_last_save_timestamp_seconds",
        "Last successful RDB save (LASTSAVE), seconds since the epoch.",
    ),
    "rdb_last_bgsave_status": gauge(
        "redis_rdb_last_bgsave_status",
        "1 if the last background RDB save succeeded, else 0.",
        _ok_as_one,
    ),
    "rdb_last_bgsave_time_sec": gauge(
        "redis_rdb_last_bgsave_duration_sec",
        "Duration of the last background RDB save in seconds (-1: none yet).",
    ),
    "rdb_current_bgsave_time_sec": gauge(
        "redis_rdb_current_bgsave_duration_sec",
        "Duration of the running background RDB save in seconds (-1: none).",
    ),
    "rdb_last_cow_size": gauge(
        "redis_rdb_last_cow_size_bytes", "Copy-on-write memory of the last RDB save, in bytes."
    ),
    "rdb_saves": counter("redis_rdb_saves_total", "RDB snapshots made since start."),
    "aof_enabled": gauge("redis_aof_enabled", "1 if AOF persistence is on."),
    "aof_rewrite_in_progress": gauge(
        "redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs."
    ),
    "aof_rewrite_scheduled": gauge(
        "redis_aof_rewrite_scheduled", "1 while an AOF rewrite waits for an RDB save to finish."
    ),
    "aof_last_rewrite_time_sec": gauge(
        "redis_aof_last_rewrite_duration_sec",
        "Duration of the last AOF rewrite in seconds (-1: none yet).",
    ),
    "aof_current_rewrite_time_sec": gauge(
        "redis_aof_current_rewrite_duration_sec",
        "Duration of the running AOF rewrite in seconds (-1: none).",
    ),
    "aof_last_bgrewrite_status": gauge(
        "redis_aof_last_bgrewrite_status",
        "1 if the last AOF rewrite succeeded, else 0.",
        _ok_as_one,
    ),
    "aof_last_write_status": gauge(
        "redis_aof_last_write_status", "1 if the last AOF write succeeded, else 0.", _ok_as_one
    ),
    "aof_last_cow_size": gauge(
        "redis_aof_last_cow_size_bytes", "Copy-on-write memory of the last AOF rewrite, in bytes."
    ),
    "aof_rewrites": counter("redis_aof_rewrites_total", "AOF rewrites since start."),
    "aof_current_size": gauge(
        "redis_aof_current_size_bytes", "Current AOF size, in bytes (AOF on only)."
    ),
    "aof_base_size": gauge(
        "redis_aof_base_size_bytes", "AOF size after the last rewrite, in bytes (AOF on only)."
    ),
    "aof_buffer_length": gauge("redis_aof_buffer_length", "AOF buffer size."),
    "aof_pending_bio_fsync": gauge(
        "redis_aof_pending_bio_fsync", "fsync jobs waiting in the background queue."
    ),
    "aof_delayed_fsync": counter("redis_aof_delayed_fsync", "Delayed AOF fsyncs."),
    "module_fork_in_progress": gauge(
        "redis_module_fork_in_progress", "1 while a module fork runs."
    ),
    "latest_fork_usec": gauge(
        "redis_latest_fork_seconds",
        "Duration of the latest fork, in seconds (the server stalls meanwhile).",
        _microseconds,
    ),
    "total_forks": counter("redis_forks_total", "Forks since start."),
    # Stats
    "total_commands_processed": counter(
        "redis_commands_processed_total", "Commands processed by the server."
    ),
    "total_connections_received": counter(
        "redis_connections_received_total", "Connections accepted by the server."
    ),
    "rejected_connections": counter(
        "redis_rejected_connections_total", "Connections rejected because of maxclients."
    ),
    "expired_keys": counter("redis_expired_keys_total", "Keys removed because their TTL ran out."),
    "expired_stale_perc": gauge(
        "redis_expired_stale_percentage",
        "Estimated percentage of keys already expired but not yet removed.",
    ),
    "expired_time_cap_reached_count": counter(
        "redis_expired_time_cap_reached_total",
        "Active expire cycles stopped early by their time limit.",
    ),
    "evicted_keys": counter("redis_evicted_keys_total", "Keys evicted because of maxmemory."),
    "evicted_clients": counter(
        "redis_evicted_clients_total", "Clients evicted because of maxmemory-clients."
    ),
    "total_eviction_exceeded_time": counter(
        "redis_eviction_exceeded_seconds_total",
        "Time used_memory spent above maxmemory, in seconds.",
        _milliseconds,
    ),
    "keyspace_hits": counter(
        "redis_keyspace_hits_total",
        "Successful key lookups (the key census' own lookups taken out).",
    ),
    "keyspace_misses": counter(
        "redis_keyspace_misses_total",
        "Key lookups that found nothing (the key census' own lookups taken out).",
    ),
    "pubsub_channels": gauge("redis_pubsub_channels", "Pub/sub channels in use."),
    "pubsub_patterns": gauge("redis_pubsub_patterns", "Pub/sub patterns in use."),
    "total_error_replies": counter("redis_total_error_replies", "Error replies sent to clients."),
    "unexpected_error_replies": counter(
        "redis_unexpected_error_replies", "Unexpected error replies (AOF load, replication)."
    ),
    "dump_payload_sanitizations": counter(
        "redis_dump_payload_sanitizations", "Deep integrity checks of RESTORE payloads."
    ),
    "total_reads_processed": counter("redis_total_reads_processed", "Read events processed."),
    "total_writes_processed": counter("redis_total_writes_processed", "Write events processed."),
    "io_threaded_reads_processed": counter(
        "redis_io_threaded_reads_processed", "Read events processed by I/O threads."
    ),
    "io_threaded_writes_processed": counter(
        "redis_io_threaded_writes_processed", "Write events processed by I/O threads."
    ),
    "total_net_input_bytes": counter("redis_net_input_bytes_total", "Bytes received from clients."),
    "total_net_output_bytes": counter("redis_net_output_bytes_total", "Bytes sent to clients."),
    "total_net_repl_input_bytes": counter(
        "redis_net_repl_input_bytes_total", "Bytes received for replication."
    ),
    "total_net_repl_output_bytes": counter(
        "redis_net_repl_output_bytes_total", "Bytes sent for replication."
    ),
    "tracking_total_keys": gauge(
        "redis_tracking_total_keys", "Keys tracked for client-side caching."
    ),
    "tracking_total_items": gauge(
        "redis_tracking_total_items", "Client-key pairs tracked for client-side caching."
    ),
    "tracking_total_prefixes": gauge(
        "redis_tracking_total_prefixes", "Prefixes tracked for broadcast client-side caching."
    ),
    "active_defrag_hits": counter("redis_defrag_hits", "Values moved by active defragmentation."),
    "active_defrag_misses": counter(
        "redis_defrag_misses", "Values active defragmentation looked at but left."
    ),
    "active_defrag_key_hits": counter("redis_defrag_key_hits", "Keys actively defragmented."),
    "active_defrag_key_misses": counter(
        "redis_defrag_key_misses", "Keys active defragmentation looked at but left."
    ),
    "sync_full": counter("redis_replica_resyncs_full", "Full resyncs with replicas."),
    "sync_partial_ok": counter(
        "redis_replica_partial_resync_accepted", "Partial resync requests accepted."
    ),
    "sync_partial_err": counter(
        "redis_replica_partial_resync_denied", "Partial resync requests denied."
    ),
    "slave_expires_tracked_keys": gauge(
        "redis_slave_expires_tracked_keys", "Keys tracked for expiry on a writable replica."
    ),
    # Replication
    "connected_slaves": gauge("redis_connected_slaves", "Replicas connected to this server."),
    "master_repl_offset": gauge("redis_master_repl_offset", "Replication offset of this server."),
    "second_repl_offset": gauge(
        "redis_second_repl_offset", "Offset up to which the previous replication ID is accepted."
    ),
    "repl_backlog_active": gauge(
        "redis_repl_backlog_is_active", "1 if the replication backlog is active."
    ),
    "repl_backlog_size": gauge(
        "redis_replication_backlog_bytes", "Size of the replication backlog, in bytes."
    ),
    "repl_backlog_first_byte_offset": gauge(
        "redis_repl_backlog_first_byte_offset", "Master offset of the backlog's first byte."
    ),
    "repl_backlog_histlen": gauge(
        "redis_repl_backlog_history_bytes", "Data in the replication backlog, in bytes."
    ),
    # CPU
    "used_cpu_sys": counter(
        "redis_cpu_sys_seconds_total", "System CPU time consumed by the server, in seconds."
    ),
    "used_cpu_user": counter(
        "redis_cpu_user_seconds_total", "User CPU time consumed by the server, in seconds."
    ),
    "used_cpu_sys_children": counter(
        "redis_cpu_sys_children_seconds_total",
        "System CPU time of forked children (saves, rewrites), in seconds.",
    ),
    "used_cpu_user_children": counter(
        "redis_cpu_user_children_seconds_total",
        "User CPU time of forked children (saves, rewrites), in seconds.",
    ),
    "used_cpu_sys_main_thread": counter(
        "redis_cpu_sys_main_thread_seconds_total", "System CPU time of the main thread, in seconds."
    ),
    "used_cpu_user_main_thread": counter(
        "redis_cpu_user_main_thread_seconds_total", "User CPU time of the main thread, in seconds."
    ),
}
