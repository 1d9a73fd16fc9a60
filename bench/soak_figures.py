"""What a soak run counts and checks: scrapes and cycles, and the connections, file descriptors,
memory and live objects before and after the fault cycles, which must match."""

from __future__ import annotations

from dataclasses import dataclass, field

RSS_GROWTH_LIMIT = 32 * 1024 * 1024
FD_GROWTH_LIMIT = 0


@dataclass
class Figures:
    cycles: int = 0
    cuts: int = 0
    outages: int = 0
    restarts: int = 0
    scrapes: int = 0
    failed_scrapes: int = 0
    unrecovered_cycles: int = 0
    failures: list[str] = field(default_factory=list)
    pg_connections_before: dict[str, int] = field(default_factory=dict)
    pg_connections_after: dict[str, int] = field(default_factory=dict)
    pg_clients_before: int = 0  # every client backend but the checker, through the proxy
    pg_clients_after: int = 0
    redis_clients_before: dict[str, int] = field(default_factory=dict)
    redis_clients_after: dict[str, int] = field(default_factory=dict)
    redis_all_clients_before: int = 0  # every client but the checker
    redis_all_clients_after: int = 0
    fds_before: int = 0
    fds_after: int = 0
    rss_before: int = 0
    rss_after: int = 0
    objects_before: dict[str, int] = field(default_factory=dict)  # live tasks, connections
    objects_after: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    seconds_by_kind: dict[str, float] = field(default_factory=dict)

    def problems(self) -> list[str]:
        out = []
        if self.failed_scrapes:
            out.append(f"{self.failed_scrapes} scrapes failed: {self.failures[:3]}")
        if self.unrecovered_cycles:
            out.append(f"{self.unrecovered_cycles} cycles did not recover")
        if self.pg_connections_after != self.pg_connections_before:
            out.append("PostgreSQL connections changed")
        if self.pg_clients_after != self.pg_clients_before:
            out.append("PostgreSQL client backends changed")
        if self.redis_clients_after != self.redis_clients_before:
            out.append("Redis clients (by name) changed")
        if self.redis_all_clients_after != self.redis_all_clients_before:
            out.append("Redis clients (in total) changed")
        if self.fds_after - self.fds_before > FD_GROWTH_LIMIT:
            out.append(f"file descriptors grew by {self.fds_after - self.fds_before}")
        if self.rss_after - self.rss_before > RSS_GROWTH_LIMIT:
            out.append(f"RSS grew by {(self.rss_after - self.rss_before) / 2**20:.1f} MiB")
        for kind, count in self.objects_after.items():
            if count > self.objects_before.get(kind, 0):
                out.append(f"more live {kind} than before")
        return out

    def report(self) -> str:
        mib = 2**20
        return "\n".join([
            f"fault cycles       {self.cycles} ({self.cuts} link cuts, {self.outages} link "
            f"outages, {self.restarts} real server restarts) in {self.seconds:.0f} s",
            f"scrapes            {self.scrapes}, failed {self.failed_scrapes}, cycles not "
            f"recovered {self.unrecovered_cycles}",
            f"PostgreSQL conns   before {self.pg_connections_before} "
            f"after {self.pg_connections_after} (all clients {self.pg_clients_before} -> "
            f"{self.pg_clients_after})",
            f"Redis clients      before {self.redis_clients_before} "
            f"after {self.redis_clients_after} (all clients {self.redis_all_clients_before} -> "
            f"{self.redis_all_clients_after})",
            f"file descriptors   before {self.fds_before} after {self.fds_after}",
            f"RSS                before {self.rss_before / mib:.1f} MiB "
            f"after {self.rss_after / mib:.1f} MiB",
            f"live objects       before {self.objects_before} after {self.objects_after}",
            "seconds per cycle  " + ", ".join(
                f"{kind} {seconds / max(1, getattr(self, kind)):.2f}"
                for kind, seconds in sorted(self.seconds_by_kind.items())
            ),
        ])
