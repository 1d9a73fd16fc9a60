"""`thresholds.toml`, the one file where alerting is tuned, and how its numbers are written.

The rules, their unit tests, the runbook's threshold table and the dashboards' threshold colours
all derive from that file. `num` writes a threshold as a PromQL/Grafana literal; the humanize
functions are Python twins of Prometheus' template functions, so that the unit tests' expected
annotations (and the prose of runbook and panels) show a number as Prometheus would.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitoring.layout import THRESHOLDS

# Section name (an alert, or "settings") -> its keys, as read from thresholds.toml.
Thresholds = dict[str, Any]


def load_thresholds(path: Path = THRESHOLDS) -> Thresholds:
    with path.open("rb") as f:
        return tomllib.load(f)


def num(value: float | int) -> str:
    """A threshold as PromQL (and Grafana) literal: 0.8, 1073741824, 1e-05."""
    if isinstance(value, bool):
        raise TypeError("a threshold is a number, not a boolean")
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(float(value))


def minutes(duration: str) -> int:
    """Minutes of a Prometheus duration as used for `for` ("0m", "90s", "15m", "1h")."""
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r} (use e.g. 0m, 5m, 1h)")
    n, unit = int(match.group(1)), match.group(2)
    return math.ceil(n * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit])


# --- Prometheus' template functions -------------------------------------------------------


def _g4(v: float) -> str:
    return f"{v:.4g}"


def _scale(v: float, base: float, prefixes: str) -> tuple[float, str]:
    """v divided by `base` while it is at least `base` (up to the last prefix), with its
    prefix: _scale(1500, 1000, "k M G") == (1.5, "k")."""
    prefix = ""
    for p in prefixes.split():
        if abs(v) < base:
            break
        prefix, v = p, v / base
    return v, prefix


def _scale_down(v: float) -> tuple[float, str]:
    """v below 1 scaled up by thousands, with its SI prefix (m, u, n, ...)."""
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return v, prefix


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    v, prefix = _scale(v, 1000, "k M G T P E Z Y") if abs(v) >= 1 else _scale_down(v)
    return _g4(v) + prefix


def humanize1024(v: float) -> str:
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    v, prefix = _scale(v, 1024, "ki Mi Gi Ti Pi Ei Zi Yi")
    return _g4(v) + prefix


def humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) < 1:
        v, prefix = _scale_down(v)
        return f"{_g4(v)}{prefix}s"
    sign = "-" if v < 0 else ""
    v = abs(v)
    total = int(v)
    seconds, minutes_, hours, days = (
        total % 60, total // 60 % 60, total // 3600 % 24, total // 86400)
    if days:
        return f"{sign}{days}d {hours}h {minutes_}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes_}m {seconds}s"
    if minutes_:
        return f"{sign}{minutes_}m {seconds}s"
    return f"{sign}{_g4(v)}s"


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


# Template function name -> its Python twin.
FILTERS: dict[str, Callable[[float], str]] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
}
