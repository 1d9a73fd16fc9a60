"""Durations as operators write them: `500ms`, `30s`, `5m`, `1h`, or a number of seconds."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from `30s`-style text or a plain number; raises ValueError with the accepted form."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 30s, 5m or 1h")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("expected a finite duration")
        return float(value)
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    raise ValueError("expected a duration such as 500ms, 30s, 5m or 1h")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
