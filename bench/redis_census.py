"""Key census benchmark: our background census against redis_exporter's key groups, same data.

    python bench/redis_census.py --keys 1000000     # the reference scale (a few minutes)
    python bench/redis_census.py --keys 100000      # a quick run

One throwaway redis-server (`slowlog-log-slower-than 5000`: every command of 5 ms or more is
logged, with the name of the client that sent it) is filled with keys in the operations guide's
patterns by `bench.data.fill_redis` (5% without TTL). Then, one after the other:

- ours: `python -m tmi_db_exporter run` with the default census settings, scraped once a second the
  way Prometheus does it (`X-Prometheus-Scrape-Timeout-Seconds: 10`) through two censuses: the
  first after the start (scrapes wait for it up to their deadline, see below) and the next one
  (scrapes serve the previous census meanwhile);
- redis_exporter with `-check-key-groups` for the same five groups, at its default
  `-check-keys-batch-size` (1000) and at 100 (our SCAN COUNT); its key groups are computed
  inside the scrape, by one Lua script per batch.

Before each exporter the slowlog, commandstats and latency histograms are reset, so what they
show afterwards was caused by that exporter: the slowlog entries (by client name), the longest
command (the top LATENCY HISTOGRAM bucket, a power of two in microseconds) and the server's CPU
time (INFO used_cpu_*). The result is written to bench/results/redis-census.md and printed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.data import fill_redis  # noqa: E402
from tmi_db_exporter.core.cache import FIRST_BACKGROUND_WAIT  # noqa: E402
from tmi_db_exporter.demo.servers import LocalRedis, free_port  # noqa: E402

GROUPS = ("session", "cache", "auth", "rate_limit", "lock")
PEER_KEY_GROUPS = "^(session):,^(cache):,^(auth):token:,^(rate_limit):user:,^(lock):"
PEER_BINARY = "prometheus-redis-exporter"
SCRAPE_TIMEOUT = 10.0  # Prometheus' default, sent as X-Prometheus-Scrape-Timeout-Seconds
RESULT = ROOT / "bench" / "results" / "redis-census.md"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


# ----------------------------------------------------------------------------- helpers


def scrape(port: int, timeout: float = 600.0) -> tuple[float, str]:
    """One GET /metrics as Prometheus sends it: (seconds, body)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics",
                     headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)})
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    return time.perf_counter() - started, body


def samples(text: str, name: str) -> dict[str, float]:
    """Label text -> value of every sample of `name`."""
    out = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == name:
            out[match.group(2) or ""] = float(match.group(3))
    return out


def group_values(text: str, name: str) -> dict[str, float]:
    """key_group -> value for db0."""
    out = {}
    for labels, value in samples(text, name).items():
        group = re.search(r'key_group="([^"]*)"', labels)
        if group and 'db="db0"' in labels:
            out[group.group(1)] = value
    return out


def wait_http(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exporter exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("exporter did not start listening")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reset_server_stats(r: redis.Redis) -> None:
    r.slowlog_reset()
    r.config_resetstat()  # commandstats, latency histograms, keyspace hits ...


def server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def slow_entries(r: redis.Redis, client_prefix: str) -> list[tuple[str, int]]:
    """(command name, microseconds) of the slowlog entries the client sent: names only."""
    entries = r.execute_command("SLOWLOG", "GET", 100_000)
    return [(str(e[3][0]).lower(), int(e[2])) for e in entries
            if str(e[5]).startswith(client_prefix)]


def latency_summary(r: redis.Redis, commands: tuple[str, ...]) -> dict[str, Any]:
    """From LATENCY HISTOGRAM since the reset: the command with the highest bucket and that
    bucket's upper bound in microseconds (it ran at most that long), and the calls over 1 ms."""
    reply = r.execute_command("LATENCY", "HISTOGRAM", *commands)
    best, calls, over = ("-", 0), 0, 0
    for i in range(0, len(reply), 2):
        name, details = str(reply[i]), reply[i + 1]
        fields = dict(zip(details[::2], details[1::2], strict=True))
        buckets = fields.get("histogram_usec", [])
        bounds = [int(b) for b in buckets[::2]]
        counts = [int(c) for c in buckets[1::2]]  # cumulative
        calls += int(fields.get("calls", 0))
        below = max((c for b, c in zip(bounds, counts, strict=True) if b <= 1056), default=0)
        over += (counts[-1] if counts else 0) - below
        if bounds and bounds[-1] > best[1]:
            best = (name, bounds[-1])
    return {"longest": best, "calls": calls, "over_1ms": over}


def intrinsic_latency(seconds: int = 5) -> float | None:
    """The machine's worst scheduling stall in ms (redis-cli --intrinsic-latency): a stall
    inside any command makes it look slow in SLOWLOG, whoever sent it."""
    try:
        out = subprocess.run(["redis-cli", "--intrinsic-latency", str(seconds)],
                             capture_output=True, text=True, timeout=seconds + 10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    avg = re.search(r"avg latency: ([\d.]+) microseconds", out)
    worst = re.search(r"Worst run took (\d+)x longer", out)
    return float(avg.group(1)) * int(worst.group(1)) / 1e3 if avg and worst else None


def _label(labels: str, name: str) -> str:
    match = re.search(name + r'="([^"]*)"', labels)
    return match.group(1) if match else ""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def exact_memory(r: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key per group (the bench's own reference, pipelined)."""
    totals = dict.fromkeys(GROUPS, 0)
    pipe, pending = r.pipeline(transaction=False), []
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, count=5000)
        for key in keys:
            group = next((g for g in GROUPS if str(key).startswith(
                {"auth": "auth:token:", "rate_limit": "rate_limit:user:"}.get(g, g + ":"))), None)
            if group:
                pipe.memory_usage(key)
                pending.append(group)
        for group, usage in zip(pending, pipe.execute(), strict=True):
            totals[group] += usage or 0
        pending = []
        if cursor == 0:
            return totals


# ---------------------------------------------------------------------------- exporters

OUR_COMMANDS = ("scan", "pexpiretime", "memory|usage", "time", "info", "slowlog|get",
                "slowlog|len", "latency|latest", "command|info", "command|list", "config|get",
                "ping", "client|setname")
PEER_COMMANDS = ("evalsha", "eval", "scan", "memory|usage", "select", "info", "config|get",
                 "slowlog|get", "slowlog|len", "latency|latest", "latency|histogram",
                 "client|setname", "script|load", "dbsize", "ping")


def run_ours(server: LocalRedis, r: redis.Redis) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_HOST": server.host,
        "REDIS_PORT": str(server.port),
        "TMI_EXPORTER_LISTEN_ADDRESS": "127.0.0.1",
        "TMI_EXPORTER_LISTEN_PORT": str(port),
        "REDIS_KEY_CENSUS_INTERVAL": "1s",  # the next census starts right after the first
        "TMI_EXPORTER_LOG_LEVEL": "warning",
    }
    reset_server_stats(r)
    cpu_before = server_cpu(r)
    process = subprocess.Popen([sys.executable, "-m", "tmi_db_exporter", "run"], cwd=ROOT, env=env)
    try:
        wait_http(port, process)
        first: list[float] = []
        steady: list[float] = []
        finished: list[float] = []
        cpu_marks = [cpu_before]
        text = ""
        while len(finished) < 2:
            took, text = scrape(port)
            mark = samples(text, "redis_key_census_last_finished_timestamp_seconds")
            done = next(iter(mark.values()), None)
            if done is None:
                first.append(took)
            elif not finished or done != finished[0]:  # a census finished since last time
                finished.append(done)
                cpu_marks.append(server_cpu(r))
            else:
                steady.append(took)
            time.sleep(max(0.0, 1.0 - took))
        duration = samples(text, "redis_key_census_duration_seconds")[""]
        result = {
            "name": "tmi-db-exporter",
            "settings": "SCAN COUNT 100, 5 ms pause, 100 MEMORY USAGE samples per group",
            "duration": duration,
            "counts": group_values(text, "redis_key_group_count"),
            "no_ttl": group_values(text, "redis_key_group_keys_without_ttl"),
            "memory": group_values(text, "redis_key_group_memory_usage_bytes"),
            "cpu": cpu_marks[2] - cpu_marks[1],  # the second census, start to end
            "scrapes_first": first,
            "scrapes_during": steady,
            "commands": samples(text, "redis_key_census_commands"),
            "hits_exported": samples(text, "redis_keyspace_hits_total").get(""),
        }
    finally:
        stop(process)
    result["slow"] = slow_entries(r, "tmi-db-exporter")
    result["latency"] = latency_summary(r, OUR_COMMANDS)
    result["hits_server"] = int(r.info("stats")["keyspace_hits"])
    return result


def run_peer(server: LocalRedis, r: redis.Redis, batch: int) -> dict[str, Any]:
    port = free_port()
    command = [
        PEER_BINARY, f"-redis.addr=redis://{server.host}:{server.port}",
        f"-web.listen-address=127.0.0.1:{port}", f"-check-key-groups={PEER_KEY_GROUPS}",
        f"-check-keys-batch-size={batch}",
    ]
    reset_server_stats(r)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, process)
        cpu_before = server_cpu(r)
        took, text = scrape(port)  # the key groups are computed inside this scrape
        cpu = server_cpu(r) - cpu_before
    finally:
        stop(process)
    return {
        "name": f"redis_exporter 1.45, batch {batch}",
        "settings": f"-check-key-groups (5 groups), -check-keys-batch-size {batch}",
        "duration": samples(text, "redis_last_key_groups_scrape_duration_milliseconds")[""] / 1e3,
        "counts": group_values(text, "redis_key_group_count"),
        "no_ttl": {},
        "memory": group_values(text, "redis_key_group_memory_usage_bytes"),
        "cpu": cpu,
        "scrapes_first": [],
        "scrapes_during": [took],
        "commands": {},
        "slow": slow_entries(r, "redis_exporter"),
        "latency": latency_summary(r, PEER_COMMANDS),
    }


# ------------------------------------------------------------------------------ report


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms" if seconds == seconds else "-"


def _ratio(peer: float, ours: float) -> str:
    if not ours:
        return "-"
    ratio = peer / ours
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def report(keys: int, fill_seconds: float, ours: dict[str, Any], peers: list[dict[str, Any]],
           exact: dict[str, int], stall: float | None) -> str:
    def slow_text(res: dict[str, Any]) -> str:
        if not res["slow"]:
            return "none"
        top = max(res["slow"], key=lambda e: e[1])
        return f"{len(res['slow'])}, longest {top[1] / 1e3:,.1f} ms ({top[0]})"

    def longest_text(res: dict[str, Any]) -> str:
        name, usec = res["latency"]["longest"]
        return f"≤ {usec / 1e3:,.3f} ms ({name})"

    def over_text(res: dict[str, Any]) -> str:
        return f"{res['latency']['over_1ms']:,} of {res['latency']['calls']:,}"

    def memory_text(res: dict[str, Any]) -> str:
        total = sum(res["memory"].get(g, 0) for g in GROUPS)
        return f"{total / 2**20:,.1f} MiB ({total / sum(exact.values()):.3f} of exact)"

    columns = [ours, *peers]
    rows = [
        ("keys counted in the 5 groups",
         [f"{sum(c['counts'].get(g, 0) for g in GROUPS):,.0f}" for c in columns], None),
        ("census duration (one full pass)", [f"{c['duration']:,.1f} s" for c in columns],
         [_ratio(p["duration"], ours["duration"]) for p in peers]),
        ("exporter commands in SLOWLOG (≥ 5 ms)", [slow_text(c) for c in columns], None),
        ("longest command of the exporter (LATENCY HISTOGRAM)", [longest_text(c) for c in columns],
         [_ratio(p["latency"]["longest"][1], ours["latency"]["longest"][1]) for p in peers]),
        ("commands of the exporter over 1 ms (whole run)", [over_text(c) for c in columns],
         None),
        ("Redis CPU for one census", [f"{c['cpu']:,.2f} s" for c in columns],
         [_ratio(p["cpu"], ours["cpu"]) for p in peers]),
        ("scrape latency during a census, p50",
         [_ms(statistics.median(c["scrapes_during"])) for c in columns],
         [_ratio(statistics.median(p["scrapes_during"]), statistics.median(ours["scrapes_during"]))
          for p in peers]),
        ("scrape latency during a census, max", [_ms(max(c["scrapes_during"])) for c in columns],
         [_ratio(max(p["scrapes_during"]), max(ours["scrapes_during"])) for p in peers]),
        ("memory of the 5 groups", [memory_text(c) for c in columns], None),
    ]
    head = ["", *[c["name"] for c in columns], *[f"ratio {p['name'].split(', ')[-1]} / ours"
                                                 for p in peers]]
    lines = [
        f"# Key census: {keys:,} keys",
        "",
        f"`python bench/redis_census.py --keys {keys}` on one redis-server "
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
    counts_equal = all(ours["counts"].get(g) == p["counts"].get(g) for p in peers for g in GROUPS)
    lines += [
        "",
        f"- Same counts per group in every exporter: {'yes' if counts_equal else 'NO'}. "
        f"Ours also counts the keys without TTL: "
        + ", ".join(f"{g} {ours['no_ttl'].get(g, 0):,.0f}" for g in GROUPS) + ".",
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


redis_version = "?"


def main() -> None:
    global redis_version
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--peer-batches", default="1000,100",
                        help="redis_exporter -check-keys-batch-size values to run")
    args = parser.parse_args()
    config = {"slowlog-log-slower-than": "5000", "slowlog-max-len": "100000"}
    with LocalRedis(extra_config=config) as server:
        r = redis.Redis(host=server.host, port=server.port, protocol=2, decode_responses=True)
        redis_version = r.info("server")["redis_version"]
        print("measuring this machine's scheduling stalls ...", flush=True)
        stall = intrinsic_latency()
        print(f"filling {args.keys:,} keys ...", flush=True)
        started = time.monotonic()
        fill_redis(f"redis://{server.host}:{server.port}/0", args.keys)
        fill_seconds = time.monotonic() - started
        print("our census (two passes) ...", flush=True)
        ours = run_ours(server, r)
        peers = []
        for batch in (int(b) for b in args.peer_batches.split(",") if b):
            print(f"redis_exporter, batch {batch} ...", flush=True)
            peers.append(run_peer(server, r, batch))
        exact = exact_memory(r)
    text = report(args.keys, fill_seconds, ours, peers, exact, stall)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
