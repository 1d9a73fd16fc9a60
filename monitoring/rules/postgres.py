"""Alerts on TMI's PostgreSQL, by area: connections and sessions, statements and tables,
replication and WAL, backups, schema and security, limits."""

from __future__ import annotations

from monitoring.rules.model import (
    Alert,
    escalating_cases,
    expect,
    firing,
    lbl,
    one_series_cases,
    quiet,
    series,
    val,
)
from monitoring.thresholds import (
    Thresholds,
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    num,
)


def postgres_alerts(thresholds: Thresholds) -> list[Alert]:
    return [
        *_availability(thresholds),
        *_sessions(thresholds),
        *_statements_and_tables(thresholds),
        *_replication(thresholds),
        *_backups(thresholds),
        *_schema_and_security(thresholds),
        *_limits(thresholds),
    ]


def _availability(thresholds: Thresholds) -> list[Alert]:
    conn = thresholds["TmiPostgresConnectionsNearMax"]
    used, available = series("pg_connections_used"), series("pg_connections_available")
    return [
        Alert(
            name="TmiPostgresDown", group="postgres", severity="critical", expr="pg_up < 1",
            summary="PostgreSQL is unreachable from " + lbl("instance"),
            description="tmi-db-exporter on " + lbl("instance") + " cannot connect to"
            " PostgreSQL or run a query (pg_up is 0). TMI cannot read or save threat models.",
            condition="pg_up is 0",
            cases=one_series_cases("pg_up", fires=("down", "0x30", 0), stays_quiet=("up", "1x30")),
        ),
        Alert(
            name="TmiPostgresConnectionsNearMax", group="postgres", severity="warning",
            expr=f"instance:pg_connections_usage:ratio > {num(conn['warning'])}",
            summary="PostgreSQL connections at " + val("humanizePercentage") + " of the limit",
            description="PostgreSQL behind " + lbl("instance") + " uses "
            + val("humanizePercentage") + " of the connection slots ordinary roles may use."
            " When they run out, TMI gets \"too many clients\" errors.",
            condition=f"usage above {humanize_percentage(conn['warning'])} (critical above"
            f" {humanize_percentage(conn['critical'])})",
            escalation=("critical",
                        f"instance:pg_connections_usage:ratio > {num(conn['critical'])}"),
            cases=[
                firing("between warning and critical", [(used, "90x30"), (available, "100x30")],
                       expect(0.9, "warning")),
                firing("above critical", [(used, "97x30"), (available, "100x30")],
                       expect(0.97, "critical"), expect(0.97, "warning")),
                quiet("half used", [(used, "50x30"), (available, "100x30")]),
            ],
        ),
    ]


def _sessions(thresholds: Thresholds) -> list[Alert]:
    idle = thresholds["TmiPostgresIdleInTransaction"]
    query = thresholds["TmiPostgresLongRunningQuery"]
    blocked = thresholds["TmiPostgresBlockedSessions"]
    return [
        Alert(
            name="TmiPostgresIdleInTransaction", group="postgres", severity="warning",
            expr=f"pg_activity_idle_in_transaction_max_seconds > {num(idle['seconds'])}",
            summary="A session in " + lbl("datname") + " is idle in transaction for "
            + val("humanizeDuration"),
            description="A client of database " + lbl("datname") + " opened a transaction and"
            " has done nothing for " + val("humanizeDuration") + ". It holds its locks and"
            " keeps vacuum from removing dead rows.",
            condition=f"idle in transaction longer than {humanize_duration(idle['seconds'])}",
            cases=one_series_cases(
                "pg_activity_idle_in_transaction_max_seconds",
                fires=("idle for 10 minutes", "600x30", 600),
                stays_quiet=("idle for a second", "1x30"), datname="tmi"),
        ),
        Alert(
            name="TmiPostgresLongRunningQuery", group="postgres", severity="warning",
            expr=f"pg_activity_longest_query_seconds > {num(query['seconds'])}",
            summary="A statement in " + lbl("datname") + " has been running for "
            + val("humanizeDuration"),
            description="The longest running statement in database " + lbl("datname")
            + " started " + val("humanizeDuration") + " ago; it may hold locks other requests"
            " wait for.",
            condition=f"a statement running longer than {humanize_duration(query['seconds'])}",
            cases=one_series_cases(
                "pg_activity_longest_query_seconds", fires=("running 400 s", "400x30", 400),
                stays_quiet=("running 2 s", "2x30"), datname="tmi"),
        ),
        _long_transaction(thresholds),
        Alert(
            name="TmiPostgresBlockedSessions", group="postgres", severity="warning",
            expr=f"pg_activity_blocked >= {num(blocked['sessions'])}",
            summary=val("humanize") + " session(s) in " + lbl("datname") + " blocked by locks",
            description=val("humanize") + " session(s) of database " + lbl("datname") + " have"
            " been waiting for a lock held by another session for a while; the TMI requests"
            " behind them hang.",
            condition=f"at least {num(blocked['sessions'])} blocked session(s)",
            cases=one_series_cases(
                "pg_activity_blocked", fires=("two blocked", "2x30", 2),
                stays_quiet=("none blocked", "0x30"), datname="tmi"),
        ),
    ]


def _long_transaction(thresholds: Thresholds) -> Alert:
    transaction = thresholds["TmiPostgresLongTransaction"]
    return Alert(
        name="TmiPostgresLongTransaction", group="postgres", severity="warning",
        expr=f"pg_activity_longest_transaction_seconds > {num(transaction['seconds'])}",
        summary="A transaction in " + lbl("datname") + " has been open for "
        + val("humanizeDuration"),
        description="The oldest open transaction in database " + lbl("datname") + " started "
        + val("humanizeDuration") + " ago. Until it ends, vacuum cannot remove rows that died"
        " after it began, anywhere in the cluster.",
        condition="a transaction open longer than"
        f" {humanize_duration(transaction['seconds'])}",
        cases=one_series_cases(
            "pg_activity_longest_transaction_seconds", fires=("open 2000 s", "2000x40", 2000),
            stays_quiet=("open 60 s", "60x40"), datname="tmi"),
    )


def _statements_and_tables(thresholds: Thresholds) -> list[Alert]:
    slow = thresholds["TmiPostgresSlowStatements"]
    growth = thresholds["TmiPostgresDatabaseGrowth"]
    statement = {"queryid": "42", "datname": "tmi", "user": "tmi_user"}
    calls = series("pg_stat_statements_calls_total", **statement)
    seconds = series("pg_stat_statements_seconds_total", **statement)
    size = series("pg_database_size_bytes", datname="tmi")
    return [
        Alert(
            name="TmiPostgresSlowStatements", group="postgres", severity="warning",
            expr="queryid:pg_stat_statements_mean_seconds:rate10m"
            f" > {num(slow['mean_seconds'])}",
            summary="Statement " + lbl("queryid") + " in " + lbl("datname") + " takes "
            + val("humanizeDuration") + " per call",
            description="Statement " + lbl("queryid") + " (user " + lbl("user") + ", database "
            + lbl("datname") + ") took " + val("humanizeDuration") + " per call on average over"
            " the last 10 minutes.",
            condition=f"mean time per call above {humanize_duration(slow['mean_seconds'])} over"
            " 10 minutes",
            cases=[
                firing("200 ms per call", [(calls, "0+10x60"), (seconds, "0+2x60")],
                       expect(0.2, **statement)),
                quiet("5 ms per call", [(calls, "0+100x60"), (seconds, "0+0.5x60")]),
            ],
        ),
        _dead_tuples(thresholds),
        Alert(
            name="TmiPostgresDatabaseGrowth", group="postgres", severity="warning",
            expr="datname:pg_database_size:growth_ratio_per_day"
            f" > {num(growth['ratio_per_day'])}\n"
            f"and pg_database_size_bytes > {num(growth['min_size_bytes'])}",
            summary="Database " + lbl("datname") + " grows " + val("humanizePercentage")
            + " per day",
            description="Database " + lbl("datname") + " grew at a rate of "
            + val("humanizePercentage") + " of its size per day over the last 6 hours; at that"
            " pace the disk fills early.",
            condition=f"growth above {humanize_percentage(growth['ratio_per_day'])} per day,"
            f" size above {humanize1024(growth['min_size_bytes'])}B",
            cases=[
                # 2.5 GB growing 720 MB a day; chosen so that the ratio reads the same at the
                # evaluation time and one step earlier (rules may see the previous recording)
                firing("2.5 GB growing 720 MB a day", [(size, "2500000000+500000x100")],
                       expect(7.2e8 / (2.5e9 + 80 * 5e5), datname="tmi")),
                quiet("2 GB growing 144 MB a day", [(size, "2000000000+100000x100")]),
                quiet("a small database doubling", [(size, "100000000+100000x100")]),
            ],
        ),
    ]


def _dead_tuples(thresholds: Thresholds) -> Alert:
    dead = thresholds["TmiPostgresDeadTuplesHigh"]
    table = {"schemaname": "public", "relname": "threats", "datname": "tmi"}

    def inputs(ratio: str, dead_rows: str, autovacuum: str) -> list[tuple[str, str]]:
        return [(series("pg_stat_user_tables_dead_ratio", **table), ratio),
                (series("pg_stat_user_tables_n_dead_tup", **table), dead_rows),
                (series("pg_stat_user_tables_last_autovacuum", **table), autovacuum),
                (series("pg_stat_user_tables_last_vacuum", **table), "0x130")]

    no_vacuum = num(dead["no_vacuum_seconds"])
    return Alert(
        name="TmiPostgresDeadTuplesHigh", group="postgres", severity="warning",
        expr=f"pg_stat_user_tables_dead_ratio > {num(dead['ratio'])}\n"
        f"and pg_stat_user_tables_n_dead_tup > {num(dead['min_dead_rows'])}\n"
        f"and time() - pg_stat_user_tables_last_autovacuum > {no_vacuum}\n"
        f"and time() - pg_stat_user_tables_last_vacuum > {no_vacuum}",
        summary="Table " + lbl("datname") + "." + lbl("schemaname") + "." + lbl("relname")
        + " is " + val("humanizePercentage") + " dead rows and is not being vacuumed",
        description=val("humanizePercentage") + " of the rows of " + lbl("schemaname") + "."
        + lbl("relname") + " (database " + lbl("datname") + ") are dead, and neither"
        " autovacuum nor a manual VACUUM has processed the table for a while: autovacuum is"
        " off, starved or blocked.",
        condition=f"dead ratio above {humanize_percentage(dead['ratio'])}, more than"
        f" {humanize(dead['min_dead_rows'])} dead rows, no vacuum for"
        f" {humanize_duration(dead['no_vacuum_seconds'])}",
        cases=[
            firing("30 % dead, never vacuumed", inputs("0.3x130", "50000x130", "0x130"),
                   expect(0.3, **table), eval_minutes=120),
            quiet("30 % dead but autovacuum keeps running",
                  inputs("0.3x130", "50000x130", "0+60x130"), eval_minutes=120),
            quiet("a small table", inputs("0.5x130", "50x130", "0x130"), eval_minutes=120),
        ],
    )


def _replication(thresholds: Thresholds) -> list[Alert]:
    lag = thresholds["TmiPostgresReplicationLag"]
    retained = thresholds["TmiPostgresReplicationSlotRetainingWal"]
    replica = {"application_name": "standby1", "client_addr": "10.0.0.6", "state": "streaming"}
    standby_lag = series("pg_replication_lag_seconds")
    waiting = series("pg_replication_replay_lag_bytes")
    slot = {"slot_name": "standby1", "slot_type": "physical"}  # no database: physical
    return [
        Alert(
            name="TmiPostgresReplicationLag", group="postgres", severity="warning",
            expr=f"pg_stat_replication_replay_lag_seconds > {num(lag['seconds'])}\n"
            f"or (pg_replication_lag_seconds > {num(lag['seconds'])}"
            " and pg_replication_replay_lag_bytes > 0)",
            summary="PostgreSQL replica lags " + val("humanizeDuration") + " behind",
            description="A standby of " + lbl("instance") + " " + lbl("application_name")
            + " replays WAL " + val("humanizeDuration") + " behind the primary; reads from it"
            " are stale and a failover would lose recent writes.",
            condition=f"replay lag above {humanize_duration(lag['seconds'])}",
            cases=[
                firing("primary: a replica 45 s behind", [
                    (series("pg_stat_replication_replay_lag_seconds", **replica), "45x30")],
                    expect(45, **replica)),
                firing("standby: 45 s behind with WAL waiting",
                       [(standby_lag, "45x30"), (waiting, "1000x30")], expect(45)),
                quiet("standby of an idle primary", [
                    (standby_lag, "600x30"), (waiting, "0x30"),
                    (series("pg_stat_replication_replay_lag_seconds", **replica), "0x30")]),
            ],
        ),
        Alert(
            name="TmiPostgresReplicationSlotRetainingWal", group="postgres", severity="warning",
            expr=f"pg_replication_slots_retained_bytes > {num(retained['bytes'])}",
            summary="Replication slot " + lbl("slot_name") + " holds " + val("humanize1024")
            + "B of WAL",
            description="Slot " + lbl("slot_name") + " (" + lbl("slot_type") + ") on "
            + lbl("instance") + " keeps " + val("humanize1024") + "B of WAL on disk because its"
            " consumer has not confirmed it. An abandoned slot grows until the disk is full.",
            condition=f"more than {humanize1024(retained['bytes'])}B of WAL retained",
            cases=one_series_cases(
                "pg_replication_slots_retained_bytes",
                fires=("2 GiB retained", "2147483648x30", 2147483648),
                stays_quiet=("16 MiB retained", "16777216x30"), **slot),
        ),
        _wal_archive(thresholds),
    ]


def _wal_archive(thresholds: Thresholds) -> Alert:
    archive = thresholds["TmiPostgresWalArchiveFailing"]

    def inputs(last_archive: str) -> list[tuple[str, str]]:
        return [(series("pg_stat_archiver_failed_count"), "0+1x30"),
                (series("pg_stat_archiver_last_failed_time"), "2000x30"),
                (series("pg_stat_archiver_last_archive_time"), last_archive)]

    return Alert(
        name="TmiPostgresWalArchiveFailing", group="postgres", severity="warning",
        expr=f"increase(pg_stat_archiver_failed_count[10m]) >= {num(archive['failures'])}\n"
        "and pg_stat_archiver_last_failed_time > pg_stat_archiver_last_archive_time",
        summary="WAL archiving fails on " + lbl("instance"),
        description="archive_command failed " + val("humanize") + " times in the last 10"
        " minutes and the latest attempt failed. WAL piles up in pg_wal and point-in-time"
        " recovery has a gap.",
        condition=f"at least {num(archive['failures'])} failure(s) in 10 minutes and the latest"
        " attempt failed",
        cases=[firing("failing", inputs("1000x30"), expect(10)),
               quiet("failed, then recovered", inputs("3000x30"))],
    )


def _backups(thresholds: Thresholds) -> list[Alert]:
    too_old = thresholds["TmiDbBackupTooOld"]
    path = {"path": "/var/backups/postgresql/tmi"}
    return [
        Alert(
            name="TmiDbBackupTooOld", group="postgres", severity="warning",
            expr=f"tmi_db_backup_newest_age_seconds > {num(too_old['seconds'])}",
            summary="Newest backup in " + lbl("path") + " is " + val("humanizeDuration")
            + " old",
            description="The newest file in " + lbl("path") + " was written "
            + val("humanizeDuration") + " ago: the backup job has stopped or fails before"
            " writing.",
            condition=f"newest backup older than {humanize_duration(too_old['seconds'])}",
            cases=one_series_cases(
                "tmi_db_backup_newest_age_seconds", fires=("27 hours old", "100000x40", 100000),
                stays_quiet=("2 hours old", "7200x40"), **path),
        ),
        Alert(
            name="TmiDbBackupMissing", group="postgres", severity="warning",
            expr="tmi_db_backup_files < 1",
            summary="No backup file in " + lbl("path"),
            description="tmi-db-exporter finds no file in " + lbl("path") + ": backups are"
            " written elsewhere, the path is wrong, or retention removed everything.",
            condition="no file matches a backup path",
            cases=one_series_cases("tmi_db_backup_files", fires=("no files", "0x40", 0),
                                   stays_quiet=("seven files", "7x40"), **path),
        ),
        Alert(
            name="TmiDbBackupEmpty", group="postgres", severity="warning",
            expr="tmi_db_backup_newest_size_bytes < 1",
            summary="Newest backup in " + lbl("path") + " is empty",
            description="The newest file in " + lbl("path") + " has 0 bytes: the last dump"
            " failed after creating its file.",
            condition="the newest backup file has 0 bytes",
            cases=one_series_cases("tmi_db_backup_newest_size_bytes", fires=("0 bytes", "0x40", 0),
                                   stays_quiet=("5 MB", "5000000x40"), **path),
        ),
    ]


def _schema_and_security(thresholds: Thresholds) -> list[Alert]:
    no_tls = thresholds["TmiPostgresConnectionsWithoutSsl"]
    user = {"datname": "tmi", "usename": "tmi_user"}
    clear_text = series("pg_stat_ssl_connections", **user, ssl="false", tls_version="")
    encrypted = series("pg_stat_ssl_connections", **user, ssl="true", tls_version="TLSv1.3")
    return [
        Alert(
            name="TmiPostgresMigrationDirty", group="postgres", severity="critical",
            expr="pg_schema_migrations_dirty >= 1",
            summary="Schema migration of " + lbl("datname") + " is dirty",
            description="golang-migrate marked the schema of database " + lbl("datname")
            + " dirty: a migration stopped half-way. TMI refuses to migrate further until it is"
            " fixed by hand.",
            condition="schema_migrations.dirty is true",
            cases=one_series_cases("pg_schema_migrations_dirty", fires=("dirty", "1x40", 1),
                                   stays_quiet=("clean", "0x40"), datname="tmi"),
        ),
        Alert(
            name="TmiPostgresConnectionsWithoutSsl", group="postgres", severity="warning",
            expr="sum by (job, instance, datname, usename)"
            " (pg_stat_ssl_connections{ssl=\"false\"})"
            f" >= {num(no_tls['connections'])}",
            summary=val("humanize") + " connection(s) of " + lbl("usename") + " to "
            + lbl("datname") + " without TLS",
            description="User " + lbl("usename") + " has " + val("humanize") + " connection(s)"
            " to database " + lbl("datname") + " in clear text. The guide asks for"
            " POSTGRES_SSL_MODE=require.",
            condition=f"at least {num(no_tls['connections'])} connection(s) without TLS",
            cases=[
                firing("three in clear text", [(clear_text, "3x40"), (encrypted, "5x40")],
                       expect(3, **user)),
                quiet("all encrypted", [(encrypted, "5x40")]),
            ],
        ),
    ]


def _limits(thresholds: Thresholds) -> list[Alert]:
    wrap = thresholds["TmiPostgresXidWraparound"]
    seq = thresholds["TmiPostgresSequenceNearExhaustion"]
    sequence = {"schemaname": "public", "sequencename": "threat_number_seq", "datname": "tmi"}
    return [
        Alert(
            name="TmiPostgresXidWraparound", group="postgres", severity="warning",
            expr=f"pg_database_wraparound_ratio > {num(wrap['warning'])}",
            summary="Database " + lbl("datname") + " used " + val("humanizePercentage")
            + " of its transaction IDs",
            description="The oldest unfrozen transaction ID of database " + lbl("datname")
            + " is " + val("humanizePercentage") + " of the way to wraparound. Freezing is not"
            " keeping up; at 100 % PostgreSQL stops accepting writes.",
            condition=f"above {humanize_percentage(wrap['warning'])} of the way to wraparound"
            f" (critical above {humanize_percentage(wrap['critical'])})",
            escalation=("critical", f"pg_database_wraparound_ratio > {num(wrap['critical'])}"),
            cases=escalating_cases(
                "pg_database_wraparound_ratio", warning=("60 %", "0.6x40", 0.6),
                critical=("80 %", "0.8x40", 0.8), stays_quiet=("5 %", "0.05x40"), datname="tmi"),
        ),
        Alert(
            name="TmiPostgresSequenceNearExhaustion", group="postgres", severity="warning",
            expr=f"pg_sequence_used_ratio > {num(seq['warning'])}",
            summary="Sequence " + lbl("schemaname") + "." + lbl("sequencename") + " used "
            + val("humanizePercentage") + " of its range",
            description="Sequence " + lbl("schemaname") + "." + lbl("sequencename")
            + " in database " + lbl("datname") + " has used " + val("humanizePercentage")
            + " of its range; when it is exhausted, inserts that need a new value fail.",
            condition=f"above {humanize_percentage(seq['warning'])} of the range used (critical"
            f" above {humanize_percentage(seq['critical'])})",
            escalation=("critical", f"pg_sequence_used_ratio > {num(seq['critical'])}"),
            cases=escalating_cases(
                "pg_sequence_used_ratio", warning=("85 %", "0.85x40", 0.85),
                critical=("97 %", "0.97x40", 0.97), stays_quiet=("1 %", "0.01x40"), **sequence),
        ),
        Alert(
            name="TmiPostgresPendingRestart", group="postgres", severity="info",
            expr="pg_settings_pending_restart >= 1",
            summary=val("humanize") + " PostgreSQL setting(s) wait for a restart",
            description=val("humanize") + " changed setting(s) on the server behind "
            + lbl("instance") + " only take effect after a restart; until then the running"
            " server differs from its configuration files.",
            condition="at least one setting waits for a restart",
            cases=one_series_cases("pg_settings_pending_restart", fires=("two pending", "2x90", 2),
                                   stays_quiet=("none pending", "0x90")),
        ),
    ]
