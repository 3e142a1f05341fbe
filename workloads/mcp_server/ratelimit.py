"""Per-caller rate limits: a token bucket per principal that refills `limit` calls per minute. In memory, so each
replica limits on its own (replicas x limit in total behind a load balancer)."""
from __future__ import annotations

import threading
import time

from workloads.mcp_server.errors import RateLimited


class RateLimiter:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)

    def take(self, name: str, per_minute: int) -> None:
        """Spend one call of `name`'s allowance or raise `RateLimited` saying when to retry."""
        now = self._clock()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(name, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[name] = (tokens, now)
                retry = (1.0 - tokens) / rate
                raise RateLimited(f"rate limit of {per_minute} calls per minute exceeded for {name}; "
                                  f"retry in {retry:.1f} s", retry_after=retry)
            self._buckets[name] = (tokens - 1.0, now)
