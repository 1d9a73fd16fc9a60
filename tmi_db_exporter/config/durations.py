"""Durations as operators write them: `500ms`, `30s`, `5m`, `1h30m` (Go style, as Prometheus
and the peers take them), or a plain number of seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"\d+(?:\.\d+)?"
_PLAIN = re.compile(rf"^{_NUMBER}$")
_GO_STYLE = re.compile(rf"^(?:{_NUMBER}(?:ms|s|m|h|d))+$")
_PART = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
EXPECTED = "expected a duration such as 500ms, 30s, 5m, 1h30m or a number of seconds"


def parse_duration(value: Any) -> float:
    """Seconds from `1h30m`-style text or a plain number; raises ValueError with the accepted
    form."""
    if isinstance(value, bool):
        raise ValueError(EXPECTED)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("expected a finite duration")
        return float(value)
    if isinstance(value, str):
        text = "".join(value.split())  # "5 s" and "1h 30m" read as meant
        if _PLAIN.match(text):
            return float(text)
        if _GO_STYLE.match(text):
            return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    raise ValueError(EXPECTED)


def format_duration(seconds: float) -> str:
    """The way a user would type it: 5s, 500ms, 5m, 1h30m."""
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    whole = round(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            out += f"{count}{unit}"
    return out


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
