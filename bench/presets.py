"""How big and how long a benchmark run is: the data's scale and the scrapes per phase."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    tables: int  # filler tables (plus the TMI schema's 7)
    keys: int  # Redis keys
    statements: int  # distinct statements in pg_stat_statements
    scrapes: int  # per latency phase and scraper
    slow_scrapes: int  # the same for targets that need seconds per scrape
    interval: float  # seconds between scrapes when counting statements per interval
    intervals: int  # scrape intervals counted (per scraper count)
    scaling_levels: tuple[int, ...]
    census_timeout: float = 600.0  # longest wait for our key census' first pass


PRESETS = {
    "tiny": Preset(20, 2_000, 100, 4, 2, 1.0, 2, (20, 60), census_timeout=30.0),
    "small": Preset(200, 50_000, 1_000, 20, 5, 4.0, 3, (200, 1_000, 2_000)),
    "default": Preset(2_000, 1_000_000, 3_000, 50, 8, 15.0, 4, (2_000, 10_000, 20_000)),
}
