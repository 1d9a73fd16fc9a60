"""The stop signal of a running collection, checked between commands.

`Task.cancel()` alone cannot be trusted to stop work: redis-py (asyncio) is known to swallow a
cancellation now and then and carry on as if nothing happened. A collector's task therefore
also carries an explicit stop event; long loops (the key census, a query in every database)
call `check_stop()` between commands, which ends them when either the event is set or a
cancellation was requested, swallowed or not (`Task.cancelling()` still counts it).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

_STOP: ContextVar[asyncio.Event | None] = ContextVar("tmi_db_exporter_stop", default=None)


def bind_stop(event: asyncio.Event) -> None:
    """Make `event` the stop signal of the current task (call first thing in the task)."""
    _STOP.set(event)


def stop_requested() -> bool:
    event = _STOP.get()
    if event is not None and event.is_set():
        return True
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def check_stop() -> None:
    """Raise CancelledError when the current collection was asked to stop."""
    if stop_requested():
        raise asyncio.CancelledError("stop requested")


async def end_other_tasks(wait: float) -> list[asyncio.Task[object]]:
    """Cancel every other task of the loop and wait at most `wait` seconds for them; returns
    those still running. `asyncio.run` would wait for them without a bound on its way out."""
    current = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not current]
    for task in others:
        task.cancel()
    if not others:
        return []
    _, pending = await asyncio.wait(others, timeout=wait)
    return list(pending)
