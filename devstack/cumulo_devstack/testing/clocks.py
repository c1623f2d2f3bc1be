"""A service's clock moved for a while: what a job does later, with the clock back afterwards
for the rest of the test (and every test after it)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from cumulo_platform.clock import OffsetClock


@contextlib.contextmanager
def clock_moved(clock: OffsetClock, by: dt.timedelta) -> Iterator[OffsetClock]:
    """`clock` is `by` later inside the block, and where it was once the block is left."""
    before = clock.offset
    clock.offset = before + by
    try:
        yield clock
    finally:
        clock.offset = before
