"""What a soak run counts and checks: scrapes and cycles of each kind, the exporter's connections
on both servers before and after the fault cycles, and each exporter process' file descriptors,
memory and sockets between its warm-up and its end, which must match."""

from __future__ import annotations

from dataclasses import dataclass, field

RSS_GROWTH_LIMIT = 32 * 1024 * 1024
FD_GROWTH_LIMIT = 0
KINDS = ("cuts", "outages", "restarts", "reloads", "sigterms")


@dataclass
class ProcessFigures:
    """One exporter process: measured (scraper paused, servers settled) once it has served
    `warmup` cycles and again just before its SIGTERM (or at the end of the run)."""

    pid: int
    cycles: int = 0  # cycles it served (the one that started it not counted)
    measured: bool = False  # both measurements taken
    measured_cycles: int = 0  # cycles between them
    fds_before: int = 0
    fds_after: int = 0
    rss_before: int = 0
    rss_after: int = 0
    sockets_before: dict[str, int] = field(default_factory=dict)  # TCP sockets by peer
    sockets_after: dict[str, int] = field(default_factory=dict)
    exit_seconds: float | None = None  # SIGTERM until gone
    exit_code: int | None = None
    traceback: bool = False
    connections_left: bool = False  # still on a server after the process was gone
    stderr_tail: str = ""

    def problems(self, rss_limit: int = RSS_GROWTH_LIMIT) -> list[str]:
        out = []
        me = f"exporter pid {self.pid}"
        if self.measured:
            if self.fds_after - self.fds_before > FD_GROWTH_LIMIT:
                out.append(f"{me}: file descriptors grew by {self.fds_after - self.fds_before}")
            if self.rss_after - self.rss_before > rss_limit:
                grown = (self.rss_after - self.rss_before) / 2**20
                out.append(f"{me}: RSS grew by {grown:.1f} MiB")
            if self.sockets_after != self.sockets_before:
                out.append(f"{me}: sockets {self.sockets_before} -> {self.sockets_after}")
        if self.exit_seconds is not None:
            if self.exit_code != 0 or self.traceback or self.exit_seconds > 5.0:
                out.append(f"{me}: SIGTERM -> exit code {self.exit_code} after "
                           f"{self.exit_seconds:.1f}s, traceback {self.traceback}:\n"
                           f"{self.stderr_tail[-800:]}")
            if self.connections_left:
                out.append(f"{me}: its connections stayed on a server after it was gone")
        return out


@dataclass
class Figures:
    cycles: int = 0
    cuts: int = 0
    outages: int = 0
    restarts: int = 0
    reloads: int = 0
    sigterms: int = 0
    scrapes: int = 0  # outside the restart windows
    failed_scrapes: int = 0  # outside the restart windows: every one is a finding
    restart_scrapes: int = 0  # from SIGTERM until the next process listened
    restart_refused: int = 0  # of those, the ones that failed (expected: nobody listens)
    unrecovered_cycles: int = 0  # not seen back to pg_up 1 / redis_up 1
    unsettled_cycles: int = 0  # reloads after which connections did not settle back
    failed_reloads: int = 0  # not 200 (POST) or not in effect (SIGHUP) within 5 s
    failures: list[str] = field(default_factory=list)
    reloads_by_signal: int = 0
    reload_seconds_max: float = 0.0
    exit_seconds_max: float = 0.0
    start_seconds_max: float = 0.0  # a new process started until it answered /healthz
    pg_connections_before: dict[str, int] = field(default_factory=dict)
    pg_connections_after: dict[str, int] = field(default_factory=dict)
    pg_clients_before: int = 0  # every client backend but the checker, through the proxy
    pg_clients_after: int = 0
    redis_clients_before: dict[str, int] = field(default_factory=dict)
    redis_clients_after: dict[str, int] = field(default_factory=dict)
    redis_all_clients_before: int = 0  # every client but the checker
    redis_all_clients_after: int = 0
    processes: list[ProcessFigures] = field(default_factory=list)
    seconds: float = 0.0
    seconds_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def last_process(self) -> ProcessFigures:
        return self.processes[-1]

    def fail(self, what: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(what[:500])

    def problems(self, rss_limit: int = RSS_GROWTH_LIMIT) -> list[str]:
        out = []
        if self.failed_scrapes:
            out.append(f"{self.failed_scrapes} scrapes failed: {self.failures[:3]}")
        for name, count in (("cycles did not recover", self.unrecovered_cycles),
                            ("reloads left connections unsettled", self.unsettled_cycles),
                            ("reloads failed", self.failed_reloads)):
            if count:
                out.append(f"{count} {name}")
        if self.pg_connections_after != self.pg_connections_before:
            out.append("PostgreSQL connections changed")
        if self.pg_clients_after != self.pg_clients_before:
            out.append("PostgreSQL client backends changed")
        if self.redis_clients_after != self.redis_clients_before:
            out.append("Redis clients (by name) changed")
        if self.redis_all_clients_after != self.redis_all_clients_before:
            out.append("Redis clients (in total) changed")
        if not self.processes or not self.last_process.measured:
            out.append("the last exporter process was never measured")
        for process in self.processes:
            out.extend(process.problems(rss_limit))
        return out

    def report(self) -> str:
        mib = 2**20
        kinds = ", ".join(f"{getattr(self, kind)} {kind}" for kind in KINDS)
        lines = [
            f"fault cycles       {self.cycles} ({kinds}) in {self.seconds:.0f} s",
            f"scrapes            {self.scrapes}, failed {self.failed_scrapes}; while restarting "
            f"{self.restart_scrapes} (refused {self.restart_refused}); cycles not recovered "
            f"{self.unrecovered_cycles}",
            f"reloads            {self.reloads_by_signal} by SIGHUP, "
            f"{self.reloads - self.reloads_by_signal} by POST; failed {self.failed_reloads}, "
            f"unsettled {self.unsettled_cycles}, slowest {self.reload_seconds_max:.2f} s",
            f"SIGTERM            slowest exit {self.exit_seconds_max:.2f} s, slowest start "
            f"{self.start_seconds_max:.2f} s",
            f"PostgreSQL conns   before {self.pg_connections_before} "
            f"after {self.pg_connections_after} (all clients {self.pg_clients_before} -> "
            f"{self.pg_clients_after})",
            f"Redis clients      before {self.redis_clients_before} "
            f"after {self.redis_clients_after} (all clients {self.redis_all_clients_before} -> "
            f"{self.redis_all_clients_after})",
        ]
        for process in self.processes:
            end = ("running at the end" if process.exit_seconds is None else
                   f"SIGTERM: exit {process.exit_code} in {process.exit_seconds:.2f} s")
            if not process.measured:
                lines.append(f"exporter {process.pid:<8} {process.cycles} cycles, not measured;"
                             f" {end}")
                continue
            lines.append(
                f"exporter {process.pid:<8} {process.cycles} cycles, measured over "
                f"{process.measured_cycles}: fds {process.fds_before} -> {process.fds_after}, "
                f"RSS {process.rss_before / mib:.1f} -> {process.rss_after / mib:.1f} MiB, "
                f"sockets {process.sockets_before} -> {process.sockets_after}; {end}"
            )
        lines.append("seconds per cycle  " + ", ".join(
            f"{kind} {seconds / max(1, getattr(self, kind)):.2f}"
            for kind, seconds in sorted(self.seconds_by_kind.items())
        ))
        return "\n".join(lines)
