"""Functions the folder tests run in worker processes: module-level, so a spawned worker can import them."""

from __future__ import annotations

import os
import time


def slow_first(item: int) -> tuple[int, float, int]:
    """``item``, when it was done and in which process; item 0 takes a second, the others no time."""
    if item == 0:
        time.sleep(1.0)
    return item, time.monotonic(), os.getpid()


def fail_on_three(item: int) -> int:
    if item == 3:
        raise ValueError("three is not allowed")
    return item


def die_on_three(item: int) -> int:
    """The worker process ends on item 3, as one killed for memory would."""
    if item == 3:
        os._exit(1)
    return item


def slow_zero(item: int) -> int:
    """``item``; item 0 takes four seconds."""
    if item == 0:
        time.sleep(4.0)
    return item
