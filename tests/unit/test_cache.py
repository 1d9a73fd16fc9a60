"""Cache: TTL reuse, single-flight, deadlines serve the previous result, failures are isolated."""

import asyncio
import contextlib
import time

from tmi_db_exporter.core.cache import CachedCollector
from tmi_db_exporter.core.contract import PartialFailure, Skipped, Unavailable
from tmi_db_exporter.core.exposition import Family
from tmi_db_exporter.core.stopping import check_stop


def counting_collector(ttl: float = 0.0, delay: float = 0.0, timeout: float = 5.0):
    calls = []

    async def collect() -> list[Family]:
        calls.append(time.monotonic())
        await asyncio.sleep(delay)
        family = Family("x", "X.")
        family.add(len(calls))
        return [family]

    return CachedCollector("x", collect, ttl=ttl, timeout=timeout), calls


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


async def test_result_younger_than_ttl_is_reused() -> None:
    collector, calls = counting_collector(ttl=60)
    first = await collector.result(deadline(1))
    second = await collector.result(deadline(1))
    assert first is second and len(calls) == 1
    assert b"x 1" in first.text


async def test_ttl_zero_collects_every_time() -> None:
    collector, calls = counting_collector(ttl=0)
    await collector.result(deadline(1))
    block = await collector.result(deadline(1))
    assert len(calls) == 2 and b"x 2" in block.text


async def test_ttl_counts_from_when_the_data_was_asked_for() -> None:
    """A TTL of two scrape intervals refreshes on every second scrape: the age counts from the
    start of the collection (not its end), and a scrape due a moment early still refreshes."""
    collector, calls = counting_collector(ttl=1.0, delay=0.3)
    await collector.result(deadline(2))
    # The next scrape comes 0.97 s after the first one started (0.67 s after it ended).
    await asyncio.sleep(max(0.0, calls[0] + 0.97 - time.monotonic()))
    block = await collector.result(deadline(2))
    assert len(calls) == 2 and b"x 2" in block.text


async def test_concurrent_scrapes_share_one_collection() -> None:
    collector, calls = counting_collector(delay=0.2)
    blocks = await asyncio.gather(*(collector.result(deadline(2)) for _ in range(10)))
    assert len(calls) == 1
    assert all(b is blocks[0] for b in blocks)


async def test_deadline_serves_previous_result_and_counts_the_miss() -> None:
    collector, calls = counting_collector(ttl=0.3, delay=0.5)
    collector.ttl = 0  # first run: no previous result, the scrape waits for it
    first = await collector.result(deadline(2))
    assert b"x 1" in first.text
    asked = time.monotonic()
    served = await collector.result(deadline(0.05))  # stale, and the new run takes 0.5 s
    assert served is first and collector.deadline_misses_total == 1
    await asyncio.sleep(0.6)  # the collection went on in the background and landed
    assert len(calls) == 2 and collector.age() <= time.monotonic() - asked
    collector.ttl = 60
    assert b"x 2" in (await collector.result(deadline(0))).text


async def test_failure_counts_logs_once_and_drops_the_result(caplog) -> None:
    fail = True

    async def collect() -> list[Family]:
        if fail:
            raise RuntimeError("relation does not exist")
        return [Family("ok", "OK.")]

    collector = CachedCollector("broken", collect, ttl=0, timeout=1)
    for _ in range(3):
        assert await collector.result(deadline(1)) is None
    assert collector.errors_total == 3
    assert sum("relation does not exist" in r.message for r in caplog.records) == 1
    fail = False
    assert await collector.result(deadline(1)) is not None
    assert collector.last_error is None and collector.last_success > 0


async def test_timeout_is_an_error() -> None:
    collector, _ = counting_collector(delay=1.0, timeout=0.1)
    assert await collector.result(deadline(2)) is None
    assert collector.errors_total == 1 and "timed out" in collector.last_error


async def test_unavailable_skipped_and_partial() -> None:
    async def down() -> list[Family]:
        raise Unavailable

    async def skipped() -> list[Family]:
        raise Skipped("extension pg_stat_statements is not installed")

    async def partial() -> list[Family]:
        family = Family("p", "P.")
        family.add(7)
        raise PartialFailure([family], "database b: connection refused")

    c_down = CachedCollector("down", down, 0, 1)
    c_skip = CachedCollector("skip", skipped, 0, 1)
    c_part = CachedCollector("part", partial, 0, 1)
    assert await c_down.result(deadline(1)) is None and c_down.errors_total == 0
    assert await c_skip.result(deadline(1)) is None and c_skip.errors_total == 0
    assert c_skip.skipped == "extension pg_stat_statements is not installed"
    block = await c_part.result(deadline(1))
    assert block is not None and b"p 7" in block.text and c_part.errors_total == 1


async def test_background_collector_runs_on_its_own_and_scrapes_only_read() -> None:
    collector, calls = counting_collector(ttl=0.2, delay=0.05)
    collector.background = True
    try:
        first = await collector.result(deadline(2))  # waits for the first run only
        assert first is not None and len(calls) == 1
        assert await collector.result(deadline(0)) is first  # a scrape never starts work
        await asyncio.sleep(0.5)
        assert len(calls) >= 2  # it went on by itself, every ttl seconds
        assert b"x 1" not in (await collector.result(deadline(0))).text
    finally:
        await collector.close()
    settled = len(calls)
    await asyncio.sleep(0.3)
    assert len(calls) == settled  # close() stopped it


def swallowing_collector(*, checks_stop: bool, step: float = 0.01):
    """A background collection that, like redis-py now and then, swallows its cancellation
    and carries on: step after step, calling check_stop() between steps or not."""
    steps, release = [], asyncio.Event()

    async def collect() -> list[Family]:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # the library "handled" it
                await asyncio.sleep(step)
            steps.append(time.monotonic())
            if checks_stop:
                check_stop()
        return [Family("x", "X.")]

    collector = CachedCollector("x", collect, ttl=0.05, timeout=60, background=True)
    return collector, steps, release


async def test_close_stops_a_loop_whose_cancellation_was_swallowed() -> None:
    collector, steps, _ = swallowing_collector(checks_stop=True)
    await collector.result(deadline(0.1))
    started = time.monotonic()
    assert await collector.close(wait=2) is None  # ended, not left behind
    assert time.monotonic() - started < 1
    settled = len(steps)
    await asyncio.sleep(0.1)
    assert len(steps) == settled


async def test_close_is_bounded_when_a_collection_cannot_be_stopped() -> None:
    """A collection that never looks at the stop signal: close() gives up after `wait` and hands
    the task back (the target then closes the connections under it)."""
    collector, steps, release = swallowing_collector(checks_stop=False)
    await collector.result(deadline(0.1))
    started = time.monotonic()
    stuck = await collector.close(wait=0.3)
    assert stuck is not None and 0.3 <= time.monotonic() - started < 1
    release.set()  # what closing its connection does: its next command fails
    await asyncio.wait({stuck}, timeout=2)
    assert stuck.done()
    await collector.result(deadline(0.1))  # a closed collector never starts another run
    settled = len(steps)
    await asyncio.sleep(0.1)
    assert len(steps) == settled


async def test_a_run_that_swallowed_the_cancellation_does_not_start_another() -> None:
    """The run returns normally after swallowing cancel(): the loop must still end."""
    runs = []

    async def collect() -> list[Family]:
        runs.append(1)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.2)
        return [Family("x", "X.")]

    collector = CachedCollector("x", collect, ttl=0.01, timeout=60, background=True)
    await collector.result(deadline(0.05))
    assert await collector.close(wait=2) is None
    await asyncio.sleep(0.1)
    assert runs == [1]
