"""The benchmark's reference data without a server (the harness end to end:
tests/integration/test_bench.py)."""

from __future__ import annotations

from bench import data


def test_key_counts_add_up() -> None:
    for keys in (1, 19, 2_000, 1_000_000):
        counts = data.key_counts(keys)
        assert sum(counts.values()) == keys
        assert all(n >= 0 for n in counts.values())
