"""Alerts on tmi-db-exporter itself: is it scraped, do its collectors run."""

from __future__ import annotations

from monitoring.rules.model import Alert, expect, firing, lbl, one_series_cases, quiet, series, val
from monitoring.thresholds import Thresholds, num


def exporter_alerts(thresholds: Thresholds) -> list[Alert]:
    job = thresholds["settings"]["exporter_job"]
    failing = thresholds["TmiDbCollectorFailing"]
    return [
        Alert(
            name="TmiDbExporterDown", group="exporter", severity="critical",
            expr=f'up{{job="{job}"}} < 1',
            summary="Prometheus cannot scrape tmi-db-exporter on " + lbl("instance"),
            description="The scrape of " + lbl("instance") + " (job " + lbl("job") + ") fails:"
            " no database metric is being collected and every other TMI database alert is"
            " blind.",
            condition=f'up{{job="{job}"}} is 0',
            cases=[
                firing("down", [(series("up", job=job), "0x30")], expect(0, job=job)),
                quiet("up, and another job's target down", [
                    (series("up", job=job), "1x30"), (series("up", job="other"), "0x30")]),
            ],
        ),
        Alert(
            name="TmiDbCollectorFailing", group="exporter", severity="warning",
            expr="increase(tmi_db_exporter_collector_errors_total[10m])"
            f" >= {num(failing['errors'])}",
            summary="Collector " + lbl("collector") + " of tmi-db-exporter keeps failing",
            description="Collector " + lbl("collector") + " on " + lbl("instance") + " failed "
            + val("humanize") + " times in the last 10 minutes; its metrics are stale or"
            " missing. The exporter log names the error.",
            condition=f"at least {num(failing['errors'])} failed run(s) in every 10 minutes",
            cases=one_series_cases(
                "tmi_db_exporter_collector_errors_total",
                fires=("failing every minute", "0+1x40", 10), stays_quiet=("no errors", "3x40"),
                collector="pg:pg_table"),
        ),
    ]
