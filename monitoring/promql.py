"""Just enough PromQL reading to check the rules and dashboards against the exporter.

Prometheus itself (promtool) decides whether an expression parses; this module only answers
the questions promtool does not: which metric names an expression reads, and which range
function each one is passed to (so that a gauge is never `rate()`d). It tokenizes, skips label
matchers, label lists (`by (...)`, `on (...)`, ...), strings, numbers and durations, and takes
the remaining identifiers that are not followed by `(` as metric names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|s|m|h|d|w|y)(?![\w:]))
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},@])
    """,
    re.VERBOSE,
)

KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
RANGE_FUNCTIONS = {"rate", "irate", "increase", "resets", "delta", "idelta", "deriv",
                   "predict_linear", "changes"}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCTIONS = {"delta", "idelta", "deriv", "predict_linear"}
# Series Prometheus makes itself: target health and the alert state.
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
           "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}


@dataclass(frozen=True)
class Use:
    metric: str
    function: str | None  # the range function the selector is passed to directly, if any


def tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if not match:
            raise ValueError(f"cannot read PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append((kind, match.group()))
    return out


def uses(expr: str) -> list[Use]:
    """Every metric name the expression selects, with the range function around it."""
    toks = tokens(expr)
    found: list[Use] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "{":  # label matchers
            while toks[i][1] != "}":
                i += 1
        elif kind == "ident" and text in LABEL_LISTS:
            if nxt == "(":
                while toks[i][1] != ")":
                    i += 1
        elif kind == "ident" and (nxt == "(" or text in AGGREGATIONS):
            function = text
            after = toks[i + 2] if i + 2 < len(toks) else ("", "")
            if function in RANGE_FUNCTIONS and after[0] == "ident":
                found.append(Use(after[1], function))
                i += 2
        elif kind == "ident" and text.lower() not in KEYWORDS:
            found.append(Use(text, None))
        i += 1
    return found


def metric_names(expr: str) -> set[str]:
    return {u.metric for u in uses(expr)}


def comparison_literals(expr: str) -> set[float]:
    """Numbers an expression compares with (`x > 0.8`, `0.8 < x`), the thresholds of a rule."""
    toks = tokens(expr)
    out: set[float] = set()
    for i, (kind, text) in enumerate(toks):
        if kind != "number":
            continue
        before = toks[i - 1][1] if i else ""
        after = toks[i + 1][1] if i + 1 < len(toks) else ""
        if before in {">", ">=", "<", "<=", "==", "!="} or after in {">", ">=", "<", "<="}:
            out.add(float(text))
    return out


def ranges(expr: str) -> list[tuple[str, str]]:
    """(function, window) for each range selector passed directly to a range function."""
    toks = tokens(expr)
    out = []
    for i, (kind, text) in enumerate(toks):
        if kind == "ident" and text in RANGE_FUNCTIONS and i + 3 < len(toks) \
                and toks[i + 1][1] == "(":
            j = i + 2
            if toks[j][0] == "ident":
                j += 1
                if toks[j][1] == "{":
                    while toks[j][1] != "}":
                        j += 1
                    j += 1
                if j < len(toks) and toks[j][0] == "range":
                    out.append((text, toks[j][1][1:-1]))
    return out
