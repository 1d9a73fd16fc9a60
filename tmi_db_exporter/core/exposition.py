"""Samples to Prometheus text format 0.0.4, rendered once per collection.

Collectors hand over `Family` objects; the cache keeps the rendered (gzip-compressed) bytes of
each collector as a `Block`, so a scrape only concatenates bytes that were rendered when the data
last changed.
The writer is deliberately small (like client_python's): the only subtle part is escaping.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

MetricType = Literal["gauge", "counter", "untyped"]
Labels = tuple[tuple[str, str], ...]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GZIP_LEVEL = 1  # a few times smaller than the text already; higher levels cost far more CPU
GZIP_WBITS = 31  # zlib: a gzip member (header and trailer), not a raw deflate stream


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


def render_family(fam: Family, label_text: dict[Labels, str]) -> bytes:
    """One family in text format. `label_text` caches the formatted label sets: the rows of a
    query share one label tuple across all their metrics, so each is escaped only once."""
    lines = [f"# HELP {fam.name} {escape_help(fam.help)}\n# TYPE {fam.name} {fam.type}\n"]
    for labels, value in fam.samples.items():
        text = label_text.get(labels)
        if text is None:
            text = label_text[labels] = _format_labels(labels)
        lines.append(f"{fam.name}{text} {format_value(float(value))}\n")
    return "".join(lines).encode()


class Block:
    """A collector's rendered output, kept only as a gzip member: Prometheus asks for gzip, and
    gzip streams may be concatenated member by member (RFC 1952), so a compressed scrape is a
    join of members compressed once per collection. Thousands of tables render to megabytes of
    text but a few hundred kilobytes of gzip; the text is made again only for the rare client
    that does not accept gzip. Rendering goes family by family straight into the compressor, so
    the whole text never exists at once."""

    __slots__ = ("_gzip", "series", "size")

    def __init__(self, families: Iterable[Family]) -> None:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        label_text: dict[Labels, str] = {}
        parts, series, size = [], 0, 0
        for family in families:
            text = render_family(family, label_text)
            parts.append(compressor.compress(text))
            series += len(family.samples)
            size += len(text)
        parts.append(compressor.flush())
        self._gzip: bytes = b"".join(parts)
        self.series: int = series
        self.size: int = size  # bytes of text

    def gzipped(self) -> bytes:
        return self._gzip

    @property
    def text(self) -> bytes:
        return zlib.decompress(self._gzip, GZIP_WBITS)

    def text_chunks(self, size: int = 1 << 18) -> Iterator[bytes]:
        """The text in pieces of at most `size` bytes, for writing without holding it whole."""
        decompressor = zlib.decompressobj(GZIP_WBITS)
        data = self._gzip
        while data:
            chunk = decompressor.decompress(data, size)
            if chunk:
                yield chunk
            data = decompressor.unconsumed_tail
        rest = decompressor.flush()
        if rest:
            yield rest
