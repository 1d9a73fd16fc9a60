"""TMI / Redis: memory, hit rate, commands, clients, keyspace, TMI key groups, slowlog,
persistence and security posture; one function per row."""

from __future__ import annotations

from typing import Any

from monitoring.dashboards.board import LINKS, Board, variables
from monitoring.dashboards.panels import (
    OK_FAILED,
    P99,
    UP_DOWN,
    bargauge,
    gauge,
    increase,
    metric_selector,
    pct,
    rate,
    stat,
    steps,
    table,
    timeseries,
)
from monitoring.thresholds import Thresholds, humanize_duration, num


def redis_dashboard(thresholds: Thresholds) -> dict[str, Any]:
    board = Board("redis", "TMI / Redis",
                  "Redis of a TMI deployment, from tmi-db-exporter: memory, hit rate, commands,"
                  " clients, keyspace, TMI key groups, slowlog, persistence and security"
                  " posture.",
                  variables("redis_up"), [LINKS["overview"], LINKS["postgres"]])
    for row in (_overview_row, _memory_row, _hit_rate_row, _commands_row, _clients_row,
                _key_groups_row, _slowlog_row, _persistence_row, _security_row):
        row(board, thresholds)
    return board.json()


def _hit_rate_alert(thresholds: Thresholds) -> str:
    hit = thresholds["TmiRedisLowHitRate"]
    return (f"Alert TmiRedisLowHitRate below {pct(hit['ratio'])} with more than"
            f" {num(hit['min_lookups_per_second'])} lookup(s) per second.")


def _hit_rate_steps(thresholds: Thresholds) -> dict[str, Any]:
    return steps("red", (thresholds["TmiRedisLowHitRate"]["ratio"], "green"))


def _overview_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Overview")
    board.add(stat(
        "Redis up", "1 when tmi-db-exporter can reach and authenticate to Redis. Alert"
        " TmiRedisDown below 1.",
        metric_selector("redis_up"), "none", thresholds=steps("red", (1, "green")),
        mappings=UP_DOWN, graph=False), 3, 4)
    board.add(stat(
        "Version and role", "Redis version and replication role (master or replica).",
        [(metric_selector("redis_instance_info"), "{{redis_version}} {{role}}")], "none",
        text_mode="name", graph=False), 3, 4)
    board.add(stat(
        "Uptime", "Time since Redis started; a drop is a restart (data since the last save is"
        " lost unless AOF is on).",
        metric_selector("redis_uptime_in_seconds"), "s", graph=False), 3, 4)
    board.add(stat(
        "Commands per second", "Commands processed per second; a drop to zero while TMI is in"
        " use means TMI lost Redis.",
        rate(metric_selector("redis_commands_processed_total")), "ops"), 3, 4)
    board.add(stat(
        "Connected clients", "Client connections (TMI's pool, the exporter, others); compare"
        " with maxclients in the Clients row.",
        metric_selector("redis_connected_clients"), "short"), 3, 4)
    board.add(stat(
        "Keys", "Keys in all databases; the TMI key groups row breaks them down by pattern.",
        f"sum({metric_selector('redis_db_keys')})", "short"), 3, 4)
    board.add(stat(
        "Memory used", "Memory allocated by Redis; the Memory row compares it with maxmemory.",
        metric_selector("redis_memory_used_bytes"), "bytes"), 3, 4)
    board.add(stat(
        "Hit rate (5 min)", "Lookups that found their key over 5 minutes. "
        + _hit_rate_alert(thresholds),
        metric_selector("instance:redis_keyspace_hits:ratio_rate5m"), "percentunit",
        thresholds=_hit_rate_steps(thresholds), decimals=1), 3, 4)


def _memory_row(board: Board, thresholds: Thresholds) -> None:
    memory = thresholds["TmiRedisMemoryNearMax"]
    board.row("Memory")
    board.add(timeseries(
        "Memory used vs maxmemory", "Allocated memory, memory held from the OS (RSS) and"
        " maxmemory when one is set.",
        [(metric_selector("redis_memory_used_bytes"), "used"),
         (metric_selector("redis_memory_used_rss_bytes"), "RSS"),
         (f"{metric_selector('redis_memory_max_bytes')} > 0", "maxmemory")], "bytes"), 10, 8)
    board.add(gauge(
        "Memory used of maxmemory", "Used memory as a share of maxmemory. Empty when maxmemory"
        " is 0 (no limit): then Redis grows until the host runs out, so set one (the guide uses"
        " 1gb with allkeys-lru). Alert TmiRedisMemoryNearMax above"
        f" {pct(memory['ratio'])}.",
        metric_selector("instance:redis_memory_used:ratio"), "percentunit",
        thresholds=steps("green", (memory["ratio"], "red")), minimum=0, maximum=1), 4, 8)
    board.add(stat(
        "Eviction policy", "maxmemory-policy: what Redis does at the limit (allkeys-lru evicts"
        " any key, noeviction refuses writes).",
        [(metric_selector("redis_instance_info"), "{{maxmemory_policy}}")], "none",
        text_mode="name", graph=False), 4, 4)
    board.add(stat(
        "Fragmentation", "RSS divided by allocated memory; well above 1.5 wastes memory"
        " (activedefrag helps), below 1 means the OS swapped Redis out.",
        metric_selector("redis_mem_fragmentation_ratio"), "short", decimals=2), 6, 4)
    _evictions(board, thresholds)


def _evictions(board: Board, thresholds: Thresholds) -> None:
    """The rest of the Memory row: evictions, peak memory, memory by use."""
    evictions = thresholds["TmiRedisEvictions"]
    board.add(stat(
        "Evicted keys (10 min)", "Keys evicted in the last 10 minutes because memory was full."
        f" Alert TmiRedisEvictions at {num(evictions['keys'])} or more.",
        increase(metric_selector("redis_evicted_keys_total"), "10m"), "short",
        thresholds=steps("green", (evictions["keys"], "red"))), 4, 4)
    board.add(stat(
        "Peak memory", "Highest memory allocated since start; size maxmemory and the host for"
        " this, not for the current value.",
        metric_selector("redis_memory_used_peak_bytes"), "bytes"), 6, 4)
    board.add(timeseries(
        "Memory by use", "Data set, internal overhead, Lua and scripts; overhead far above the"
        " data set means many tiny keys or client buffers.",
        [(metric_selector("redis_memory_used_dataset_bytes"), "data set"),
         (metric_selector("redis_memory_used_overhead_bytes"), "overhead"),
         (metric_selector("redis_memory_used_lua_bytes"), "Lua"),
         (metric_selector("redis_memory_used_scripts_bytes"), "scripts")], "bytes",
        stack=True), 12, 8)
    board.add(timeseries(
        "Evicted and expired keys per second", "Keys removed because memory was full (evicted)"
        " or their TTL ran out (expired). Alert TmiRedisEvictions at"
        f" {num(evictions['keys'])} or more evictions in 10 minutes.",
        [(rate(metric_selector("redis_evicted_keys_total")), "evicted"),
         (rate(metric_selector("redis_expired_keys_total")), "expired")], "ops"), 12, 8)


def _hit_rate_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Hit rate and keyspace")
    board.add(timeseries(
        "Hit rate", "Lookups that found their key: over 5 minutes, and since start (the guide's"
        " hit rate). A falling rate means cache keys expire before they are read again or the"
        " cache is cleared. " + _hit_rate_alert(thresholds),
        [(metric_selector("instance:redis_keyspace_hits:ratio_rate5m"), "5 min"),
         (metric_selector("redis_keyspace_hit_ratio"), "since start")], "percentunit",
        thresholds=_hit_rate_steps(thresholds), minimum=0, maximum=1), 8, 8)
    board.add(timeseries(
        "Lookups per second", "Key lookups that hit and missed (the exporter's own census"
        " lookups excluded).",
        [(rate(metric_selector("redis_keyspace_hits_total")), "hits"),
         (rate(metric_selector("redis_keyspace_misses_total")), "misses")], "ops"), 8, 8)
    board.add(timeseries(
        "Keys per database", "Keys, and keys with a TTL, per database; all TMI keys should have"
        " one.",
        [(metric_selector("redis_db_keys"), "{{db}} keys"),
         (metric_selector("redis_db_keys_expiring"), "{{db}} with TTL")], "short"), 8, 8)
    board.add(stat(
        "Average TTL", "Average remaining TTL of the keys with a TTL, per database; it should"
        " sit between the cache TTLs (minutes) and the session TTL (24 h).",
        [(metric_selector("redis_db_avg_ttl_seconds"), "{{db}}")], "s"), 6, 4)


def _commands_row(board: Board, thresholds: Thresholds) -> None:
    commands, seconds = (metric_selector("redis_commands_total"),
                         metric_selector("redis_commands_duration_seconds_total"))
    board.row("Commands and latency")
    board.add(timeseries(
        "Commands per second, top 10", "Calls per second by command; KEYS, FLUSHALL or CONFIG"
        " here should not happen in production.",
        [(f"topk(10, {rate(commands)})", "{{cmd}}")], "ops"), 8, 8)
    board.add(timeseries(
        "Mean time per call, slowest 10", "Time per call by command. Redis runs one command at"
        " a time: a slow command delays everyone.",
        [(f"topk(10, {rate(seconds)} / ({rate(commands)} > 0))", "{{cmd}}")], "s"), 8, 8)
    board.add(timeseries(
        "p99 latency by command", "99th percentile latency per command from INFO latencystats"
        " (Redis 7 and later).",
        [(f"topk(10, {metric_selector('redis_latency_percentiles_usec', P99)})", "{{cmd}}")],
        "µs"), 8, 8)
    board.add(timeseries(
        "Failed and rejected calls per second", "Calls refused before execution (unknown"
        " command, ACL, OOM) and calls that failed while running.",
        [(f"sum by (cmd) ({rate(metric_selector('redis_commands_rejected_calls_total'))})",
          "rejected {{cmd}}"),
         (f"sum by (cmd) ({rate(metric_selector('redis_commands_failed_calls_total'))})",
          "failed {{cmd}}")], "ops"), 8, 8)
    board.add(timeseries(
        "Error replies per second", "Error replies by error code (NOAUTH, OOM, WRONGTYPE, ...);"
        " the exporter's own auth check adds one NOAUTH per posture check when a password is"
        " required.",
        [(rate(metric_selector("redis_errors_total")), "{{err}}")], "ops"), 8, 8)
    board.add(timeseries(
        "Network traffic", "Bytes received from and sent to clients per second; output far"
        " above input means large values are read often.",
        [(rate(metric_selector("redis_net_input_bytes_total")), "in"),
         (rate(metric_selector("redis_net_output_bytes_total")), "out")], "Bps"), 8, 8)


def _clients_row(board: Board, thresholds: Thresholds) -> None:
    blocked = thresholds["TmiRedisBlockedClients"]
    rejected = thresholds["TmiRedisRejectedConnections"]
    board.row("Clients")
    board.add(timeseries(
        "Connected clients vs maxclients", "Client connections and the maxclients limit; at the"
        " limit Redis rejects new connections.",
        [(metric_selector("redis_connected_clients"), "connected"),
         (metric_selector("redis_config_maxclients"), "maxclients")], "short"), 8, 8)
    board.add(timeseries(
        "Blocked clients", "Clients waiting in BLPOP, WAIT and other blocking calls. Alert"
        f" TmiRedisBlockedClients at {num(blocked['clients'])} or more for a while.",
        [(metric_selector("redis_blocked_clients"), "blocked")], "short",
        thresholds=steps("green", (blocked["clients"], "orange"))), 8, 8)
    board.add(timeseries(
        "Rejected connections (5 min)", "Connections refused because maxclients was reached."
        " Find the client that leaks connections with CLIENT LIST. Alert"
        f" TmiRedisRejectedConnections at {num(rejected['connections'])} or more.",
        [(increase(metric_selector("redis_rejected_connections_total"), "5m"), "rejected")],
        "short", thresholds=steps("green", (rejected["connections"], "red"))), 8, 8)
    board.add(timeseries(
        "New connections per second", "Connections accepted per second; many means a client"
        " without connection pooling.",
        [(rate(metric_selector("redis_connections_received_total")), "accepted")], "ops"),
        12, 8)
    board.add(timeseries(
        "Largest client buffers", "Largest client input and output buffers lately; a huge"
        " output buffer is a slow consumer.",
        [(metric_selector("redis_client_recent_max_input_buffer_bytes"), "input"),
         (metric_selector("redis_client_recent_max_output_buffer_bytes"), "output")],
        "bytes"), 12, 8)


def _key_groups_row(board: Board, thresholds: Thresholds) -> None:
    no_ttl = thresholds["TmiRedisKeysWithoutTtl"]
    groups = no_ttl["key_groups"]
    board.row("TMI key groups")
    board.add(bargauge(
        "Keys by group", "Keys of each TMI key pattern at the last key census (session, cache,"
        " auth, rate_limit, lock; unclassified for the rest).",
        [(metric_selector("redis_key_group_count"), "{{key_group}}")], "short"), 8, 8)
    board.add(bargauge(
        "Keys without TTL", "Keys of each group without an expiry. Every TMI key pattern"
        " carries a TTL, so these never disappear on their own (sessions without TTL are the"
        " leak the guide cleans by hand). Alert TmiRedisKeysWithoutTtl at"
        f" {num(no_ttl['keys'])} or more in {groups}.",
        [(metric_selector("redis_key_group_keys_without_ttl", f'key_group=~"{groups}"'),
          "{{key_group}}")], "short", thresholds=steps("green", (no_ttl["keys"], "red"))), 8, 8)
    board.add(table(
        "Remaining TTL by group", "Keys per group whose remaining TTL is at most the column's"
        " seconds (cumulative; +Inf = every key with a TTL). Sessions should sit below a day,"
        " cache entries below 15 minutes.",
        metric_selector("redis_key_group_keys_by_ttl"), "short", matrix=("key_group", "le")),
        8, 8)
    board.add(timeseries(
        "Memory by group (estimate)", "Estimated memory of each group's keys (sampled MEMORY"
        " USAGE times keys).",
        [(metric_selector("redis_key_group_memory_usage_bytes"), "{{key_group}}")], "bytes",
        stack=True), 8, 8)
    board.add(timeseries(
        "Keys by group over time", "Keys per group at each census; a group that only grows has"
        " keys that do not expire.",
        [(metric_selector("redis_key_group_count"), "{{key_group}}")], "short"), 8, 8)
    board.add(stat(
        "Census age", "Time since the last key census finished (it runs every"
        " key_census_interval, 5 minutes by default).",
        f"time() - {metric_selector('redis_key_census_last_finished_timestamp_seconds')}", "s",
        graph=False), 4, 4)
    board.add(stat(
        "Census duration", "How long the last key census took; it pauses between SCAN steps, so"
        " long is fine, but it should finish well within key_census_interval.",
        metric_selector("redis_key_census_duration_seconds"), "s", graph=False), 4, 4)


def _slowlog_row(board: Board, thresholds: Thresholds) -> None:
    slowlog = thresholds["TmiRedisSlowlogGrowing"]
    board.row("Slowlog")
    board.add(timeseries(
        "Slowlog entries (10 min)", "Commands slower than slowlog-log-slower-than in the last 10"
        " minutes. Read them with SLOWLOG GET and look for KEYS, large SMEMBERS/HGETALL or Lua"
        f" scripts. Alert TmiRedisSlowlogGrowing at {num(slowlog['entries'])} or more.",
        [(increase(metric_selector("redis_slowlog_entries_total"), "10m"), "entries")],
        "short", thresholds=steps("green", (slowlog["entries"], "orange"))), 8, 8)
    board.add(table(
        "Slow commands among the newest entries", "Per command: the longest duration and the"
        " number of entries among the newest slowlog entries. Empty while the slowlog is.",
        [(metric_selector("redis_slowlog_recent_max_duration_seconds"), ""),
         (metric_selector("redis_slowlog_recent_entries"), "")], "s",
        columns={"Value #A": "longest", "Value #B": "entries"}, units={"entries": "short"}),
        8, 8)
    board.add(table(
        "Latency spikes", "Latest spike per event from LATENCY LATEST (needs"
        " latency-monitor-threshold). Fork spikes come from BGSAVE/AOF rewrites.",
        [(metric_selector("redis_latency_spike_duration_seconds"), ""),
         (f"{metric_selector('redis_latency_spike_last')} * 1000", "")], "s",
        columns={"Value #A": "duration", "Value #B": "when"},
        units={"when": "dateTimeFromNow"}), 8, 8)
    for title, description, metric, unit, graph in (
        ("Slowlog length", "Entries in the slowlog now; read them with SLOWLOG GET.",
         "redis_slowlog_length", "short", True),
        ("Newest slow command", "Duration of the newest slowlog entry; every client waited this"
         " long.", "redis_last_slow_execution_duration_seconds", "s", True),
        ("slowlog-log-slower-than", "The slowlog threshold (-1: slowlog off); the Redis default"
         " is 10 ms.", "redis_config_slowlog_log_slower_than_seconds", "s", False),
        ("slowlog-max-len", "Entries the slowlog keeps; older ones are dropped (the exporter"
         " counts them anyway).", "redis_config_slowlog_max_len", "short", False),
    ):
        board.add(stat(title, description, metric_selector(metric), unit, graph=graph), 6, 4)


def _persistence_row(board: Board, thresholds: Thresholds) -> None:
    no_save = thresholds["TmiRedisNoRecentSave"]
    board.row("Persistence")
    board.add(stat(
        "Last RDB save", "Whether the last BGSAVE succeeded; after a failure Redis refuses"
        " writes (stop-writes-on-bgsave-error). Check disk space and the Redis log. Alert"
        " TmiRedisLastBgsaveFailed below 1.",
        metric_selector("redis_rdb_last_bgsave_status"), "none", mappings=OK_FAILED,
        thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    board.add(stat(
        "Time since last save", "Time since the last successful RDB snapshot. Alert"
        f" TmiRedisNoRecentSave above {humanize_duration(no_save['seconds'])} while there are"
        " unsaved changes.",
        f"time() - {metric_selector('redis_rdb_last_save_timestamp_seconds')}", "s",
        thresholds=steps("green", (no_save["seconds"], "orange"))), 4, 4)
    board.add(stat(
        "Changes since last save", "Writes since the last RDB snapshot: what a crash would lose"
        " without AOF.",
        metric_selector("redis_rdb_changes_since_last_save"), "short"), 4, 4)
    _aof(board)


def _aof(board: Board) -> None:
    """The append-only file and fork half of the Persistence row."""
    board.add(stat(
        "AOF", "Whether append-only file persistence is on (the guide enables it: appendonly"
        " yes).",
        metric_selector("redis_aof_enabled"), "bool_on_off", graph=False), 4, 4)
    board.add(stat(
        "Last AOF write", "Whether the last write to the AOF succeeded. Alert"
        " TmiRedisAofWriteFailing below 1.",
        metric_selector("redis_aof_last_write_status"), "none", mappings=OK_FAILED,
        thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    board.add(stat(
        "Latest fork", "Duration of the latest fork (BGSAVE, AOF rewrite); Redis stalls"
        " meanwhile.",
        metric_selector("redis_latest_fork_seconds"), "s"), 4, 4)
    board.add(timeseries(
        "AOF size", "Current append-only file size and its size after the last rewrite. Empty"
        " while AOF is off.",
        [(metric_selector("redis_aof_current_size_bytes"), "current"),
         (metric_selector("redis_aof_base_size_bytes"), "after last rewrite")], "bytes"), 12, 8)
    board.add(timeseries(
        "Snapshots and rewrites per hour", "RDB saves and AOF rewrites per hour; each one forks"
        " Redis, see the latest fork time.",
        [(increase(metric_selector("redis_rdb_saves_total"), "1h"), "RDB saves"),
         (increase(metric_selector("redis_aof_rewrites_total"), "1h"), "AOF rewrites")],
        "short"), 12, 8)


def _security_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Security posture")
    board.add(stat(
        "Password required", "Whether a connection without credentials is refused. No: set"
        " requirepass or an ACL default user with a password (the guide's Redis security)."
        " Alert TmiRedisAuthNotRequired below 1.",
        metric_selector("redis_security_auth_required"), "bool_yes_no",
        thresholds=steps("red", (1, "green")), graph=False), 4, 4)
    board.add(stat(
        "protected-mode", "Whether protected-mode is on (it only protects a Redis without a"
        " password).",
        metric_selector("redis_security_protected_mode"), "bool_on_off", graph=False), 4, 4)
    board.add(table(
        "Dangerous commands", "Whether FLUSHDB, FLUSHALL, CONFIG and KEYS can still be called by"
        " their own names (renamed = no) and whether they are disabled altogether. Rename them"
        " in redis.conf (rename-command). Alert TmiRedisDangerousCommandsEnabled below 1 (not"
        " renamed).",
        [(metric_selector("redis_security_command_renamed"), ""),
         (metric_selector("redis_security_command_disabled"), "")], "bool_yes_no",
        columns={"Value #A": "renamed", "Value #B": "disabled"}, colored=("renamed",),
        thresholds=steps("red", (1, "green"))), 8, 8)
    board.add(table(
        "Commands the exporter may use", "Commands tmi-db-exporter tried, and whether the server"
        " allowed them (ACL, rename-command); refused ones leave their metrics out.",
        metric_selector("tmi_db_exporter_redis_command_allowed"), "bool_yes_no",
        columns={"Value": "allowed"}), 8, 8)
