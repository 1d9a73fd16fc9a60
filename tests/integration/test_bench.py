"""The benchmark harness end to end at a tiny scale: it starts everything, measures both sides,
reports numbers for each and leaves nothing behind. No timing assertions: the figures are the
benchmark's business, not the test's."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.presets import PRESETS
from bench.report import report
from bench.targets import missing_peers

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_tiny_run_reports_both_sides(tmp_path: Path) -> None:
    missing = missing_peers()
    if missing:
        pytest.skip(f"peer exporter not installed: {', '.join(missing)} "
                    "(apt-get install prometheus-postgres-exporter prometheus-redis-exporter)")
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--preset", "tiny", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    markdown = (tmp_path / "latest.md").read_text()
    assert markdown == report(results)
    assert results["preset"]["tables"] == PRESETS["tiny"].tables

    targets = results["targets"]
    for key in ("ours_pg", "postgres_exporter", "ours_redis", "redis_exporter"):
        target = targets[key]
        assert "error" not in target, target
        for phase in ("cold", "warm_1", "warm_2", "plain_1"):
            assert target["phases"][phase]["p50_ms"] > 0
            assert target["phases"][phase]["errors"] == 0
        assert target["series"] > 0 and target["bytes_plain"] > 0
        assert target["rss_peak_mb"] > 0
    for key in ("ours_pg", "postgres_exporter"):
        assert targets[key]["phases"]["warm_1"]["statements_per_scrape"] >= 0
    assert targets["postgres_exporter"]["phases"]["cold"]["statements_per_scrape"] > 0
    for key in ("ours_redis", "redis_exporter"):
        assert targets[key]["slowlog_longest"]["microseconds"] >= 0
    for name in ("ours", "postgres_exporter"):
        for scrapers in ("scrapers_1", "scrapers_2"):
            assert results["interval"][name][scrapers]["statements_per_interval"] > 0
    # the table has both sides and a ratio on the latency rows
    row = next(line for line in markdown.splitlines() if "warm, 1 scraper: p50" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1].endswith("ms") and cells[2].endswith("ms") and float(cells[3]) > 0

    # nothing left running or lying around: servers, exporters, temp dirs
    started = results["started"]
    assert len(started["pids"]) >= 2 + 6
    alive = [pid for pid in started["pids"] if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, [psutil.Process(pid).cmdline() for pid in alive]
    assert not [d for d in started["dirs"] if Path(d).exists()]


def test_interrupted_run_stops_everything(tmp_path: Path) -> None:
    missing = missing_peers()
    if missing:
        pytest.skip(f"peer exporter not installed: {', '.join(missing)}")
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--preset", "tiny", "--out", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert bench.stdout is not None
        for line in bench.stdout:  # servers up, data loaded, an exporter running
            if line.startswith("measuring postgres_exporter"):
                break
        else:
            pytest.fail("the run ended before measuring postgres_exporter")
        children = psutil.Process(bench.pid).children(recursive=True)
        dirs = [Path(a) for c in children for a in c.cmdline() if a.startswith("/tmp/tmi-")]
        assert len(children) >= 3  # PostgreSQL (with its backends), Redis, the exporter
        bench.send_signal(signal.SIGINT)
        assert bench.wait(timeout=60) == 130
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
    assert not (tmp_path / "latest.md").exists()
    assert not [d for d in dirs if d.exists()]
