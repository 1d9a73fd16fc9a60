"""Per-collector result cache: TTL, single-flight collection and scrape deadlines.

A scrape never does what was done a moment ago: a result younger than its TTL is served as the
bytes rendered when it was collected. When it is older, the first scrape starts one collection
and every concurrent scrape waits for that same run. A scrape that runs out of time gets the
previous result (its age is a metric) rather than an error, and a failing collector never takes
the others down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from tmi_db_exporter.core.contract import PartialFailure, Skipped, Unavailable
from tmi_db_exporter.core.exposition import Block, Family
from tmi_db_exporter.core.memory import LARGE_RESULT_BYTES, release_freed_memory
from tmi_db_exporter.core.stopping import bind_stop, stop_requested

log = logging.getLogger(__name__)

Collect = Callable[[], Awaitable[list[Family]]]
FIRST_BACKGROUND_WAIT = 0.5  # seconds: time enough for a census of thousands of keys
RETRY_SECONDS = 5.0  # a background collector without a result tries again this soon
# A result counts as stale this share of its TTL early: a scrape due a moment before the TTL ends
# (scrape jitter) then collects afresh, so a TTL of two scrape intervals refreshes every second
# scrape rather than every third.
EARLY_REFRESH = 0.05
# How long close() waits for a collection to end after asking it to stop. A library that
# swallowed the cancellation may be stuck in a command until its connection is closed under it.
# With the steps after it (see app/target.py) a target closes within about 2.5 s: Kubernetes
# and systemd kill after their grace period, and a reload should answer within seconds.
CLOSE_WAIT = 1.0
Fallback = Callable[[], list[Family]]



class CachedCollector:
    """One named collector with its last rendered result and its health figures."""

    def __init__(
        self,
        name: str,
        collect: Collect,
        ttl: float,
        timeout: float,
        background: bool = False,
        fallback: Fallback | None = None,
        min_ttl: float = 0.0,
    ) -> None:
        """`background`: expensive work (a key census, ...) that runs every `ttl` seconds on its
        own, started by the first scrape; scrapes only read its last finished result.
        `fallback`: what to serve when a run fails outright (timeout, unexpected error) or a
        scrape has nothing else to serve, e.g. `pg_up 0`: a scrape must always say whether the
        server is up, even when the server hangs.
        `min_ttl`: scrapes this close together share one result, even of TTL-0 data."""
        self.name = name
        self.ttl = max(ttl, min_ttl)
        self.timeout = timeout
        self.background = background
        self._collect = collect
        self._fallback = fallback
        self._block: Block | None = None
        self._collected_at = float("-inf")  # monotonic
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # background: run now instead of after the TTL
        self._stop = asyncio.Event()  # set by close(): no new run, running ones end early
        self._ran = asyncio.Event()  # set once a run has finished (successfully or not)
        # Health, exported by selfmetrics.
        self.duration = 0.0
        self.errors_total = 0
        self.deadline_misses_total = 0
        self.last_success = 0.0  # wall clock, for the timestamp metric
        self.last_error: str | None = None
        self.skipped: str | None = None

    @property
    def series(self) -> int:
        return self._block.series if self._block else 0

    def age(self) -> float | None:
        """Seconds since the served result was collected, None when there is none."""
        return time.monotonic() - self._collected_at if self._block else None

    async def result(self, deadline: float) -> Block | None:
        """The current result, collecting first when stale; never raises."""
        now = time.monotonic()
        if self._stop.is_set():
            return self._block  # closed (a reload swapped this target out): never start work
        if self.background:
            if self._task is not None:
                return self._block  # whatever the last finished run left, never waiting
            # The scrape that starts the work gives a quick first run a short chance to land;
            # a long one (a census of millions of keys) is simply not there yet.
            return await self.first_result(min(deadline, now + FIRST_BACKGROUND_WAIT))
        if self._block is not None and now - self._collected_at < self.ttl * (1 - EARLY_REFRESH):
            return self._block
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._refresh(), name=f"collect {self.name}")
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=max(0.0, deadline - now))
        except asyncio.CancelledError:
            if self._task is not None and not self._task.cancelled():
                raise  # the scrape itself was cancelled (client gone, shutdown)
        except TimeoutError:
            self.deadline_misses_total += 1
            if self._block is None and self._fallback is not None:
                return Block(self._fallback())
        return self._block

    async def first_result(self, deadline: float) -> Block | None:
        """A background collector's result, waiting until `deadline` at most for its first run
        to finish (starting it if need be): `once` prints a complete collection."""
        if not self.background:
            return await self.result(deadline)
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.create_task(self._loop(), name=f"background {self.name}")
        # A run that finishes, or close(): a closed collector's first run may never finish.
        waits = [asyncio.ensure_future(event.wait()) for event in (self._ran, self._stop)]
        try:
            await asyncio.wait(
                waits, timeout=max(0.0, deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for wait in waits:
                wait.cancel()
        return self._block

    def invalidate(self) -> None:
        """Collect afresh: at the next scrape, or (background) right away. The previous
        result still serves a scrape that cannot wait."""
        if self.background:
            self._wake.set()
            return
        self._collected_at = float("-inf") if self._block is None else min(
            self._collected_at, time.monotonic() - self.ttl
        )

    async def _loop(self) -> None:
        bind_stop(self._stop)
        while not stop_requested():
            started = time.monotonic()
            self._wake.clear()
            await self._refresh()  # a cancellation swallowed in there still ends the loop
            # Without a result (server down, an error) try again soon rather than after a TTL
            # that may be minutes.
            interval = self.ttl if self._block is not None else min(self.ttl, RETRY_SECONDS)
            remaining = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)

    async def close(self, wait: float = CLOSE_WAIT) -> asyncio.Task[None] | None:
        """Stop background work and any collection in flight, waiting at most `wait` seconds.
        Returns the task when it did not end in time: it is stuck in a command whose
        cancellation was swallowed, and closing its connections ends it."""
        self._stop.set()
        self._wake.set()
        task = self._task
        if task is None or task.done():
            return None
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=wait)
        if not done:
            log.warning("collector %s did not stop within %gs", self.name, wait)
            return task
        if not task.cancelled():
            task.exception()  # retrieved: an error of the last run is not news at shutdown
        return None

    async def _refresh(self) -> None:
        bind_stop(self._stop)
        started = time.monotonic()
        families: list[Family] | None = None
        error: str | None = None
        skipped, self.skipped = self.skipped, None
        try:
            async with asyncio.timeout(self.timeout):
                families = await self._collect()
        except Unavailable:
            pass
        except Skipped as exc:
            self.skipped = str(exc)
            if self.skipped != skipped:
                log.info("collector %s skipped: %s %s", self.name, exc, exc.hint)
        except PartialFailure as exc:
            families, error = exc.families, str(exc)
        except TimeoutError:
            error = f"timed out after {self.timeout:g}s"
        except Exception as exc:  # a collector bug or a query error must not end the scrape
            error = f"{type(exc).__name__}: {exc}".strip()
        if stop_requested():
            return  # closing: how a run that was cut short ended is not news
        if families is None and error is not None and self._fallback is not None:
            families = self._fallback()
        self.duration = time.monotonic() - started
        self._block = Block(families) if families is not None else None
        self._collected_at = started  # the data is as old as the moment it was asked for
        if families is not None and error is None:
            self.last_success = time.time()
        del families  # before trimming: the block holds all that is still needed
        if self._block is not None and self._block.size >= LARGE_RESULT_BYTES:
            release_freed_memory()
        self._note(error)
        self._ran.set()

    def _note(self, error: str | None) -> None:
        """Count every failure, but log only changes, so a dead server does not flood the log."""
        if error is not None:
            self.errors_total += 1
            if error != self.last_error:
                log.warning("collector %s failed: %s", self.name, error)
        elif self.last_error is not None:
            log.info("collector %s recovered", self.name)
        self.last_error = error
