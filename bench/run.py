"""Side-by-side benchmark: tmi-db-exporter vs postgres_exporter and redis_exporter.

    python -m bench.run --preset default      # 2,000 tables, 1M keys; writes bench/results/
    python -m bench.run --preset small        # a quick look, results under bench/results/tmp/
    python -m bench.run --scaling             # our exporter at 2k, 10k and 20k tables

One run starts a throwaway PostgreSQL 15 and Redis (tmi_db_exporter.demo.servers), loads the
reference data (bench/data.py), then measures each exporter alone on those servers, one after the
other, so that none steals the two CPUs from another:

- ours with PostgreSQL only, ours with PostgreSQL only and every TTL at 0 (each scrape collects
  afresh), prometheus-postgres-exporter with the example queries its Debian package ships
  (fixed for PostgreSQL 13+, see design.md), ours with Redis only, and prometheus-redis-exporter
  with and without key groups;
- per exporter: the first (cold) scrape, N warm scrapes back to back with one scraper and with two
  concurrent scrapers (gzip, with Prometheus' headers), N scrapes without gzip; latency p50/p99,
  series, bytes, peak RSS, PostgreSQL statements by its role, the longest Redis command in
  SLOWLOG issued by its connections;
- finally ours and postgres_exporter side by side at a real scrape interval, first with one then
  with two scrapers, to count PostgreSQL statements per scrape interval (pg_stat_statements,
  per role: each exporter connects as its own pg_monitor role).

Everything started is stopped at the end, on error and on Ctrl-C. Run from the repository root.
The pieces: bench/servers.py (servers, data, started processes), bench/targets.py (the exporters
compared), bench/phases.py (what is measured, with bench/measure.py), bench/report.py (markdown).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import psutil

from bench import data
from bench.exporters import ROOT
from bench.phases import Phases
from bench.presets import PRESETS, Preset
from bench.report import report, scaling_report
from bench.servers import OURS_ROLE, BenchServers
from bench.targets import PEER_PG, PEER_REDIS, Targets, missing_peers, package_name

RESULTS = ROOT / "bench" / "results"


def _tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0][:160] if text else "?"


def _git_revision(ours_from: Path) -> str:
    """The revision our exporter ran from, and whether it had uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(ours_from), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ours_from), "status", "--porcelain", "--", package_name(ours_from),
             "queries.yaml"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return rev + (f" + uncommitted changes to {package_name(ours_from)}/" if dirty else "")


def _environment(servers: BenchServers, ours_from: Path) -> dict[str, Any]:
    env: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 2**30,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "revision": _git_revision(ours_from),
        "postgres_exporter": _tool_version([PEER_PG, "--version"]),
        "redis_exporter": _tool_version([PEER_REDIS, "-version"]).split("build date")[0].split(
            "msg=")[-1].strip('" '),
        "postgres": "-",
        "redis": "-",
    }
    if servers.pg is not None:
        env["postgres"] = servers.pg.binaries.version
    if servers.redis is not None:
        env["redis"] = servers.redis.info("server")["redis_version"]
    return env


def run_comparison(
    preset: Preset, log: Callable[[str], None] = print, profile_dir: Path | None = None,
    ours_from: Path = ROOT,
) -> dict[str, Any]:
    """The side-by-side run; returns the raw results (see `report`)."""
    started = time.monotonic()
    servers = BenchServers(preset, log)
    exporters = Targets(servers, ours_from)
    phases = Phases(servers, exporters, preset, profile_dir)
    try:
        log("starting PostgreSQL 15 and Redis, loading data")
        servers.start_postgres(15)
        servers.start_redis()
        timings = servers.load(preset.tables, preset.keys)
        targets = {
            "ours_pg": exporters.ours("ours", postgres=True, redis_=False),
            "ours_pg_fresh": exporters.ours("ours, every TTL 0", postgres=True, redis_=False,
                                            fresh=True),
            "postgres_exporter": exporters.peer_postgres(),
            "ours_redis": exporters.ours("ours", postgres=False, redis_=True),
            "redis_exporter": exporters.peer_redis(key_groups=False),
            "redis_exporter_kg": exporters.peer_redis(key_groups=True),
        }
        results: dict[str, Any] = {"targets": {}}
        for key, target in targets.items():
            log(f"measuring {target.name} ({target.kind})")
            try:
                results["targets"][key] = phases.latency(target)
            except (RuntimeError, OSError, http.client.HTTPException) as exc:
                log(f"  FAILED: {exc}")
                results["targets"][key] = {"name": target.name, "error": str(exc)}
        log(f"statements per interval ({preset.interval:g} s, {preset.intervals} intervals)")
        interval_targets = [
            exporters.ours("ours", postgres=True, redis_=False, shared=True),
            targets["postgres_exporter"],
        ]
        results["interval"] = phases.interval(interval_targets)
        results |= {
            "preset": asdict(preset),
            "load": timings,
            "environment": _environment(servers, ours_from),
        }
    finally:
        servers.close()
    results["started"] = servers.started
    results["duration_seconds"] = time.monotonic() - started
    results["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return results


def run_scaling(
    preset: Preset, log: Callable[[str], None] = print, ours_from: Path = ROOT
) -> dict[str, Any]:
    """Our exporter at each of preset.scaling_levels tables (added incrementally)."""
    started = time.monotonic()
    servers = BenchServers(preset, log)
    exporters = Targets(servers, ours_from)
    phases = Phases(servers, exporters, preset)
    levels = []
    try:
        servers.start_postgres(15)
        created = 0
        for tables in preset.scaling_levels:
            log(f"{tables:,} tables")
            assert servers.pg is not None
            if created == 0:
                servers.load(tables, None)
            else:
                data.create_filler_tables(servers.pg.dsn("tmi"), created, tables - created)
            created = tables
            ours = phases.latency(exporters.ours("ours", postgres=True, redis_=False))
            data.reset_statements(servers.pg.dsn(), OURS_ROLE)
            fresh = phases.latency(
                exporters.ours("ours, every TTL 0", postgres=True, redis_=False, fresh=True)
            )
            # where the server's time goes when every query runs (what grows with tables)
            fresh["top_statements"] = data.top_statements(servers.pg.dsn(), OURS_ROLE)
            interval = phases.interval(
                [exporters.ours("ours", postgres=True, redis_=False, shared=True)], scrapers=(1,)
            )
            levels.append({
                "tables": tables,
                "ours": ours,
                "fresh": fresh,
                "statements_per_interval": interval["ours"]["scrapers_1"][
                    "statements_per_interval"],
                "interval": interval["ours"],
            })
        env = _environment(servers, ours_from)
    finally:
        servers.close()
    return {
        "started": servers.started,
        "levels": levels,
        "preset": asdict(preset),
        "environment": env,
        "duration_seconds": time.monotonic() - started,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _write(out_dir: Path, stem: str, results: dict, markdown: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    path = out_dir / f"{stem}.md"
    path.write_text(markdown)
    return path


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Side-by-side benchmark of tmi-db-exporter vs prometheus-postgres-exporter "
        "and prometheus-redis-exporter on throwaway servers with reference data.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="scale and effort (default: %(default)s)")
    parser.add_argument("--tables", type=int, help="filler tables (overrides the preset)")
    parser.add_argument("--keys", type=int, help="Redis keys (overrides the preset)")
    parser.add_argument("--scrapes", type=int, help="scrapes per phase and scraper")
    parser.add_argument("--interval", type=float, help="seconds between scrapes when counting "
                        "statements per interval")
    parser.add_argument("--scaling", action="store_true",
                        help="instead: our exporter at several table counts -> scaling.md")
    parser.add_argument("--levels", help="table counts for --scaling, e.g. 2000,10000,20000")
    parser.add_argument("--ours-from", type=Path, metavar="DIR",
                        help="run our exporter from this checkout (e.g. a `git worktree` of a "
                        "commit) instead of this one")
    parser.add_argument("--profile", action="store_true",
                        help="record our exporter with py-spy during the warm phases "
                        "(pip install py-spy) -> bench/results/tmp/profile/")
    parser.add_argument("--out", type=Path, help="results directory (default: bench/results "
                        "for the default preset, bench/results/tmp/<preset> otherwise)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ours_from = ROOT
    if args.ours_from:
        ours_from = args.ours_from.resolve()
        if not (ours_from / package_name(ours_from) / "__main__.py").exists():
            print(f"--ours-from {ours_from}: no exporter package there", file=sys.stderr)
            return 2
    preset = PRESETS[args.preset]
    overrides = {k: getattr(args, k) for k in ("tables", "keys", "scrapes", "interval")}
    preset = replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    if args.levels:
        preset = replace(preset, scaling_levels=tuple(int(x) for x in args.levels.split(",")))
    out = args.out or (RESULTS if args.preset == "default" else RESULTS / "tmp" / args.preset)
    missing = missing_peers()
    if missing and not args.scaling:
        print(f"missing: {', '.join(missing)}; install them with\n"
              "  apt-get install prometheus-postgres-exporter prometheus-redis-exporter",
              file=sys.stderr)
        return 2
    if args.profile and shutil.which("py-spy") is None:
        print("--profile needs py-spy: pip install py-spy", file=sys.stderr)
        return 2
    # SIGTERM ends the run like Ctrl-C: through the cleanup of everything started
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        if args.scaling:
            results = run_scaling(preset, ours_from=ours_from)
            results["command"] = command.strip()
            path = _write(out, "scaling", results, text := scaling_report(results))
        else:
            profile_dir = None
            if args.profile:
                profile_dir = out / "profile" if args.out else RESULTS / "tmp" / "profile"
                profile_dir.mkdir(parents=True, exist_ok=True)
            results = run_comparison(preset, profile_dir=profile_dir, ours_from=ours_from)
            results["command"] = command.strip()
            path = _write(out, "latest", results, text := report(results))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print()
    print(text)
    print(f"written to {path} (raw numbers: {path.with_suffix('.json')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
