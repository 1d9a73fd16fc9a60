"""Alerts on TMI's Redis, by area: memory and cache, clients, persistence, keys, security."""

from __future__ import annotations

from monitoring.rules.model import Alert, expect, firing, lbl, one_series_cases, quiet, series, val
from monitoring.thresholds import Thresholds, humanize_duration, humanize_percentage, num


def redis_alerts(thresholds: Thresholds) -> list[Alert]:
    return [
        *_up_and_memory(thresholds),
        _hit_rate(thresholds),
        *_clients(thresholds),
        *_persistence(thresholds),
        *_keys_and_security(thresholds),
    ]


def _up_and_memory(thresholds: Thresholds) -> list[Alert]:
    memory = thresholds["TmiRedisMemoryNearMax"]
    evictions = thresholds["TmiRedisEvictions"]
    used, limit = series("redis_memory_used_bytes"), series("redis_memory_max_bytes")
    return [
        Alert(
            name="TmiRedisDown", group="redis", severity="critical", expr="redis_up < 1",
            summary="Redis is unreachable from " + lbl("instance"),
            description="tmi-db-exporter on " + lbl("instance") + " cannot reach or authenticate"
            " to Redis (redis_up is 0). TMI sessions, caches and rate limits are unavailable.",
            condition="redis_up is 0",
            cases=one_series_cases("redis_up", fires=("down", "0x30", 0),
                                   stays_quiet=("up", "1x30")),
        ),
        Alert(
            name="TmiRedisMemoryNearMax", group="redis", severity="warning",
            expr=f"instance:redis_memory_used:ratio > {num(memory['ratio'])}",
            summary="Redis uses " + val("humanizePercentage") + " of maxmemory",
            description="Redis behind " + lbl("instance") + " uses " + val("humanizePercentage")
            + " of its maxmemory. At the limit it evicts keys (sessions too) or, with"
            " noeviction, refuses writes.",
            condition=f"above {humanize_percentage(memory['ratio'])} of maxmemory (never without"
            " a maxmemory)",
            cases=[
                firing("95 % of 1 GB", [(used, "950000000x40"), (limit, "1000000000x40")],
                       expect(0.95)),
                quiet("50 % of 1 GB", [(used, "500000000x40"), (limit, "1000000000x40")]),
                quiet("no maxmemory set", [(used, "950000000x40"), (limit, "0x40")]),
            ],
        ),
        Alert(
            name="TmiRedisEvictions", group="redis", severity="warning",
            expr=f"increase(redis_evicted_keys_total[10m]) >= {num(evictions['keys'])}",
            summary="Redis evicted " + val("humanize") + " keys in 10 minutes",
            description="Redis behind " + lbl("instance") + " evicted " + val("humanize")
            + " keys in the last 10 minutes because it reached maxmemory. Evicted sessions log"
            " TMI users out.",
            condition=f"at least {num(evictions['keys'])} key(s) evicted in 10 minutes",
            cases=one_series_cases("redis_evicted_keys_total",
                                   fires=("one eviction a minute", "0+1x40", 10),
                                   stays_quiet=("no evictions", "12x40")),
        ),
    ]


def _hit_rate(thresholds: Thresholds) -> Alert:
    hit = thresholds["TmiRedisLowHitRate"]
    hits, misses = series("redis_keyspace_hits_total"), series("redis_keyspace_misses_total")
    return Alert(
        name="TmiRedisLowHitRate", group="redis", severity="warning",
        expr=f"instance:redis_keyspace_hits:ratio_rate5m < {num(hit['ratio'])}\n"
        f"and instance:redis_keyspace_lookups:rate5m > {num(hit['min_lookups_per_second'])}",
        summary="Redis hit rate is " + val("humanizePercentage"),
        description="Only " + val("humanizePercentage") + " of key lookups on "
        + lbl("instance") + " found their key over the last 5 minutes: TMI reads from PostgreSQL"
        " what it should find in its cache.",
        condition=f"hit rate below {humanize_percentage(hit['ratio'])} with more than"
        f" {num(hit['min_lookups_per_second'])} lookup(s) per second",
        cases=[
            firing("70 % hits", [(hits, "0+70x40"), (misses, "0+30x40")], expect(0.7)),
            quiet("90 % hits", [(hits, "0+90x40"), (misses, "0+10x40")]),
            quiet("50 % hits, but hardly any lookups", [(hits, "0+5x40"), (misses, "0+5x40")]),
        ],
    )


def _clients(thresholds: Thresholds) -> list[Alert]:
    rejected = thresholds["TmiRedisRejectedConnections"]
    blocked = thresholds["TmiRedisBlockedClients"]
    return [
        Alert(
            name="TmiRedisRejectedConnections", group="redis", severity="warning",
            expr="increase(redis_rejected_connections_total[5m])"
            f" >= {num(rejected['connections'])}",
            summary="Redis rejected " + val("humanize") + " connections (maxclients)",
            description="Redis behind " + lbl("instance") + " refused " + val("humanize")
            + " connections in the last 5 minutes because it reached maxclients; TMI requests"
            " fail.",
            condition=f"at least {num(rejected['connections'])} connection(s) rejected in"
            " 5 minutes",
            cases=one_series_cases("redis_rejected_connections_total",
                                   fires=("rejecting", "0+1x30", 5),
                                   stays_quiet=("none rejected", "4x30")),
        ),
        Alert(
            name="TmiRedisBlockedClients", group="redis", severity="warning",
            expr=f"redis_blocked_clients >= {num(blocked['clients'])}",
            summary=val("humanize") + " Redis client(s) blocked",
            description=val("humanize") + " client(s) of Redis behind " + lbl("instance")
            + " have been waiting in a blocking command (BLPOP, WAIT, ...) for a while.",
            condition=f"at least {num(blocked['clients'])} blocked client(s)",
            cases=one_series_cases("redis_blocked_clients", fires=("three blocked", "3x40", 3),
                                   stays_quiet=("none blocked", "0x40")),
        ),
    ]


def _persistence(thresholds: Thresholds) -> list[Alert]:
    return [
        Alert(
            name="TmiRedisLastBgsaveFailed", group="redis", severity="critical",
            expr="redis_rdb_last_bgsave_status < 1",
            summary="Redis could not write its last RDB snapshot",
            description="The last background save of Redis behind " + lbl("instance")
            + " failed. With stop-writes-on-bgsave-error (the default) Redis now refuses every"
            " write.",
            condition="the last BGSAVE failed",
            cases=one_series_cases("redis_rdb_last_bgsave_status", fires=("failed", "0x20", 0),
                                   stays_quiet=("ok", "1x20")),
        ),
        _no_recent_save(thresholds),
        Alert(
            name="TmiRedisAofWriteFailing", group="redis", severity="critical",
            expr="redis_aof_last_write_status < 1",
            summary="Redis cannot write its append-only file",
            description="The last write to the AOF of Redis behind " + lbl("instance")
            + " failed (disk full or read-only?). Redis refuses writes until it can write the"
            " AOF again.",
            condition="the last AOF write failed",
            cases=one_series_cases("redis_aof_last_write_status", fires=("failed", "0x20", 0),
                                   stays_quiet=("ok", "1x20")),
        ),
    ]


def _no_recent_save(thresholds: Thresholds) -> Alert:
    no_save = thresholds["TmiRedisNoRecentSave"]

    def inputs(last_save: str, changes: str) -> list[tuple[str, str]]:
        return [(series("redis_rdb_last_save_timestamp_seconds"), last_save),
                (series("redis_rdb_changes_since_last_save"), changes)]

    return Alert(
        name="TmiRedisNoRecentSave", group="redis", severity="warning",
        expr=f"time() - redis_rdb_last_save_timestamp_seconds > {num(no_save['seconds'])}\n"
        "and redis_rdb_changes_since_last_save >= 1",
        summary="Redis has not saved a snapshot for " + val("humanizeDuration"),
        description="Redis behind " + lbl("instance") + " last wrote an RDB snapshot "
        + val("humanizeDuration") + " ago and has unsaved changes; a restart now loses them.",
        condition=f"no snapshot for {humanize_duration(no_save['seconds'])} while there are"
        " changes",
        cases=[
            firing("never saved since start", inputs("0x110", "500x110"), expect(6000),
                   eval_minutes=100),
            quiet("saving every minute", inputs("0+60x110", "500x110"), eval_minutes=100),
            quiet("old snapshot but nothing changed", inputs("0x110", "0x110"), eval_minutes=100),
        ],
    )


def _keys_and_security(thresholds: Thresholds) -> list[Alert]:
    slowlog = thresholds["TmiRedisSlowlogGrowing"]
    return [
        Alert(
            name="TmiRedisSlowlogGrowing", group="redis", severity="warning",
            expr=f"increase(redis_slowlog_entries_total[10m]) >= {num(slowlog['entries'])}",
            summary="Redis logged " + val("humanize") + " slow commands in 10 minutes",
            description="Redis behind " + lbl("instance") + " wrote " + val("humanize")
            + " slowlog entries in the last 10 minutes; every one of them blocked all other"
            " clients while it ran.",
            condition=f"at least {num(slowlog['entries'])} slowlog entries in 10 minutes",
            cases=one_series_cases("redis_slowlog_entries_total",
                                   fires=("two per minute", "0+2x40", 20),
                                   stays_quiet=("one every two minutes", "0+0.5x40")),
        ),
        _keys_without_ttl(thresholds),
        Alert(
            name="TmiRedisDangerousCommandsEnabled", group="redis", severity="warning",
            expr="redis_security_command_renamed < 1",
            summary="Redis command " + lbl("command") + " is callable by its own name",
            description="Anyone who can authenticate to Redis behind " + lbl("instance")
            + " can run " + lbl("command") + ". The guide renames FLUSHDB, FLUSHALL, CONFIG and"
            " KEYS.",
            condition="a dangerous command is not renamed",
            cases=one_series_cases("redis_security_command_renamed",
                                   fires=("FLUSHALL not renamed", "0x40", 0),
                                   stays_quiet=("FLUSHALL renamed", "1x40"), command="FLUSHALL"),
        ),
        Alert(
            name="TmiRedisAuthNotRequired", group="redis", severity="critical",
            expr="redis_security_auth_required < 1",
            summary="Redis accepts commands without a password",
            description="A connection to Redis behind " + lbl("instance") + " without"
            " credentials can run commands: anyone who reaches the port can read TMI sessions"
            " and auth tokens.",
            condition="a PING without credentials succeeds",
            cases=one_series_cases("redis_security_auth_required", fires=("open", "0x40", 0),
                                   stays_quiet=("password required", "1x40")),
        ),
    ]


def _keys_without_ttl(thresholds: Thresholds) -> Alert:
    no_ttl = thresholds["TmiRedisKeysWithoutTtl"]
    groups = no_ttl["key_groups"]
    metric = "redis_key_group_keys_without_ttl"
    return Alert(
        name="TmiRedisKeysWithoutTtl", group="redis", severity="warning",
        expr=f'{metric}{{key_group=~"{groups}"}} >= {num(no_ttl["keys"])}',
        summary=val("humanize") + " " + lbl("key_group") + " keys in Redis have no TTL",
        description="The key census found " + val("humanize") + " keys of group "
        + lbl("key_group") + " in " + lbl("db") + " without an expiry. Every TMI key pattern"
        " carries a TTL; these keys never go away on their own (for sessions: a leak of"
        " logged-in sessions).",
        condition=f"at least {num(no_ttl['keys'])} key(s) without TTL in groups {groups}",
        cases=[
            firing("15 sessions without TTL",
                   [(series(metric, db="db0", key_group="session"), "15x60")],
                   expect(15, db="db0", key_group="session")),
            quiet("only unclassified keys without TTL", [
                (series(metric, db="db0", key_group="session"), "0x60"),
                (series(metric, db="db0", key_group="unclassified"), "100x60")]),
        ],
    )
