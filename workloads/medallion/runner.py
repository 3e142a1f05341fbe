"""What `--follow` jobs share: one structlog line per batch, and a stop on SIGTERM/SIGINT that lets the current
batch finish (a supervisor's stop never leaves half a batch behind, though a kill would be harmless too)."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable

import structlog


def configure_logging(level: int = logging.INFO) -> None:
    """key=value lines on stderr, readable in a supervisor's log file."""
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class Stop:
    """Set by SIGTERM or SIGINT; `wait` sleeps until the next batch unless a stop comes first."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> "Stop":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self.set(signal.Signals(signum).name))
        return self

    def set(self, why: str = "requested") -> None:
        if not self._event.is_set():
            structlog.get_logger().info("stopping after the current batch", signal=why)
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


def follow(step: Callable[[], bool], interval: float, stop: Stop) -> None:
    """Run `step` until stopped; sleep `interval` after a step that found nothing to do."""
    while not stop.requested:
        if not step():
            stop.wait(interval)
