"""The key census benchmark's results as markdown (bench/results/redis-census.md): ours and
redis_exporter side by side, with ratios peer / ours."""

from __future__ import annotations

import os
import re
import statistics
from typing import Any

from bench.data import KEY_GROUPS
from tmi_db_exporter.core.cache import FIRST_BACKGROUND_WAIT


def _label(labels: str, name: str) -> str:
    match = re.search(name + r'="([^"]*)"', labels)
    return match.group(1) if match else ""


def percentile(values: list[float], q: float) -> float:
    """Rounded-rank percentile, NaN when there is nothing (the census' scrapes before the first
    pass may be none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds == seconds else "-"


def _ratio(peer: float, ours: float) -> str:
    if not ours:
        return "-"
    ratio = peer / ours
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _slow_text(res: dict[str, Any]) -> str:
    if not res["slow"]:
        return "none"
    top = max(res["slow"], key=lambda e: e[1])
    return f"{len(res['slow'])}, longest {top[1] / 1e3:,.1f} ms ({top[0]})"


def _longest_text(res: dict[str, Any]) -> str:
    name, usec = res["latency"]["longest"]
    return f"≤ {usec / 1e3:,.3f} ms ({name})"


def _over_text(res: dict[str, Any]) -> str:
    return f"{res['latency']['over_1ms']:,} of {res['latency']['calls']:,}"


def _memory_text(res: dict[str, Any], exact: dict[str, int]) -> str:
    total = sum(res["memory"].get(g, 0) for g in KEY_GROUPS)
    return f"{total / 2**20:,.1f} MiB ({total / sum(exact.values()):.3f} of exact)"


def report(keys: int, fill_seconds: float, ours: dict[str, Any], peers: list[dict[str, Any]],
           exact: dict[str, int], stall: float | None, redis_version: str) -> str:
    columns = [ours, *peers]
    rows = [
        ("keys counted in the 5 groups",
         [f"{sum(c['counts'].get(g, 0) for g in KEY_GROUPS):,.0f}" for c in columns], None),
        ("census duration (one full pass)", [f"{c['duration']:,.1f} s" for c in columns],
         [_ratio(p["duration"], ours["duration"]) for p in peers]),
        ("exporter commands in SLOWLOG (≥ 5 ms)", [_slow_text(c) for c in columns], None),
        ("longest command of the exporter (LATENCY HISTOGRAM)", [_longest_text(c) for c in columns],
         [_ratio(p["latency"]["longest"][1], ours["latency"]["longest"][1]) for p in peers]),
        ("commands of the exporter over 1 ms (whole run)", [_over_text(c) for c in columns],
         None),
        ("Redis CPU for one census", [f"{c['cpu']:,.2f} s" for c in columns],
         [_ratio(p["cpu"], ours["cpu"]) for p in peers]),
        ("scrape latency during a census, p50",
         [_ms(statistics.median(c["scrapes_during"])) for c in columns],
         [_ratio(statistics.median(p["scrapes_during"]), statistics.median(ours["scrapes_during"]))
          for p in peers]),
        ("scrape latency during a census, max", [_ms(max(c["scrapes_during"])) for c in columns],
         [_ratio(max(p["scrapes_during"]), max(ours["scrapes_during"])) for p in peers]),
        ("memory of the 5 groups", [_memory_text(c, exact) for c in columns], None),
    ]
    head = ["", *[c["name"] for c in columns], *[f"ratio {p['name'].split(', ')[-1]} / ours"
                                                 for p in peers]]
    lines = [
        f"# Key census: {keys:,} keys",
        "",
        f"`python -m bench.redis_census --keys {keys}` on one redis-server "
        f"{redis_version}, `slowlog-log-slower-than 5000`; {keys:,} keys in the guide's "
        f"patterns from `bench.data.fill_redis` (5% without TTL, filled in {fill_seconds:,.0f} s);"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (the machine "
        f"is shared). Ours: {ours['settings']}. Peer: redis_exporter with "
        "`-check-key-groups` for the same five groups (it also scans the 15 empty databases).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for label, values, ratios in rows:
        lines.append("| " + " | ".join([label, *values, *(ratios or [""] * len(peers))]) + " |")
    first = ours["scrapes_first"]
    counts_equal = all(ours["counts"].get(g) == p["counts"].get(g)
                       for p in peers for g in KEY_GROUPS)
    lines += [
        "",
        f"- Same counts per group in every exporter: {'yes' if counts_equal else 'NO'}. "
        f"Ours also counts the keys without TTL: "
        + ", ".join(f"{g} {ours['no_ttl'].get(g, 0):,.0f}" for g in KEY_GROUPS) + ".",
        "- Commands our census sent: "
        + ", ".join(f"{_label(k, 'command')} {v:,.0f}" for k, v in ours["commands"].items())
        + ".",
        f"- Scrapes of ours before the first census had finished ({len(first)}): "
        f"p50 {_ms(percentile(first, 0.5))}, max {_ms(max(first) if first else float('nan'))}: "
        "only the scrape that starts the census waits for it, at most "
        f"{FIRST_BACKGROUND_WAIT:g} s (cache.py); the others serve what there is and never wait.",
        f"- The census' TTL lookups count as keyspace hits on the server ({ours['hits_server']:,} "
        f"after our run); ours exports {ours['hits_exported']:,.0f} hits because it subtracts "
        "its own PEXPIRETIME calls.",
        "- Peer: one scrape computes the key groups (its scrape latency is the census); "
        "Prometheus' default 10 s scrape timeout fails such a scrape when it takes longer.",
        "- Longest command: top bucket of LATENCY HISTOGRAM (about powers of two), so an upper "
        "bound; it includes any command of the exporter, not only the census'.",
        f"- This machine's worst scheduling stall (`redis-cli --intrinsic-latency 5` before the "
        f"run): {stall:,.1f} ms. A stall that hits redis-server while it executes a command makes "
        "that command look slow in SLOWLOG and LATENCY HISTOGRAM, whoever sent it; the "
        "census' own commands cost about 0.1 ms (SCAN COUNT 100) and 1-2 µs (PEXPIRETIME)."
        if stall is not None else "- (redis-cli --intrinsic-latency not available)",
    ]
    return "\n".join(lines) + "\n"
