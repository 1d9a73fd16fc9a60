"""Alert and recording rules: promtool accepts and unit-tests them, every alert has a firing and a
quiet test case and a runbook section, they read only metrics the exporter exports (with the
right functions for their types), and their thresholds come from monitoring/thresholds.toml."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest

from monitoring import build, checks, layout, promql, thresholds
from monitoring.rules import model, render

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool comes with Debian's prometheus package (.ci/run installs it)"
)
RUNBOOK = layout.RUNBOOK.read_text()


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120,
                          cwd=layout.ROOT)


@needs_promtool
def test_promtool_check_rules() -> None:
    assert checks.RULE_FILES
    result = promtool("check", "rules", *map(str, checks.RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert checks.TEST_FILES
    assert PROMTOOL
    # one promtool per file, side by side: together they take a while
    runs = [subprocess.Popen([PROMTOOL, "test", "rules", str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, cwd=layout.ROOT)
            for path in checks.TEST_FILES]
    failures = []
    for run in runs:
        output, _ = run.communicate(timeout=300)
        if run.returncode != 0:
            failures.append(output)
    assert not failures, "\n".join(failures)


def test_generated_files_are_current() -> None:
    stale = build.stale(build.outputs().items())
    names = [str(p.relative_to(layout.ROOT)) for p in stale]
    assert not stale, f"out of date: {names}; run: python -m monitoring.build"


def _unit_cases() -> dict[str, list[list[Any]]]:
    """Alert name -> the expected alerts of each of its unit test cases."""
    cases: dict[str, list[list[Any]]] = {}
    for path in checks.TEST_FILES:
        for test in checks.load_yaml(path)["tests"]:
            for check in test.get("alert_rule_test", []):
                cases.setdefault(check["alertname"], []).append(check.get("exp_alerts") or [])
    return cases


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases = _unit_cases()
    for name in checks.alert_exprs():
        assert any(cases.get(name, [])), f"{name}: no unit test where it fires"
        assert any(not c for c in cases.get(name, [])), f"{name}: no unit test where it is quiet"


def test_split_severities_are_tested_on_both_levels() -> None:
    severities: dict[str, set[str]] = {}
    for rule in checks.rules():
        if "alert" in rule:
            severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    fired: dict[str, set[str]] = {}
    for name, cases in _unit_cases().items():
        for expected in cases:
            fired.setdefault(name, set()).update(e["exp_labels"]["severity"] for e in expected)
    for name, levels in severities.items():
        assert levels <= fired[name], f"{name}: {levels - fired[name]} never fires in a test"


def test_alerts_have_severity_summary_description_and_runbook() -> None:
    for rule in checks.rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert re.fullmatch(r"Tmi[A-Z]\w+", name)
        assert rule["labels"]["severity"] in model.SEVERITIES, name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        assert "$value" in notes["description"] or "$labels" in notes["description"], name
        anchor = notes["runbook_url"].rsplit("#", 1)[1]
        assert anchor == name.lower()
        assert re.search(rf"^#+ {name}$", RUNBOOK, re.MULTILINE), f"no runbook section {name}"
        boards = tuple(f"/d/{uid}" for uid in model.DASHBOARD_OF_GROUP.values())
        assert notes["dashboard"].endswith(boards), name


def test_runbook_sections_say_what_to_check_and_how_to_fix() -> None:
    sections = re.split(r"^### ", RUNBOOK, flags=re.MULTILINE)[1:]
    by_name = {s.split("\n", 1)[0].strip(): s for s in sections}
    for name in checks.alert_exprs():
        body = by_name.get(name)
        assert body, f"runbook has no ### {name}"
        for part in ("Check", "Fix", "Threshold"):
            assert f"**{part}" in body, f"runbook {name}: no **{part}...** paragraph"


def test_issue_coverage() -> None:
    """The alerts the issue asks for, by what they watch."""
    exprs = checks.alert_exprs()
    wanted = {
        "exporter/target down": "up{",
        "collector failing": "tmi_db_exporter_collector_errors_total",
        "connections near max": "pg_connections_usage",
        "idle in transaction": "pg_activity_idle_in_transaction_max_seconds",
        "long-running query": "pg_activity_longest_query_seconds",
        "long transaction": "pg_activity_longest_transaction_seconds",
        "slow statement mean": "pg_stat_statements_mean_seconds",
        "dead tuples and autovacuum": "pg_stat_user_tables_last_autovacuum",
        "database growth": "growth_ratio",
        "replication lag": "pg_stat_replication_replay_lag_seconds",
        "slot retaining WAL": "pg_replication_slots_retained_bytes",
        "archive failures": "pg_stat_archiver_failed_count",
        "backup too old": "tmi_db_backup_newest_age_seconds",
        "migration dirty": "pg_schema_migrations_dirty",
        "connections without SSL": 'pg_stat_ssl_connections{ssl="false"}',
        "XID wraparound": "pg_database_wraparound_ratio",
        "sequence exhaustion": "pg_sequence_used_ratio",
        "pending restart": "pg_settings_pending_restart",
        "redis memory near maxmemory": "redis_memory_used:ratio",
        "evictions": "redis_evicted_keys_total",
        "low hit rate": "redis_keyspace_hits:ratio",
        "rejected connections": "redis_rejected_connections_total",
        "blocked clients": "redis_blocked_clients",
        "last bgsave failed": "redis_rdb_last_bgsave_status",
        "no save for too long": "redis_rdb_last_save_timestamp_seconds",
        "AOF write errors": "redis_aof_last_write_status",
        "slowlog growing": "redis_slowlog_entries_total",
        "session keys without TTL": "redis_key_group_keys_without_ttl",
        "dangerous commands": "redis_security_command_renamed",
        "auth not required": "redis_security_auth_required",
    }
    text = "\n".join(e for es in exprs.values() for e in es)
    missing = [what for what, needle in wanted.items() if needle not in text]
    assert not missing


def test_rules_read_only_exported_metrics_with_the_right_functions() -> None:
    types, recordings = checks.catalog(), checks.recording_names()
    assert "pg_up" in types and "redis_up" in types
    found = {}
    for rule in checks.rules():
        where = rule.get("alert") or rule.get("record")
        errors = checks.problems(rule["expr"], types, recordings)
        if errors:
            found[where] = errors
    assert not found


def test_memory_ratio_never_divides_by_an_unset_maxmemory() -> None:
    exprs = [r["expr"] for r in checks.rules()]
    uses = [e for e in exprs if "redis_memory_max_bytes" in e]
    assert uses and all("redis_memory_max_bytes > 0" in e for e in uses)


def test_recording_rules_follow_the_naming_convention() -> None:
    for name in checks.recording_names():
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", name), name


def test_thresholds_file_and_rules_agree() -> None:
    t = thresholds.load_thresholds()
    names = set(checks.alert_exprs())
    assert set(t) - {"settings"} == names, "one [section] per alert, no more, no less"
    for name in names:
        assert "for" in t[name], name
    fors = {r["alert"]: r["for"] for r in checks.rules() if "alert" in r}
    assert all(fors[n] == t[n]["for"] for n in names)
    for name, exprs in checks.alert_exprs().items():
        literals = set().union(*(promql.comparison_literals(e) for e in exprs))
        for key, value in t[name].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert float(value) in literals, f"{name}.{key} = {value} is not in its rule"


def test_editing_one_threshold_changes_rules_and_dashboards() -> None:
    import json

    from monitoring.dashboards import dashboards

    t = thresholds.load_thresholds()
    t["TmiPostgresConnectionsNearMax"]["warning"] = 0.7
    t["TmiRedisMemoryNearMax"]["ratio"] = 0.85
    rules = render.rule_files(t)
    exprs = [r["expr"] for r in rules["postgres.rules.yml"]["groups"][0]["rules"]
             if r.get("alert") == "TmiPostgresConnectionsNearMax"]
    assert "instance:pg_connections_usage:ratio > 0.7" in exprs
    boards = {name: json.loads(text) for name, text in dashboards(t).items()}

    def steps_of(board: str, title: str) -> list[float]:
        [panel] = [p for p in checks.panels(boards[board]) if p["title"] == title]
        return checks.step_values(panel)

    assert steps_of("tmi-db-postgres.json", "Connection usage") == [0.7, 0.95]
    assert steps_of("tmi-db-redis.json", "Memory used of maxmemory") == [0.85]
    assert steps_of("tmi-db-overview.json", "Memory of maxmemory") == [0.85]


def test_template_functions_match_prometheus() -> None:
    """Spot checks of the Python twins of Prometheus' humanize functions (the unit tests
    compare their output with Prometheus' for real)."""
    assert thresholds.humanize_duration(600) == "10m 0s"
    assert thresholds.humanize_duration(100000) == "1d 3h 46m 40s"
    assert thresholds.humanize_duration(0.2) == "200ms"
    assert thresholds.humanize_percentage(0.9) == "90%"
    assert thresholds.humanize1024(2**31) == "2Gi"
    assert thresholds.humanize(1500) == "1.5k"
