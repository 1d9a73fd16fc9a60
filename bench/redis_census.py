"""Key census benchmark: our background census against redis_exporter's key groups, same data.

    python -m bench.redis_census --keys 1000000     # the reference scale (a few minutes)
    python -m bench.redis_census --keys 100000      # a quick run

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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bench.census_report import report
from bench.data import KEY_GROUPS, fill_redis
from bench.exporters import ROOT
from bench.measure import SCRAPE_TIMEOUT
from bench.targets import PEER_KEY_GROUPS, PEER_REDIS
from tmi_db_exporter.demo.servers import LocalRedis, free_port

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


def exact_memory(r: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key per group (the bench's own reference, pipelined)."""
    totals = dict.fromkeys(KEY_GROUPS, 0)
    pipe, pending = r.pipeline(transaction=False), []
    cursor = 0
    while True:
        cursor, keys = r.scan(cursor, count=5000)
        for key in keys:
            group = next((g for g in KEY_GROUPS if str(key).startswith(
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
        PEER_REDIS, f"-redis.addr=redis://{server.host}:{server.port}",
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_census", description=__doc__,
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
    text = report(args.keys, fill_seconds, ours, peers, exact, stall, redis_version)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
