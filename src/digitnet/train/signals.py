"""Stop a run cleanly when asked to: SIGTERM (Kubernetes, Slurm, systemd, ``docker stop``) or Ctrl-C.

Python's defaults lose work: SIGTERM kills the process at once, and Ctrl-C raises ``KeyboardInterrupt``
wherever the program happens to be — possibly half-way through an optimizer step. Here the first signal only
*asks* the loop to stop; the loop finishes the step it is in, writes a resumable checkpoint, and returns.
A second signal means "now": it raises ``KeyboardInterrupt`` like plain Ctrl-C.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}  # the shell's 128 + signal number


class StopRequest:
    """A context manager that turns SIGTERM and SIGINT into a flag the training loop polls between steps."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal_name is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        # Handlers can only be installed from the main thread; elsewhere (a server's worker thread, a test
        # runner thread) the caller's own handling stays in place.
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def exit_code(self) -> int:
        """The conventional exit status for the signal that stopped the run (0 if none did)."""
        return SIGNAL_EXIT_CODES.get(self.signal_name or "", 1) if self.requested else 0
