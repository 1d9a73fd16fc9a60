"""The alert and recording rules, as data: one module per area, `render` writes them out.

Each alert's `for` comes from thresholds.toml, like its numbers; `alerts()` fills it in.
"""

from __future__ import annotations

from dataclasses import replace

from monitoring.rules.exporter import exporter_alerts
from monitoring.rules.model import DASHBOARD_OF_GROUP, GROUPS, SEVERITIES, Alert
from monitoring.rules.postgres import postgres_alerts
from monitoring.rules.recording import recording_rules, recording_tests
from monitoring.rules.redis import redis_alerts
from monitoring.thresholds import Thresholds

__all__ = ["DASHBOARD_OF_GROUP", "GROUPS", "SEVERITIES", "Alert", "alerts", "recording_rules",
           "recording_tests"]


def alerts(thresholds: Thresholds) -> list[Alert]:
    """Every alert, in the order of the rule files and the runbook table."""
    every = [*exporter_alerts(thresholds), *postgres_alerts(thresholds),
             *redis_alerts(thresholds)]
    return [replace(alert, for_=thresholds[alert.name]["for"]) for alert in every]
