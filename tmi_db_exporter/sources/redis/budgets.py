"""How often the Redis collectors run and how long each may take, by name.

A collector's time budget is counted in units of the connect and command timeout
(`redis.timeout`), since that is what each of its steps may spend before redis-py gives up.
The key census has settings of its own for both (`key_census_interval`, `key_census_timeout`).
"""

from __future__ import annotations

# INFO is read on every scrape: it is the reachability check behind redis_up.
EVERY_SCRAPE = 0.0


def info_budget(timeout: float) -> float:
    """redis-py may spend a connect timeout and a retry before it gives up: outlast that, so a
    hung server reads as a clean redis_up 0 rather than a collector timeout."""
    return timeout * 3 + 1


def slowlog_budget(timeout: float) -> float:
    """A connect and one pipelined round trip (SLOWLOG, INFO commandstats, LATENCY LATEST)."""
    return timeout * 2


def posture_budget(timeout: float) -> float:
    """Three steps one after the other: COMMAND INFO/LIST, CONFIG GET, and a PING on a fresh
    connection without credentials."""
    return timeout * 3
