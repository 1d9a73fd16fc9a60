"""Samples to Prometheus text format 0.0.4, rendered once per collection.

Collectors hand over `Family` objects; the cache keeps the rendered bytes of each collector as a
`Block`, so a scrape only concatenates bytes that were rendered when the data last changed.
The writer is deliberately small (like client_python's): the only subtle part is escaping.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["gauge", "counter", "untyped"]
Labels = tuple[tuple[str, str], ...]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric as documented: defined once, used by the collector that emits it."""

    name: str
    help: str
    type: MetricType = "gauge"
    labels: tuple[str, ...] = ()

    def family(self) -> Family:
        return Family(self.name, self.help, self.type)


@dataclass(slots=True)
class Family:
    """One metric family: HELP/TYPE once, then its samples. Adding the same label set twice
    keeps the last value, so a family can never hold duplicate series."""

    name: str
    help: str
    type: MetricType = "gauge"
    samples: dict[Labels, float] = field(default_factory=dict)

    def add(self, value: float, labels: Labels = ()) -> None:
        self.samples[labels] = value


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Go-compatible float text: integers without exponent where exact, NaN/+Inf/-Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)
    return "{" + inner + "}"


def render(families: Iterable[Family]) -> str:
    """Render families in text format; empty families still get HELP/TYPE so that operators see
    that the metric exists (Prometheus accepts a family without samples)."""
    out: list[str] = []
    for fam in families:
        out.append(f"# HELP {fam.name} {escape_help(fam.help)}\n")
        out.append(f"# TYPE {fam.name} {fam.type}\n")
        for labels, value in fam.samples.items():
            out.append(f"{fam.name}{_format_labels(labels)} {format_value(float(value))}\n")
    return "".join(out)


class Block:
    """A collector's rendered output. The gzip member is made lazily and only once: gzip streams
    may be concatenated member by member (RFC 1952), so a compressed scrape is a join too."""

    __slots__ = ("_gzip", "series", "text")

    def __init__(self, families: Iterable[Family]) -> None:
        families = list(families)
        self.text: bytes = render(families).encode()
        self.series: int = sum(len(f.samples) for f in families)
        self._gzip: bytes | None = None

    def gzipped(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self.text, compresslevel=1)
        return self._gzip
