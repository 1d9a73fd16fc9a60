"""The measurements of a run, one exporter or a few at a time: latency phases (cold, warm with one
and two scrapers, uncompressed), our key census while it runs, and PostgreSQL statements per
scrape interval."""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from pathlib import Path
from typing import Any

from bench.exporters import Running, Target
from bench.measure import (
    OtherCpu,
    Response,
    Scraper,
    collector_health,
    collector_seconds,
    has_census,
    percentile,
    scrape_together,
    series_count,
)
from bench.presets import Preset
from bench.profiling import Profiler
from bench.servers import OURS_ROLE, BenchServers
from bench.targets import OURS_REDIS_CLIENT, Targets

CENSUS_METRIC = b"redis_key_group_count"


class Phases:
    """Measures targets started on `servers`; `profile_dir` (--profile) gets py-spy's output."""

    def __init__(self, servers: BenchServers, targets: Targets, preset: Preset,
                 profile_dir: Path | None = None) -> None:
        self.servers = servers
        self.targets = targets
        self.preset = preset
        self.profile_dir = profile_dir

    def latency(self, target: Target) -> dict[str, Any]:
        """Cold scrape, warm with 1 and 2 scrapers (gzip), warm without gzip."""
        n = self.preset.slow_scrapes if target.slow else self.preset.scrapes
        result: dict[str, Any] = {"name": target.name, "kind": target.kind, "note": target.note}
        self.servers.slowlog_reset()
        other_cpu = OtherCpu()
        with self.servers.running(target) as proc:
            phases: dict[str, Any] = {}

            def phase(name: str, scrapers: int, rounds: int, gzip_ok: bool = True) -> Response:
                phases[name], last = self._scrapes(target, scrapers, rounds, gzip_ok)
                return last

            cold_started = time.monotonic()
            cold = phase("cold", 1, 1)
            cold_text = cold.text()
            if target.role == OURS_ROLE:
                result["cold_collection_seconds"] = collector_seconds(cold_text, "pg")
            profiler = self._profiler(target, proc)
            try:
                warm = phase("warm_1", 1, n)
                phase("warm_2", 2, n)
                plain = phase("plain_1", 1, n, gzip_ok=False)
            finally:
                if profiler is not None:
                    result["profile"] = profiler.stop()
            text = warm.text()
            result |= {
                "phases": phases,
                "series": series_count(text),
                "bytes_gzip": len(warm.body) if warm.gzipped else None,
                "bytes_plain": len(plain.body),
                "rss_peak_mb": proc.rss.peak / 2**20,
                "rss_end_mb": proc.rss.last / 2**20,
                "other_cpu_share": other_cpu.share(),  # other jobs on the machine skew it all
            }
            if self.targets.is_ours(target):
                result["collectors"] = health = collector_health(text)
                result["collector_errors"] = sum(h.get("errors", 0) for h in health.values())
                result["deadline_misses"] = sum(
                    h.get("deadline_misses", 0) for h in health.values()
                )
            if target.role == OURS_ROLE:
                result["warm_collection_seconds"] = collector_seconds(text, "pg")
            if target.redis_client == OURS_REDIS_CLIENT and has_census(cold_text):
                result["census"] = self.census(target, started=cold_started)
        if target.kind == "redis":
            result["slowlog_longest"] = self.servers.slowlog_longest(target.redis_client)
        return result

    def _scrapes(self, target: Target, scrapers: int, rounds: int,
                 gzip_ok: bool) -> tuple[dict[str, Any], Response]:
        """`rounds` rounds of `scrapers` concurrent scrapes: their latency, errors, the size of
        the last answer and (PostgreSQL) the statements per scrape; and that last answer."""
        clients = [Scraper(target.port, gzip_ok) for _ in range(scrapers)]
        before = self.servers.calls(target.role)
        seconds: list[float] = []
        errors = 0
        last: Response | None = None
        for _ in range(rounds):
            for r in scrape_together(clients):
                seconds.append(r.seconds)
                errors += r.status != 200
                last = r
        after = self.servers.calls(target.role)
        for c in clients:
            c.close()
        assert last is not None
        figures = {
            "scrapes": len(seconds),
            "p50_ms": statistics.median(seconds) * 1000,
            "p99_ms": percentile(seconds, 0.99) * 1000,
            "max_ms": max(seconds) * 1000,
            "errors": errors,
            "bytes": len(last.body),
        }
        if before is not None and after is not None:
            figures["statements_per_scrape"] = (after - before) / len(seconds)
        return figures, last

    def _profiler(self, target: Target, proc: Running) -> Profiler | None:
        """py-spy on our exporter during the warm phases, when --profile asks for it."""
        if self.profile_dir is None or not self.targets.is_ours(target) or target.slow:
            return None
        slug = re.sub(r"[^a-z0-9]+", "-", f"{target.name} {target.kind}".lower()).strip("-")
        return Profiler(proc.proc.pid, self.profile_dir / f"profile-{slug}")

    def census(self, target: Target, started: float) -> dict[str, Any]:
        """Our key census runs in the background from the first scrape on: keep scraping
        (twice a second) until its first pass has finished, so that SLOWLOG covers a whole
        pass and the latencies are those of scrapes during the census."""
        scraper = Scraper(target.port)
        seconds: list[float] = []
        finished = False
        deadline = started + self.preset.census_timeout
        while time.monotonic() < deadline:
            r = scraper.scrape()
            seconds.append(r.seconds)
            if CENSUS_METRIC in r.text():
                finished = True
                break
            time.sleep(0.5)
        scraper.close()
        return {
            "finished": finished,
            "first_pass_seconds": time.monotonic() - started if finished else None,
            "scrapes": len(seconds),
            "p50_ms": statistics.median(seconds) * 1000,
            "p99_ms": percentile(seconds, 0.99) * 1000,
            "max_ms": max(seconds) * 1000,
        }

    def interval(self, targets: list[Target], scrapers: tuple[int, ...] = (1, 2)) -> dict:
        """Scrape every `interval` seconds and count each exporter's PostgreSQL statements
        over `intervals` intervals, for each number of scrapers. Each number of scrapers gets
        its own instance of the exporter, all started together and scraped in staggered slots
        of the same intervals: their cached results expire at the same ticks, so the counts
        differ only by the number of scrapers (one instance measured twice in a row would see
        different TTLs expire in each window)."""
        p = self.preset
        instances = [
            (t, count, t if i == 0 else self.targets.twin(t, count))
            for t in targets
            for i, count in enumerate(scrapers)
        ]
        out: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
        with contextlib.ExitStack() as stack:
            procs = [stack.enter_context(self.servers.running(inst)) for _, _, inst in instances]
            offset = p.interval / len(instances)
            t0 = time.monotonic()

            def at(tick: int, i: int) -> None:  # sleep until instance i's slot of the tick
                delay = t0 + tick * p.interval + i * offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

            clients = [[Scraper(inst.port) for _ in range(count)] for _, count, inst in instances]
            for i in range(len(instances)):  # tick 0: the first scrape (cold), not counted
                at(0, i)
                scrape_together(clients[i][:1])
            before = [self.servers.calls(inst.role) for _, _, inst in instances]
            seconds: list[list[float]] = [[] for _ in instances]
            for tick in range(1, p.intervals + 1):
                for i in range(len(instances)):
                    at(tick, i)
                    seconds[i] += [r.seconds for r in scrape_together(clients[i])]
            for i, (target, count, inst) in enumerate(instances):
                statements = self.servers.calls(inst.role) - before[i]
                out[target.name][f"scrapers_{count}"] = {
                    "statements_per_interval": statements / p.intervals,
                    "p50_ms": statistics.median(seconds[i]) * 1000,
                    "max_ms": max(seconds[i]) * 1000,
                    "rss_peak_mb": procs[i].rss.peak / 2**20,
                }
                for c in clients[i]:
                    c.close()
        return out
