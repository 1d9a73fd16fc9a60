"""Memory: give what a large collection freed back to the operating system, and keep the
garbage collector from pausing scrapes.

Collecting thousands of tables builds and drops tens of thousands of small objects; glibc's
allocator keeps the freed pages, so without this the exporter's RSS would settle at the peak
of its largest collection instead of its working set. malloc_trim is glibc-only: elsewhere this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

LARGE_RESULT_BYTES = 1 << 20  # trim after results of this size; small ones are not worth it


def _load_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_trim()


def release_freed_memory() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


def freeze_startup_objects() -> None:
    """Take what exists once serving starts (modules, settings, specs: ~70,000 objects that
    live as long as the process) out of the garbage collector's view. A full collection
    otherwise walks them all, 17-30 ms during which no scrape is answered; afterwards it walks
    only what was made since. Reference counting still frees them as usual."""
    gc.collect()
    gc.freeze()
