"""Where the generated files live, and the dashboards' UIDs (alerts link to them)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"
ALERTS_DIR = ROOT / "alerts"
RULE_TESTS_DIR = ALERTS_DIR / "tests"
RUNBOOK = ALERTS_DIR / "RUNBOOK.md"
DASHBOARDS_DIR = ROOT / "dashboards"

DASHBOARD_UIDS = {
    "overview": "tmi-db-overview",
    "postgres": "tmi-db-postgres",
    "redis": "tmi-db-redis",
}
