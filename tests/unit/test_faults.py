"""Reconnect pacing: the backoff's doubling, cap and jitter (the faults themselves, on real
servers: tests/integration/test_faults.py)."""

from __future__ import annotations

from tmi_db_exporter.core import reachability as backoff_module
from tmi_db_exporter.core.reachability import backoff


def test_backoff_doubles_up_to_a_cap_with_jitter() -> None:
    first, cap = backoff_module.FIRST_SECONDS, backoff_module.MAX_SECONDS
    for failures in (1, 2, 3, 6, 50):
        base = min(cap, first * 2 ** (failures - 1))
        waits = [backoff(failures) for _ in range(200)]
        assert all(0.8 * base <= w <= 1.2 * base for w in waits)
        assert max(waits) - min(waits) > 0.1 * base  # spread out, not one value
    assert 0.8 * first <= backoff(0) <= 1.2 * first  # (as after the first failure)
