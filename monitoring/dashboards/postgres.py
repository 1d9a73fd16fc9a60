"""TMI / PostgreSQL: connections, slow statements, vacuum, sizes, indexes, replication and WAL,
backups, migrations and TLS; one function per row."""

from __future__ import annotations

from typing import Any

from monitoring.dashboards.board import LINKS, Board, variables
from monitoring.dashboards.panels import (
    CLEAR_TEXT,
    NEVER,
    RATE,
    SEL_DB,
    UP_DOWN,
    bargauge,
    db_selector,
    gauge,
    increase,
    mapping,
    metric_selector,
    pct,
    rate,
    stat,
    steps,
    table,
    timeseries,
)
from monitoring.thresholds import Thresholds, humanize1024, humanize_duration, num


def postgres_dashboard(thresholds: Thresholds) -> dict[str, Any]:
    board = Board("postgres", "TMI / PostgreSQL",
                  "PostgreSQL of a TMI deployment, from tmi-db-exporter: connections, slow"
                  " statements, vacuum, sizes, indexes, replication, backups, migrations and"
                  " TLS.",
                  variables("pg_up", databases=True), [LINKS["overview"], LINKS["redis"]])
    for row in (_overview_row, _connections_row, _slow_statements_row, _vacuum_row, _sizes_row,
                _indexes_row, _replication_row, _migrations_tls_and_settings_row):
        row(board, thresholds)
    return board.json()


def _connections_alert(thresholds: Thresholds) -> str:
    conn = thresholds["TmiPostgresConnectionsNearMax"]
    return (f"Alert TmiPostgresConnectionsNearMax: warning above {pct(conn['warning'])},"
            f" critical above {pct(conn['critical'])}.")


def _overview_row(board: Board, thresholds: Thresholds) -> None:
    conn = thresholds["TmiPostgresConnectionsNearMax"]
    board.row("Overview")
    board.add(stat(
        "PostgreSQL up", "1 when tmi-db-exporter can connect and query. Down: check the server,"
        " the network and the monitoring role's password. Alert TmiPostgresDown fires below 1.",
        metric_selector("pg_up"), "none", thresholds=steps("red", (1, "green")),
        mappings=UP_DOWN, graph=False), 3, 4)
    board.add(stat(
        "Server version", "PostgreSQL version reported by the server; check it against the"
        " supported releases before upgrades.",
        [(metric_selector("pg_static"), "{{short_version}}")], "none", text_mode="name",
        graph=False), 3, 4)
    board.add(stat(
        "Uptime", "Time since the postmaster started; a sudden drop is a restart or a crash: read"
        " the server log.",
        f"time() - {metric_selector('pg_postmaster_start_time_seconds')}", "s", graph=False),
        3, 4)
    board.add(stat(
        "Role", "Primary or standby (in recovery). A standby that turned primary means a"
        " failover happened: check the replicas.",
        metric_selector("pg_is_in_recovery"), "none",
        mappings=mapping(**{"0": ("primary", "green"), "1": ("standby", "blue")}),
        graph=False), 3, 4)
    board.add(stat(
        "Connection usage", "Client connections as a share of the slots ordinary roles may use"
        " (max_connections minus reserved slots). " + _connections_alert(thresholds),
        metric_selector("instance:pg_connections_usage:ratio"), "percentunit",
        thresholds=steps("green", (conn["warning"], "orange"), (conn["critical"], "red")),
        decimals=1), 3, 4)
    board.add(stat(
        "Transactions per second", "Commits and rollbacks per second in the selected databases;"
        " a drop to zero while TMI is in use means TMI cannot reach the database.",
        f"sum(rate({db_selector('pg_stat_database_xact_commit')}{RATE})"
        f" + rate({db_selector('pg_stat_database_xact_rollback')}{RATE}))", "ops"), 3, 4)
    board.add(stat(
        "Buffer cache hit ratio", "Block reads served from shared buffers over 5 minutes (lowest"
        " database). Persistently below about 90 % on a busy database: consider a larger"
        " shared_buffers or look for sequential scans.",
        f"min(datname:pg_blks_hit:ratio_rate5m{{{SEL_DB}}})", "percentunit", decimals=1), 3, 4)
    board.add(stat(
        "Database size", "Total size of the selected databases; the Sizes row shows which tables"
        " grow.",
        f"sum({db_selector('pg_database_size_bytes')})", "bytes"), 3, 4)


def _connections_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Connections")
    board.add(timeseries(
        "Connections vs limit", "Client connections in use, the slots open to ordinary roles and"
        " max_connections. " + _connections_alert(thresholds),
        [(metric_selector("pg_connections_used"), "in use"),
         (metric_selector("pg_connections_available"), "available to ordinary roles"),
         (metric_selector("pg_settings_max_connections"), "max_connections")], "short"), 8, 8)
    board.add(timeseries(
        "Connections by state", "Client connections by state; many \"idle in transaction\""
        " point at a client that forgets to commit.",
        [(f"sum by (state) ({db_selector('pg_stat_activity_count')})", "{{state}}")], "short",
        stack=True), 8, 8)
    board.add(table(
        "Connections by user and application", "Who is connected: per database, user,"
        " application_name and state. An unknown application or a user with many idle"
        " connections is where to look first when connections run out.",
        "sum by (datname, usename, application_name, state)"
        f" ({db_selector('pg_stat_activity_connections')})", "short",
        columns={"Value": "connections"}), 8, 8)
    _sessions(board, thresholds)
    board.add(timeseries(
        "Locks by mode", "Locks held or awaited, by mode. AccessExclusiveLock blocks everything"
        " else on its table (ALTER TABLE, VACUUM FULL).",
        [(f"sum by (mode) ({db_selector('pg_locks_count')})", "{{mode}}")], "short"), 12, 8)
    board.add(timeseries(
        "Sessions idle in transaction", "Number of sessions idle inside an open transaction, per"
        " database.",
        [(db_selector("pg_activity_idle_in_transaction"), "{{datname}}")], "short"), 12, 8)


def _sessions(board: Board, thresholds: Thresholds) -> None:
    """The long-running and blocked sessions of the Connections row, each with its alert."""
    idle = thresholds["TmiPostgresIdleInTransaction"]["seconds"]
    query = thresholds["TmiPostgresLongRunningQuery"]["seconds"]
    transaction = thresholds["TmiPostgresLongTransaction"]["seconds"]
    for title, description, metric, limit in (
        ("Oldest idle in transaction", "How long the oldest idle-in-transaction session has been"
         " idle, per database. Find it in pg_stat_activity (state = 'idle in transaction') and"
         " fix or end the client. Alert TmiPostgresIdleInTransaction above"
         f" {humanize_duration(idle)}.", "pg_activity_idle_in_transaction_max_seconds", idle),
        ("Longest running statement", "Run time of the longest running statement per database."
         " Check pg_stat_activity for its text and wait_event. Alert TmiPostgresLongRunningQuery"
         f" above {humanize_duration(query)}.", "pg_activity_longest_query_seconds", query),
        ("Oldest open transaction", "Age of the oldest open transaction per database; it holds"
         " back vacuum everywhere. Alert TmiPostgresLongTransaction above"
         f" {humanize_duration(transaction)}.", "pg_activity_longest_transaction_seconds",
         transaction),
    ):
        board.add(timeseries(title, description, [(db_selector(metric), "{{datname}}")], "s",
                             thresholds=steps("green", (limit, "red"))), 6, 8)
    blocked = thresholds["TmiPostgresBlockedSessions"]
    board.add(timeseries(
        "Waiting and blocked sessions", "Sessions waiting for a lock and sessions blocked by"
        " another session (pg_blocking_pids). Find the blocker with pg_blocking_pids() and end"
        f" it if it is stuck. Alert TmiPostgresBlockedSessions at {num(blocked['sessions'])} or"
        " more.",
        [(db_selector("pg_activity_waiting_on_locks"), "waiting {{datname}}"),
         (db_selector("pg_activity_blocked"), "blocked {{datname}}")], "short",
        thresholds=steps("green", (blocked["sessions"], "red"))), 6, 8)


def _slow_statements_row(board: Board, thresholds: Thresholds) -> None:
    slow = thresholds["TmiPostgresSlowStatements"]
    slow_alert = ("Alert TmiPostgresSlowStatements: mean above"
                  f" {humanize_duration(slow['mean_seconds'])} per call over 10 minutes.")
    slow_steps = steps("green", (slow["mean_seconds"], "red"))
    board.row("Slow statements")
    board.add(table(
        "Top statements", "The exporter's top statements by total time: mean per call since the"
        " statistics were reset, calls and time per second now, and the longest single run."
        " Look a queryid up in pg_stat_statements (or turn on pg_stat_statements_query) and"
        " EXPLAIN ANALYZE it. " + slow_alert,
        [(db_selector("pg_stat_statements_mean_seconds"), ""),
         (rate(db_selector("pg_stat_statements_calls_total")), ""),
         (rate(db_selector("pg_stat_statements_seconds_total")), ""),
         (db_selector("pg_stat_statements_max_seconds"), "")], "s",
        columns={"Value #A": "mean per call", "Value #B": "calls/s", "Value #C": "time/s",
                 "Value #D": "longest"},
        units={"calls/s": "ops"}, colored=("mean per call",), thresholds=slow_steps), 16, 10)
    board.add(timeseries(
        "Mean time per call (10 min), slowest 10", "Mean execution time per call over the last"
        " 10 minutes, for the 10 slowest statements. " + slow_alert,
        [(f"topk(10, queryid:pg_stat_statements_mean_seconds:rate10m{{{SEL_DB}}})",
          "{{queryid}} {{datname}}")], "s", thresholds=slow_steps), 8, 10)
    _top_statements(board)
    board.add(stat(
        "Statements above the exporter's threshold", "Statements whose mean time since the"
        " statistics reset is above the exporter's slow_statement_threshold (the guide's"
        " 100 ms). A count that never goes down is history: compare with the 10-minute means"
        " above. " + slow_alert,
        metric_selector("pg_stat_statements_slow_statements"), "short"), 6, 6)
    board.add(stat(
        "Statements left out", "Statements beyond statements_limit that are not exported one by"
        " one.", metric_selector("pg_stat_statements_left_out"), "short"), 6, 6)
    board.add(table(
        "Statement text", "Normalized text of the top statements. Off by default (query text"
        " can contain literals): enable it with enable_queries: [pg_stat_statements_query];"
        " empty otherwise.",
        metric_selector("pg_stat_statements_query_info"), "none", hide=("Value",)), 12, 6)


def _top_statements(board: Board) -> None:
    """Three top-10 graphs of the statements by a rate: time, calls, blocks read."""
    for title, description, metric, unit in (
        ("Execution time per second, top 10", "Seconds of execution per second (1 s/s = one"
         " backend busy all the time): where the database spends its time.",
         "pg_stat_statements_seconds_total", "s"),
        ("Calls per second, top 10", "The most frequently executed statements; a statement"
         " called far more often than TMI's traffic suggests is an N+1 query pattern.",
         "pg_stat_statements_calls_total", "ops"),
        ("Blocks read from disk per second, top 10", "Shared blocks statements had to read"
         " (cache misses); a statement high here scans more than it should.",
         "pg_stat_statements_shared_blocks_read_total", "short"),
    ):
        board.add(timeseries(
            title, description,
            [(f"topk(10, {rate(db_selector(metric))})", "{{queryid}} {{datname}}")], unit),
            8, 8)


def _vacuum_row(board: Board, thresholds: Thresholds) -> None:
    dead = thresholds["TmiPostgresDeadTuplesHigh"]
    wrap = thresholds["TmiPostgresXidWraparound"]
    board.row("Vacuum and dead tuples")
    board.add(bargauge(
        "Dead rows by table", "Dead rows as a share of each table's rows, worst 15. Autovacuum"
        " starts at 20 % by default; a table that stays above is not being vacuumed (autovacuum"
        " off, too slow, or a long transaction holds the rows). Alert TmiPostgresDeadTuplesHigh"
        f" above {pct(dead['ratio'])} with more than {num(dead['min_dead_rows'])} dead rows and"
        f" no vacuum for {humanize_duration(dead['no_vacuum_seconds'])}.",
        [(f"topk(15, {db_selector('pg_stat_user_tables_dead_ratio')})",
          "{{datname}}.{{schemaname}}.{{relname}}")], "percentunit",
        thresholds=steps("green", (dead["ratio"], "red")), minimum=0, maximum=1), 8, 10)
    _vacuum_table(board)
    board.add(timeseries(
        "Dead rows, top 10", "Dead rows per table; they fall when vacuum runs. A line that only"
        " rises: see the vacuum table beside.",
        [(f"topk(10, {db_selector('pg_stat_user_tables_n_dead_tup')})",
          "{{datname}}.{{relname}}")], "short"), 8, 8)
    board.add(timeseries(
        "Vacuum runs per hour", "Autovacuum and autoanalyze runs per hour, per database. None"
        " for hours while rows change: check that autovacuum is on (pg_settings_autovacuum) and"
        " not blocked.",
        [(f"sum by (datname)"
          f" ({increase(db_selector(f'pg_stat_user_tables_{k}_count'), '1h')})",
          f"{k} {{{{datname}}}}") for k in ("autovacuum", "autoanalyze")], "short"), 8, 8)
    board.add(gauge(
        "Transaction ID wraparound", "How far the oldest unfrozen transaction ID of each"
        " database is towards wraparound (2^31). Normally below 10 %; rising means freezing"
        " vacuums do not finish. Alert TmiPostgresXidWraparound: warning above"
        f" {pct(wrap['warning'])}, critical above {pct(wrap['critical'])}.",
        [(f"max by (datname) ({db_selector('pg_database_wraparound_ratio')})", "{{datname}}")],
        "percentunit",
        thresholds=steps("green", (wrap["warning"], "orange"), (wrap["critical"], "red")),
        minimum=0, maximum=1), 4, 8)
    board.add(stat(
        "Dead rows per database", "Dead rows as a share of all rows of each database's tables;"
        " high values mean bloat: vacuum the tables listed above.",
        [(f"datname:pg_dead_tuples:ratio{{{SEL_DB}}}", "{{datname}}")], "percentunit",
        decimals=1), 4, 4)
    board.add(stat(
        "Tables left out", "Tables beyond tables_limit (the ones with the fewest dead rows are"
        " left out).",
        [(db_selector("pg_stat_user_tables_left_out"), "{{datname}}")], "short"), 4, 4)


def _vacuum_table(board: Board) -> None:
    board.add(table(
        "Vacuum and analyze", "When each table was last vacuumed and analyzed, by hand and by"
        " autovacuum (never = since the statistics reset), with its dead rows and rows changed"
        " since the last analyze. VACUUM (ANALYZE) a table whose autovacuum is long ago while"
        " its dead rows grow.",
        [(f"{db_selector('pg_stat_user_tables_last_autovacuum')} * 1000", ""),
         (f"{db_selector('pg_stat_user_tables_last_vacuum')} * 1000", ""),
         (f"{db_selector('pg_stat_user_tables_last_autoanalyze')} * 1000", ""),
         (f"{db_selector('pg_stat_user_tables_last_analyze')} * 1000", ""),
         (db_selector("pg_stat_user_tables_n_dead_tup"), ""),
         (db_selector("pg_stat_user_tables_n_mod_since_analyze"), "")], "dateTimeFromNow",
        columns={"Value #A": "last autovacuum", "Value #B": "last vacuum",
                 "Value #C": "last autoanalyze", "Value #D": "last analyze",
                 "Value #E": "dead rows", "Value #F": "changed since analyze"},
        units={"dead rows": "short", "changed since analyze": "short"}, mappings=NEVER), 16, 10)


def _sizes_row(board: Board, thresholds: Thresholds) -> None:
    growth = thresholds["TmiPostgresDatabaseGrowth"]
    board.row("Sizes and growth")
    board.add(timeseries(
        "Database size", "Disk space used by each database; compare its growth with the free"
        " space of the server's disk.",
        [(db_selector("pg_database_size_bytes"), "{{datname}}")], "bytes"), 8, 8)
    board.add(stat(
        "Growth per day", "Growth per day (6-hour trend) as a share of the current size. Find"
        " the table that grows in the panels beside. Alert TmiPostgresDatabaseGrowth above"
        f" {pct(growth['ratio_per_day'])} per day for databases over"
        f" {humanize1024(growth['min_size_bytes'])}B.",
        [(f"datname:pg_database_size:growth_ratio_per_day{{{SEL_DB}}}", "{{datname}}")],
        "percentunit", thresholds=steps("green", (growth["ratio_per_day"], "orange")),
        decimals=1), 4, 8)
    board.add(bargauge(
        "Largest tables", "Total size (data, indexes, TOAST) of the 15 largest tables; the place"
        " to look first when the database grows.",
        [(f"topk(15, {db_selector('pg_table_total_size_bytes')})",
          "{{datname}}.{{schemaname}}.{{relname}}")], "bytes"), 12, 8)
    board.add(table(
        "Table sizes", "Each table's data (heap), indexes and TOAST. Indexes much larger than"
        " the data often hold unused or bloated indexes.",
        [(db_selector("pg_table_heap_size_bytes"), ""),
         (db_selector("pg_table_indexes_size_bytes"), ""),
         (db_selector("pg_table_toast_size_bytes"), ""),
         (db_selector("pg_table_total_size_bytes"), "")], "bytes",
        columns={"Value #A": "data", "Value #B": "indexes", "Value #C": "TOAST",
                 "Value #D": "total"}), 12, 8)
    board.add(timeseries(
        "Size change over 24 hours", "How much each database grew or shrank in the last 24"
        " hours; shrinking only happens after VACUUM FULL or deletes plus vacuum.",
        [(f"delta({db_selector('pg_database_size_bytes')}[1d])", "{{datname}}")], "bytes"),
        12, 8)


def _indexes_row(board: Board, thresholds: Thresholds) -> None:
    board.row("Indexes")
    board.add(table(
        "Unused indexes", "Non-unique, non-primary indexes without a single scan since the"
        " statistics were reset, with their size. Candidates for DROP INDEX once the statistics"
        " cover a full business cycle (see the next panel); they slow every write.",
        f"{db_selector('pg_stat_user_indexes_size_bytes')} and on (job, instance, datname,"
        f" schemaname, relname, indexrelname) {db_selector('pg_stat_user_indexes_unused')} == 1",
        "bytes", columns={"Value": "size"}), 12, 8)
    board.add(stat(
        "Unused indexes", "Count of unused indexes; the table beside lists them with their"
        " size.",
        f"sum({db_selector('pg_stat_user_indexes_unused')})", "short"), 4, 4)
    board.add(stat(
        "Statistics since", "When the statistics were last reset (server start if never): scan"
        " counts and \"unused\" only cover the time since then.",
        [(f"{db_selector('pg_stat_database_stats_reset')} * 1000", "{{datname}}")],
        "dateTimeFromNow", mappings=mapping(**{"0": ("server start", "text")}), graph=False),
        8, 4)
    board.add(timeseries(
        "Sequential and index scans per second", "Scans of the selected databases' tables;"
        " sequential scans that grow with the data are missing indexes.",
        [(f"sum by (datname) ({rate(db_selector('pg_stat_user_tables_seq_scan'))})",
          "sequential {{datname}}"),
         (f"sum by (datname) ({rate(db_selector('pg_stat_user_tables_idx_scan'))})",
          "index {{datname}}")], "ops"), 12, 8)
    board.add(table(
        "Tables read by sequential scans", "Rows read by sequential scans per second over the"
        " last hour, worst 20, with scan rates: a large table with many rows read sequentially"
        " and few index scans needs an index (the guide's missing index check).",
        [(f"topk(20, {rate(db_selector('pg_stat_user_tables_seq_tup_read'), '[1h]')})", ""),
         (rate(db_selector("pg_stat_user_tables_seq_scan"), "[1h]"), ""),
         (rate(db_selector("pg_stat_user_tables_idx_scan"), "[1h]"), "")], "short",
        columns={"Value #A": "rows read sequentially/s", "Value #B": "seq scans/s",
                 "Value #C": "index scans/s"}), 12, 8)
    board.add(bargauge(
        "Largest indexes", "The 15 largest indexes; a large index with no scans (see Unused"
        " indexes) is pure write cost.",
        [(f"topk(15, {db_selector('pg_stat_user_indexes_size_bytes')})",
          "{{relname}}.{{indexrelname}}")], "bytes"), 12, 8)
    board.add(timeseries(
        "Index scans per second, top 10", "The busiest indexes by scans per second; an index"
        " missing here that you expected TMI to use points at a plan problem.",
        [(f"topk(10, {rate(db_selector('pg_stat_user_indexes_idx_scan'))})",
          "{{relname}}.{{indexrelname}}")], "ops"), 12, 8)


def _replication_row(board: Board, thresholds: Thresholds) -> None:
    lag = thresholds["TmiPostgresReplicationLag"]
    lag_alert = f"Alert TmiPostgresReplicationLag above {humanize_duration(lag['seconds'])}."
    lag_steps = steps("green", (lag["seconds"], "red"))
    slots = thresholds["TmiPostgresReplicationSlotRetainingWal"]
    board.row("Replication, WAL, archiving and backups")
    board.add(timeseries(
        "WAL generated", "WAL written per second; it drives archive volume and replica traffic.",
        [(rate(metric_selector("pg_wal_position_bytes")), "WAL")], "Bps"), 8, 8)
    board.add(timeseries(
        "Replica replay lag (primary side)", "How far each connected replica's replay is"
        " behind, from pg_stat_replication. Empty without replicas. " + lag_alert,
        [(metric_selector("pg_stat_replication_replay_lag_seconds"),
          "{{application_name}} {{client_addr}}")], "s", thresholds=lag_steps), 8, 8)
    board.add(timeseries(
        "Replica lag in bytes (primary side)", "WAL each replica has not replayed yet. Empty"
        " without replicas.",
        [(metric_selector("pg_stat_replication_lag_bytes"),
          "{{application_name}} {{client_addr}}")], "bytes"), 8, 8)
    board.add(timeseries(
        "Standby lag (this server is a standby)", "On a standby: time since the last replayed"
        " commit (it also grows while the primary is idle, so the alert requires WAL waiting to"
        " be replayed). Empty on a primary. " + lag_alert,
        [(metric_selector("pg_replication_lag_seconds"), "lag")], "s", thresholds=lag_steps),
        8, 8)
    board.add(timeseries(
        "WAL retained by replication slots", "WAL kept on disk for each slot. A slot whose"
        " consumer is gone keeps WAL forever: drop it with pg_drop_replication_slot(). Alert"
        f" TmiPostgresReplicationSlotRetainingWal above {humanize1024(slots['bytes'])}B.",
        [(metric_selector("pg_replication_slots_retained_bytes"), "{{slot_name}}")], "bytes",
        thresholds=steps("green", (slots["bytes"], "red"))), 8, 8)
    board.add(stat(
        "Inactive replication slots", "Slots without a connected consumer; each keeps WAL on"
        " disk until its consumer returns or the slot is dropped.",
        f"count({metric_selector('pg_replication_slots_active')} == 0) or vector(0)", "short",
        thresholds=steps("green", (1, "orange"))), 4, 4)
    board.add(stat(
        "WAL archiving", "Whether archive_mode is on (needed for point-in-time recovery).",
        metric_selector("pg_stat_archiver_archive_mode"), "bool_on_off", graph=False), 4, 4)
    _archiving_and_backups(board, thresholds)


def _archiving_and_backups(board: Board, thresholds: Thresholds) -> None:
    """The rest of the replication row: archiving, backups, checkpoints."""
    archive = thresholds["TmiPostgresWalArchiveFailing"]
    board.add(timeseries(
        "Archived and failed WAL files (10 min)", "WAL files archived and failed archive"
        " attempts in the last 10 minutes. Failures: run the archive_command by hand as the"
        " postgres user and read the server log. Alert TmiPostgresWalArchiveFailing at"
        f" {num(archive['failures'])} or more failures while the latest attempt failed.",
        [(increase(metric_selector("pg_stat_archiver_archived_count"), "10m"), "archived"),
         (increase(metric_selector("pg_stat_archiver_failed_count"), "10m"), "failed")],
        "short", thresholds=steps("green", (archive["failures"], "red"))), 8, 8)
    board.add(stat(
        "Last WAL file archived", "When WAL archiving last succeeded (never while archive_mode"
        " is off).",
        f"{metric_selector('pg_stat_archiver_last_archive_time')} * 1000", "dateTimeFromNow",
        mappings=NEVER, graph=False), 4, 4)
    _backups(board, thresholds)
    board.add(timeseries(
        "Checkpoints per hour", "Scheduled and requested checkpoints per hour; many requested"
        " checkpoints mean max_wal_size is too small.",
        [(increase(metric_selector("pg_stat_bgwriter_checkpoints_timed_total"), "1h"),
          "scheduled"),
         (increase(metric_selector("pg_stat_bgwriter_checkpoints_req_total"), "1h"),
          "requested")], "short"), 8, 8)


def _backups(board: Board, thresholds: Thresholds) -> None:
    backup = thresholds["TmiDbBackupTooOld"]
    board.add(stat(
        "Newest backup age", "Age of the newest file in each backup path (backup_paths). Too"
        " old: check the backup job's log and cron/timer. Alert TmiDbBackupTooOld above"
        f" {humanize_duration(backup['seconds'])}.",
        [(metric_selector("tmi_db_backup_newest_age_seconds"), "{{path}}")], "s",
        thresholds=steps("green", (backup["seconds"], "red"))), 6, 4)
    board.add(stat(
        "Backup files", "Files found in each backup path. Alert TmiDbBackupMissing below 1.",
        [(metric_selector("tmi_db_backup_files"), "{{path}}")], "short",
        thresholds=steps("red", (1, "green"))), 4, 4)
    board.add(stat(
        "Newest backup size", "Size of the newest backup file; 0 bytes means the dump failed."
        " Alert TmiDbBackupEmpty below 1 byte.",
        [(metric_selector("tmi_db_backup_newest_size_bytes"), "{{path}}")], "bytes",
        thresholds=steps("red", (1, "green"))), 6, 4)


def _migrations_tls_and_settings_row(board: Board, thresholds: Thresholds) -> None:
    no_tls = thresholds["TmiPostgresConnectionsWithoutSsl"]
    board.row("Migrations, TLS and settings")
    board.add(stat(
        "Schema version", "golang-migrate's current version per database that has the"
        " migrations table.",
        [(db_selector("pg_schema_migrations_version"), "{{datname}}")], "none", graph=False),
        4, 4)
    board.add(stat(
        "Migration state", "dirty = a migration stopped half-way; TMI will not migrate until"
        " someone fixes the schema and forces the version. Alert TmiPostgresMigrationDirty at 1"
        " or more.",
        [(db_selector("pg_schema_migrations_dirty"), "{{datname}}")], "none",
        thresholds=steps("green", (1, "red")),
        mappings=mapping(**{"0": ("clean", "green"), "1": ("dirty", "red")}), graph=False), 4, 4)
    board.add(stat(
        "ssl setting", "Whether the server accepts TLS connections at all (ssl = on).",
        metric_selector("pg_settings_ssl"), "bool_on_off", graph=False), 4, 4)
    board.add(stat(
        "Connections without TLS", "Client connections in clear text. Set"
        " POSTGRES_SSL_MODE=require in TMI and hostssl lines in pg_hba.conf. Local socket"
        " connections always count here. Alert TmiPostgresConnectionsWithoutSsl at"
        f" {num(no_tls['connections'])} or more.",
        f"sum({db_selector('pg_stat_ssl_connections', CLEAR_TEXT)}) or vector(0)", "short",
        thresholds=steps("green", (no_tls["connections"], "orange"))), 4, 4)
    board.add(stat(
        "Settings pending restart", "Changed settings that need a restart to apply. Alert"
        " TmiPostgresPendingRestart at 1 or more.",
        metric_selector("pg_settings_pending_restart"), "short",
        thresholds=steps("green", (1, "blue"))), 4, 4)
    board.add(stat(
        "Migrations table", "Whether golang-migrate's table exists in each database; TMI's"
        " database should have it.",
        [(db_selector("pg_schema_migrations_present"), "{{datname}}")], "none",
        mappings=mapping(**{"0": ("absent", "text"), "1": ("present", "green")}), graph=False),
        4, 4)
    _tls_versions_and_sequences(board, thresholds)


def _tls_versions_and_sequences(board: Board, thresholds: Thresholds) -> None:
    seq = thresholds["TmiPostgresSequenceNearExhaustion"]
    board.add(table(
        "Connections by TLS version", "Client connections per database, user and TLS version"
        " (ssl false = clear text).",
        "sum by (datname, usename, ssl, tls_version)"
        f" ({db_selector('pg_stat_ssl_connections')})",
        "short", columns={"Value": "connections"}), 12, 8)
    board.add(bargauge(
        "Sequences closest to exhaustion", "Share of each sequence's range already used; at"
        " 100 % inserts fail. Switch the column to bigint before that. Alert"
        f" TmiPostgresSequenceNearExhaustion: warning above {pct(seq['warning'])}, critical"
        f" above {pct(seq['critical'])}.",
        [(f"topk(10, {db_selector('pg_sequence_used_ratio')})",
          "{{datname}}.{{schemaname}}.{{sequencename}}")], "percentunit",
        thresholds=steps("green", (seq["warning"], "orange"), (seq["critical"], "red")),
        minimum=0, maximum=1), 12, 8)
