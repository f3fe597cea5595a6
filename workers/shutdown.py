"""Graceful stop: SIGTERM (or Ctrl-C) asks a worker to finish the work in hand and exit."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import structlog

log = structlog.get_logger("crmflow.shutdown")


class StopSignal:
    """Set by SIGTERM/SIGINT; worker loops check it between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopSignal:
        """Handle SIGTERM and SIGINT (only possible in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once when a stop is requested."""
        return self._event.wait(seconds)
