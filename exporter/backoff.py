"""Reconnect pacing shared by the sources: exponential backoff with jitter.

After a failure a source waits before it tries the server again, doubling the wait with every
failure in a row up to a cap. The jitter (±20 %) keeps many exporters, or many databases of one
exporter, that lost the server at the same moment from all knocking again at the same moment.
A scrape during the wait does not touch the network: it reports the source as down.
"""

from __future__ import annotations

import random

FIRST_SECONDS = 0.5
MAX_SECONDS = 15.0
JITTER = 0.2


def backoff(failures: int) -> float:
    """Seconds to wait before the next attempt after `failures` failures in a row."""
    base = min(MAX_SECONDS, FIRST_SECONDS * 2 ** (max(1, failures) - 1))
    return base * random.uniform(1 - JITTER, 1 + JITTER)
