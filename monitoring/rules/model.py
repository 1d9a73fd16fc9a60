"""What a rule is made of: recording rules, alerts, their unit test cases, and the small subset
of Prometheus' template language the annotations use (with a renderer for the expected text)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from monitoring.layout import DASHBOARD_UIDS
from monitoring.thresholds import FILTERS

GROUPS = ("recording", "exporter", "postgres", "redis")
DASHBOARD_OF_GROUP = {
    "exporter": DASHBOARD_UIDS["overview"],
    "postgres": DASHBOARD_UIDS["postgres"],
    "redis": DASHBOARD_UIDS["redis"],
}
SEVERITIES = ("critical", "warning", "info")

# Labels every test series carries, as Prometheus adds them to the exporter's samples.
JOB, INSTANCE = "tmi-db", "db-exporter:9432"

# (series selector, promtool values notation such as "0+1x30") of one unit test input.
Input = tuple[str, str]


@dataclass(kw_only=True)
class Recording:
    record: str
    expr: str
    meaning: str


@dataclass(kw_only=True)
class Expect:
    """An alert a test case expects, with the labels of its series and its value."""

    labels: dict[str, str]
    value: float
    severity: str | None = None  # None: the alert's own severity


@dataclass(kw_only=True)
class Case:
    title: str
    series: list[Input]
    fires: list[Expect]
    eval_minutes: int | None = None  # default: the alert's `for` plus 20 minutes


@dataclass(kw_only=True)
class Alert:
    name: str
    group: str
    severity: str
    expr: str
    summary: str
    description: str
    condition: str  # the default threshold in words, for the runbook table
    cases: list[Case] = field(default_factory=list)
    # (severity, expr) of a second, stricter rule under the same alert name
    escalation: tuple[str, str] | None = None
    for_: str = ""  # from thresholds.toml, filled in by `monitoring.rules.alerts()`


# --- test inputs and cases ----------------------------------------------------------------


def series(metric: str, **labels: str) -> str:
    """A unit test input series: `metric{job="tmi-db",instance="...",<labels>}`."""
    body = ",".join(f'{k}="{v}"' for k, v in labels_of(**labels).items())
    return f"{metric}{{{body}}}"


def labels_of(**labels: str) -> dict[str, str]:
    return {"job": JOB, "instance": INSTANCE, **labels}


def expect(value: float, severity: str | None = None, **labels: str) -> Expect:
    """An alert of a series with these labels (plus job and instance) and this value."""
    return Expect(labels=labels_of(**labels), value=value, severity=severity)


def firing(title: str, inputs: list[Input], *expected: Expect,
           eval_minutes: int | None = None) -> Case:
    return Case(title=title, series=inputs, fires=list(expected), eval_minutes=eval_minutes)


def quiet(title: str, inputs: list[Input], eval_minutes: int | None = None) -> Case:
    return Case(title=title, series=inputs, fires=[], eval_minutes=eval_minutes)


def one_series_cases(metric: str, fires: tuple[str, str, float], stays_quiet: tuple[str, str],
                     **labels: str) -> list[Case]:
    """The usual pair for an alert on one series: (title, values, alert value) where it fires,
    (title, values) where it does not."""
    title, values, value = fires
    selector = series(metric, **labels)
    return [
        firing(title, [(selector, values)], expect(value, **labels)),
        quiet(stays_quiet[0], [(selector, stays_quiet[1])]),
    ]


def escalating_cases(metric: str, warning: tuple[str, str, float],
                     critical: tuple[str, str, float], stays_quiet: tuple[str, str],
                     **labels: str) -> list[Case]:
    """Cases for an alert with an escalation, on one series: between the two thresholds only
    the warning fires, above both the critical and the warning rule do."""
    (w_title, w_values, w_value), (c_title, c_values, c_value) = warning, critical
    selector = series(metric, **labels)
    return [
        firing(w_title, [(selector, w_values)], expect(w_value, "warning", **labels)),
        firing(c_title, [(selector, c_values)], expect(c_value, "critical", **labels),
               expect(c_value, "warning", **labels)),
        quiet(stays_quiet[0], [(selector, stays_quiet[1])]),
    ]


# --- annotation templates -----------------------------------------------------------------


def lbl(name: str) -> str:
    """A label of the alert's series, in an annotation."""
    return "{{ $labels." + name + " }}"


def val(fn: str) -> str:
    """The alert's value through one of Prometheus' humanize functions, in an annotation."""
    assert fn in FILTERS
    return "{{ $value | " + fn + " }}"


def render(template: str, labels: dict[str, str], value: float) -> str:
    """Render the small template subset the rules use, as Prometheus would."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("$labels."):
            return labels.get(inner[len("$labels."):], "")
        target, _, fn = (part.strip() for part in inner.partition("|"))
        assert target == "$value" and fn in FILTERS, inner
        return FILTERS[fn](value)

    return re.sub(r"\{\{\s*(.*?)\s*\}\}", one, template)
