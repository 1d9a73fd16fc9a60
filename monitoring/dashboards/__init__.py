"""The Grafana dashboards, built as data so that their thresholds come from thresholds.toml.

Three dashboards: a one-screen TMI overview that links to a PostgreSQL and a Redis dashboard.
All share the same conventions: a `datasource` variable, `job` and `instance` variables (and
`datname` for PostgreSQL), `$__rate_interval` in every rate, a unit and a description on every
panel, current panel types only, and threshold colours equal to the alert rules' thresholds.
Panel descriptions name the alert a panel belongs to; a test checks that the colours match it.

Regenerated together with the rules by `python -m monitoring.build`.
"""

from __future__ import annotations

import json

from monitoring.dashboards.overview import overview_dashboard
from monitoring.dashboards.postgres import postgres_dashboard
from monitoring.dashboards.redis import redis_dashboard
from monitoring.layout import DASHBOARD_UIDS
from monitoring.thresholds import Thresholds, load_thresholds


def dashboards(thresholds: Thresholds | None = None) -> dict[str, str]:
    """File name -> dashboard JSON text."""
    thresholds = thresholds or load_thresholds()
    builders = (("overview", overview_dashboard), ("postgres", postgres_dashboard),
                ("redis", redis_dashboard))
    return {f"{DASHBOARD_UIDS[key]}.json":
            json.dumps(make_board(thresholds), indent=2, ensure_ascii=False) + "\n"
            for key, make_board in builders}
