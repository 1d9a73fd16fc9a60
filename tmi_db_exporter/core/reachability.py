"""Whether a server is up, and when to knock again after it was not.

After a failure a source waits before it tries the server again, doubling the wait with every
failure in a row up to a cap. The jitter (±20 %) keeps many exporters, or many databases of one
exporter, that lost the server at the same moment from all knocking again at the same moment.
A scrape during the wait does not touch the network: it reports the source as down.
"""

from __future__ import annotations

import logging
import random
import time

log = logging.getLogger(__name__)

FIRST_SECONDS = 0.5
MAX_SECONDS = 15.0
JITTER = 0.2


def backoff(failures: int) -> float:
    """Seconds to wait before the next attempt after `failures` failures in a row."""
    base = min(MAX_SECONDS, FIRST_SECONDS * 2 ** (max(1, failures) - 1))
    return base * random.uniform(1 - JITTER, 1 + JITTER)


class Backoff:
    """Failures in a row of one kind of attempt, and when the next attempt may be made."""

    __slots__ = ("failures", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = float("-inf")  # monotonic

    def failed(self) -> None:
        self.failures += 1
        self.retry_at = time.monotonic() + backoff(self.failures)

    def succeeded(self) -> None:
        self.failures, self.retry_at = 0, float("-inf")

    @property
    def waiting(self) -> bool:
        """Too soon to try again."""
        return time.monotonic() < self.retry_at


class Reachability:
    """The up/down state of one server, logged on change only, so that a dead server does not
    flood the log, with the backoff before the next attempt."""

    __slots__ = ("_describe", "_kind", "backoff", "checked", "last_error", "up")

    def __init__(self, kind: str, describe: str) -> None:
        self._kind = kind  # "PostgreSQL", "Redis"
        self._describe = describe  # the server, never with a password
        self.backoff = Backoff()
        self.up = False
        self.checked = False  # up is known (a first attempt was made)
        self.last_error: str | None = None

    @property
    def known_down(self) -> bool:
        return self.checked and not self.up

    def succeeded(self) -> bool:
        if not self.up:
            log.info("%s %s is up", self._kind, self._describe)
        self.up, self.checked, self.last_error = True, True, None
        self.backoff.succeeded()
        return True

    def failed(self, error: BaseException) -> bool:
        """Count a failed attempt; the next one waits for the backoff. Always False."""
        self.backoff.failed()
        message = str(error).strip() or type(error).__name__
        if message != self.last_error:
            log.warning("%s %s is unreachable: %s", self._kind, self._describe, message)
        self.last_error = message
        return self.down()

    def down(self) -> bool:
        """Down without a new attempt (backing off, or no answer in time). Always False."""
        self.up, self.checked = False, True
        return False
