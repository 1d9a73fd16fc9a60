"""What a benchmark measures on an exporter: scrapes timed as Prometheus sends them, what our
self metrics say about each collector, and the resources used (peak RSS, other jobs' CPU)."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import math
import os
import re
import threading
import time
from dataclasses import dataclass

import psutil

SCRAPE_TIMEOUT = 10.0  # what Prometheus announces in X-Prometheus-Scrape-Timeout-Seconds
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@dataclass
class Response:
    seconds: float
    status: int
    body: bytes  # as sent (gzip or not)
    gzipped: bool

    def text(self) -> bytes:
        return gzip.decompress(self.body) if self.gzipped else self.body


class Scraper:
    """One Prometheus-like scraper: a keep-alive connection and Prometheus' request headers."""

    def __init__(self, port: int, gzip_ok: bool = True) -> None:
        self.port = port
        self.headers = {
            "Accept": ACCEPT,
            "User-Agent": "Prometheus/2.45.0",
            "X-Prometheus-Scrape-Timeout-Seconds": f"{SCRAPE_TIMEOUT:g}",
        }
        if gzip_ok:
            self.headers["Accept-Encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None

    def scrape(self) -> Response:
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._conn.request("GET", "/metrics", headers=self.headers)
            response = self._conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        seconds = time.perf_counter() - started
        gzipped = response.getheader("Content-Encoding", "") == "gzip"
        return Response(seconds, response.status, body, gzipped)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def scrape_together(scrapers: list[Scraper]) -> list[Response]:
    """One scrape per scraper, all started at the same moment."""
    if len(scrapers) == 1:
        return [scrapers[0].scrape()]
    results: list[Response | BaseException | None] = [None] * len(scrapers)
    barrier = threading.Barrier(len(scrapers))

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = scrapers[i].scrape()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(scrapers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def has_census(text: bytes) -> bool:
    """Does our exporter run a key census (a collector named like one in its self metrics)?"""
    return re.search(rb'tmi_db_exporter_collector_series\{collector="[^"]*key', text) is not None


SELF_METRICS = {
    b"tmi_db_exporter_collector_series": "series",
    b"tmi_db_exporter_collector_errors_total": "errors",
    b"tmi_db_exporter_collector_deadline_misses_total": "deadline_misses",
    b"tmi_db_exporter_collector_duration_seconds": "seconds",
}


def collector_health(text: bytes) -> dict[str, dict[str, float]]:
    """Our self metrics per collector: series, errors, deadline misses, last duration."""
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(b'{collector="')
        key = SELF_METRICS.get(name)
        if key is None:
            continue
        collector, _, value = rest.partition(b'"} ')
        out.setdefault(collector.decode(), {})[key] = float(value)
    return out


def series_count(text: bytes) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def collector_seconds(text: bytes, prefix: str) -> float:
    """The longest tmi_db_exporter_collector_duration_seconds of the collectors named `prefix`*.

    Collectors run concurrently and their durations overlap (they include waiting for the
    shared connection), so the longest one is the wall time of the whole collection."""
    longest = 0.0
    needle = b'tmi_db_exporter_collector_duration_seconds{collector="' + prefix.encode()
    for line in text.splitlines():
        if line.startswith(needle):
            longest = max(longest, float(line.rsplit(b" ", 1)[1]))
    return longest


class OtherCpu:
    """Share of the machine's CPU time used by processes outside this benchmark (other jobs
    on a shared machine) since creation: a measurement is only as good as this is small."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy = self._busy()
        self.own = self._own()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()  # guest time is already part of user time
        return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq",
                                                 "steal"))

    @staticmethod
    def _own() -> dict[int, float]:
        """CPU seconds per process of ours: this one, servers, backends, exporters."""
        me = psutil.Process()
        out = {}
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def share(self) -> float:
        wall = (time.monotonic() - self.started) * (os.cpu_count() or 1)
        own_now = self._own()
        own = sum(v - self.own.get(pid, 0.0) for pid, v in own_now.items())
        return max(0.0, (self._busy() - self.busy - own) / wall) if wall > 0 else 0.0


class RssSampler(threading.Thread):
    """Peak resident memory of a process (and its children), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.last = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.02):
            with contextlib.suppress(psutil.Error):
                procs = [self.process, *self.process.children(recursive=True)]
                self.last = sum(p.memory_info().rss for p in procs)
                self.peak = max(self.peak, self.last)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
