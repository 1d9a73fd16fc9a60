"""The results of a run as markdown: the side-by-side tables with ratios ours / peer
(bench/results/latest.md) and the scaling table (scaling.md)."""

from __future__ import annotations

import os
from collections.abc import Callable

from bench import data
from bench.measure import SCRAPE_TIMEOUT
from bench.servers import SLOWLOG_THRESHOLD_US

NA = "n/a"


def _ms(v: float | None) -> str:
    if v is None:
        return NA
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


def _slow_ms(v: float | None) -> str:
    """SLOWLOG duration: 0 means nothing reached the log's threshold."""
    if v == 0:
        return f"< {SLOWLOG_THRESHOLD_US / 1000:g} ms"
    return _ms(v)


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return NA
    text = f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"
    return text + unit


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return NA
    if b == 0:
        return NA if a == 0 else "∞"
    r = a / b
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def _rows(ours: dict, peer: dict, interval: dict | None, fresh: dict | None) -> list[tuple]:
    """(label, our value, peer value, formatter) for one comparison."""
    rows: list[tuple] = []

    def ph(r: dict, phase: str, key: str) -> float | None:
        return r.get("phases", {}).get(phase, {}).get(key)

    for phase, label in (
        ("cold", "first scrape (cold)"),
        ("warm_1", "warm, 1 scraper"),
        ("warm_2", "warm, 2 concurrent scrapers"),
        ("plain_1", "warm, 1 scraper, uncompressed"),
    ):
        if phase == "cold":
            rows.append((label, ph(ours, phase, "p50_ms"), ph(peer, phase, "p50_ms"), _ms))
            continue
        for q in ("p50", "p99"):
            rows.append(
                (f"{label}: {q}", ph(ours, phase, f"{q}_ms"), ph(peer, phase, f"{q}_ms"), _ms)
            )
    if fresh is not None:
        for q in ("p50", "p99"):
            rows.append(
                (
                    f"fresh full collection (ours: every TTL 0), 1 scraper: {q}",
                    ph(fresh, "warm_1", f"{q}_ms"),
                    ph(peer, "warm_1", f"{q}_ms"),
                    _ms,
                )
            )
    rows.append(("series", ours.get("series"), peer.get("series"), _num))
    kb = lambda v: None if v is None else v / 1024  # noqa: E731
    rows.append(("response, gzip", kb(ours.get("bytes_gzip")), kb(peer.get("bytes_gzip")),
                 lambda v: _num(v, " KiB")))
    rows.append(("response, uncompressed", kb(ours.get("bytes_plain")),
                 kb(peer.get("bytes_plain")), lambda v: _num(v, " KiB")))
    rows.append(("exporter RSS, peak", ours.get("rss_peak_mb"), peer.get("rss_peak_mb"),
                 lambda v: _num(v, " MB")))
    if "statements_per_scrape" in ours.get("phases", {}).get("warm_1", {}):
        rows.append(("PostgreSQL statements per scrape, back to back",
                     ph(ours, "warm_1", "statements_per_scrape"),
                     ph(peer, "warm_1", "statements_per_scrape"), _num))
    if interval:
        o, p = interval.get(ours["name"], {}), interval.get(peer["name"], {})
        for key in sorted(o):
            n = key.split("_")[1]
            rows.append((f"PostgreSQL statements per scrape interval, {n} scraper(s)",
                         o[key]["statements_per_interval"], p.get(key, {}).get(
                             "statements_per_interval"), _num))
            rows.append((f"scrape at the interval, {n} scraper(s): p50",
                         o[key]["p50_ms"], p.get(key, {}).get("p50_ms"), _ms))
            rows.append((f"scrape at the interval, {n} scraper(s): max",
                         o[key]["max_ms"], p.get(key, {}).get("max_ms"), _ms))
    if "census" in ours:
        census, kg = ours["census"], "key groups" in peer["name"]
        first = census["first_pass_seconds"]
        rows.append(("key census, one full pass (peer: one scrape)",
                     None if first is None else first * 1000,
                     ph(peer, "warm_1", "p50_ms") if kg else None, _ms))
        for q in ("p50", "p99"):
            rows.append((f"scrape while the census runs: {q}", census[f"{q}_ms"],
                         ph(peer, "warm_1", f"{q}_ms") if kg else None, _ms))
    if "slowlog_longest" in ours:
        a, b = ours["slowlog_longest"], peer["slowlog_longest"]
        rows.append(("longest Redis command in SLOWLOG", a["microseconds"] / 1000,
                     b["microseconds"] / 1000, _slow_ms))
        rows.append(("  (that command)", a["command"], b["command"], str))
    return rows


def _table(title: str, ours: dict, peers: list[dict], rows_for: Callable) -> list[str]:
    head = "| | ours |" + "".join(f" {p['name']} | ours / peer |" for p in peers)
    lines = [f"### {title}", "", head, "|---|---:|" + "---:|---:|" * len(peers)]
    per_peer = [rows_for(ours, p) for p in peers]
    for i, (label, value, _, fmt) in enumerate(per_peer[0]):
        cells = [label, fmt(value) if value is not None else NA]
        for rows in per_peer:
            _, a, b, f = rows[i]
            cells.append(f(b) if b is not None else NA)
            no_ratio = f is str or (f is _slow_ms and not a)  # under the threshold: no ratio
            cells.append("" if no_ratio else _ratio(a, b))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _load_line(results: dict) -> str:
    shares = [t["other_cpu_share"] for t in results["targets"].values() if "other_cpu_share" in t]
    if not shares:
        return ""
    return (
        f"CPU used by other jobs on the machine while each exporter was measured: "
        f"{min(shares):.0%} to {max(shares):.0%} of its {os.cpu_count()} CPUs."
    )


def report(results: dict) -> str:
    p = results["preset"]
    env = results["environment"]
    lines = [
        "# Benchmark: tmi-db-exporter vs postgres_exporter and redis_exporter",
        "",
        f"`{results['command']}` — {results['finished']}, {results['duration_seconds']:.0f} s.",
        "",
        f"Data: {p['tables']:,} filler tables with 2 indexes each (+ the TMI schema), "
        f"every {data.DEAD_EVERY}th with {data.DEAD_ROWS} dead tuples, "
        f"{p['statements']:,} distinct statements in pg_stat_statements; "
        f"{p['keys']:,} Redis keys in the guide's patterns. "
        f"Latency: {p['scrapes']} scrapes per phase and scraper "
        f"({p['slow_scrapes']} for targets needing seconds per scrape), keep-alive, "
        f"Prometheus headers (`Accept-Encoding: gzip`, "
        f"`X-Prometheus-Scrape-Timeout-Seconds: {SCRAPE_TIMEOUT:g}`); each exporter measured "
        f"alone; ours with min_ttl 0, so that every scrape runs its TTL-0 queries as a scrape "
        f"at a real interval does. Statements per interval: scraped every {p['interval']:g} s "
        f"over {p['intervals']} intervals, ours (default settings) and postgres_exporter side by "
        "side, one instance per number of scrapers, all started together, each counted by its "
        "own role in pg_stat_statements.",
        "",
        f"Machine: {env['cpus']} CPUs, {env['memory_gb']:.0f} GB, {env['platform']}; "
        f"PostgreSQL {env['postgres']}, Redis {env['redis']}; {env['postgres_exporter']}; "
        f"{env['redis_exporter']}; tmi-db-exporter {env['revision']}.",
        "",
        _load_line(results),
        "",
        "Ratios are ours / peer: below 1 is better for ours (fewer ms, bytes, MB, statements);"
        " n/a: not measured or not applicable.",
        "",
    ]
    r = results["targets"]
    if "ours_pg" in r and "postgres_exporter" in r:
        lines += _table(
            "PostgreSQL",
            r["ours_pg"],
            [r["postgres_exporter"]],
            lambda o, q: _rows(o, q, results.get("interval"), r.get("ours_pg_fresh")),
        )
        lines += ["", f"postgres_exporter: {r['postgres_exporter']['note']}."]
        if "cold_collection_seconds" in r["ours_pg"]:
            lines.append(
                "Ours, PostgreSQL collection wall time (longest collector): cold "
                f"{r['ours_pg']['cold_collection_seconds'] * 1000:.0f} ms"
                + (
                    f", every-TTL-0 run {r['ours_pg_fresh']['warm_collection_seconds'] * 1000:.0f}"
                    " ms" if "ours_pg_fresh" in r else ""
                )
                + "."
            )
        lines.append("")
    peers = [r[k] for k in ("redis_exporter", "redis_exporter_kg") if k in r]
    if "ours_redis" in r and peers:
        lines += _table("Redis", r["ours_redis"], peers, lambda o, q: _rows(o, q, None, None))
        lines += ["", "; ".join(f"{p['name']}: {p['note']}" for p in peers) + "."]
        lines.append(
            f"SLOWLOG threshold {SLOWLOG_THRESHOLD_US} µs, reset before each exporter; only "
            "commands from the exporter's own (named) connections count."
        )
        lines.append("")
    for key in ("ours_pg", "ours_pg_fresh", "ours_redis"):
        t = r.get(key, {})
        if t.get("collector_errors") or t.get("deadline_misses"):
            lines.append(
                f"Ours ({key}): {t['collector_errors']:.0f} collector errors and "
                f"{t['deadline_misses']:.0f} deadline misses during the run (per collector in "
                "the JSON)."
            )
    for target in r.values():
        errors = sum(ph.get("errors", 0) for ph in target.get("phases", {}).values())
        if errors:
            lines.append(f"**{target['name']}: {errors} scrapes did not answer 200.**")
    return "\n".join(lines).rstrip() + "\n"


def scaling_report(results: dict) -> str:
    lines = [
        "# Scaling: our exporter vs number of tables",
        "",
        f"`{results['command']}` — {results['finished']}, {results['duration_seconds']:.0f} s; "
        f"tmi-db-exporter {results['environment']['revision']}.",
        "",
        "Each table has 2 indexes (so per-table and per-index series grow with it). Collection "
        "time is the wall time of our PostgreSQL collection in the first scrape (longest collector "
        "duration, they run concurrently); fresh is a "
        "scrape with every TTL at 0; statements per interval at "
        f"{results['preset']['interval']:g} s, 1 scraper.",
        "",
        "| tables | cold scrape | collection time | fresh scrape p50 | warm p50 | warm p99 "
        "| warm p99, 2 scrapers | statements / interval | series | RSS peak "
        "| collector errors / deadline misses |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["levels"]:
        o, f = row["ours"], row.get("fresh", {})
        ph = o["phases"]
        lines.append(
            f"| {row['tables']:,} | {_ms(ph['cold']['p50_ms'])} "
            f"| {_ms(o.get('cold_collection_seconds', 0) * 1000)} "
            f"| {_ms(f.get('phases', {}).get('warm_1', {}).get('p50_ms'))} "
            f"| {_ms(ph['warm_1']['p50_ms'])} | {_ms(ph['warm_1']['p99_ms'])} "
            f"| {_ms(ph['warm_2']['p99_ms'])} "
            f"| {_num(row.get('statements_per_interval'))} | {_num(o['series'])} "
            f"| {_num(o['rss_peak_mb'], ' MB')} "
            f"| {_num(o.get('collector_errors'))} / {_num(o.get('deadline_misses'))} |"
        )
    lines += [
        "",
        "Server time of our most expensive statements in the every-TTL-0 run (pg_stat_statements,"
        " our role only):",
        "",
        "| tables | calls | mean | total | statement |",
        "|---:|---:|---:|---:|---|",
    ]
    for row in results["levels"]:
        for st in row.get("fresh", {}).get("top_statements", []):
            query = st["query"].replace("|", "\\|")
            lines.append(
                f"| {row['tables']:,} | {st['calls']} | {_ms(st['mean_ms'])} "
                f"| {_ms(st['total_ms'])} | `{query}` |"
            )
    return "\n".join(lines) + "\n"
