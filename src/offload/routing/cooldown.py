"""Cooldowns: a candidate that keeps failing is skipped for a while, then probed again.

Schedule per ``provider/model`` (OpenClaw's current one): 30 s after the first failure, 60 s
after the second, then 5 minutes (the cap). A success clears the record; so does a failure-free
day. The state is shared by every call in the process (a lock guards it, so threads and
asyncio tasks alike see the same cooldowns). The clock is injectable for tests.

A ``Cooldowns`` can be built with *exempt* providers whose candidates never cool down: a batch
run keeps its own cooldowns (the caller's are never touched), and the providers whose servers
it watches itself must not have one failed request bench the whole provider for 30 seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

SCHEDULE: tuple[float, ...] = (30.0, 60.0, 300.0)
RESET_AFTER = 24 * 3600.0


@dataclass
class _Record:
    failures: int
    until: float
    last_failure: float


class Cooldowns:
    """Per-candidate failure counts and cooldown deadlines."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        schedule: Sequence[float] = SCHEDULE,
        *,
        exempt: Iterable[str] = (),
    ) -> None:
        self._clock = clock
        self._schedule = tuple(schedule)
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()
        self._exempt = frozenset(exempt)

    def _exempted(self, key: str) -> bool:
        return key.partition("/")[0] in self._exempt

    def remaining(self, key: str) -> float:
        """Seconds of cooldown left for ``key`` (0 when it may be called)."""
        with self._lock:
            if self._exempted(key):
                return 0.0
            record = self._records.get(key)
            return max(0.0, record.until - self._clock()) if record else 0.0

    def failed(self, key: str) -> float:
        """Record a failure; returns the cooldown it starts, in seconds.

        A failure while a cooldown is already running does not extend it.
        """
        now = self._clock()
        with self._lock:
            if self._exempted(key):
                return 0.0
            record = self._records.get(key)
            if record and now - record.last_failure > RESET_AFTER:
                record = None
            if record and record.until > now:
                return record.until - now
            failures = (record.failures if record else 0) + 1
            seconds = self._schedule[min(failures, len(self._schedule)) - 1]
            self._records[key] = _Record(failures, now + seconds, now)
            return seconds

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures."""
        with self._lock:
            self._records.pop(key, None)

    def snapshot(self) -> dict[str, float]:
        """Keys currently cooling down, with seconds left."""
        now = self._clock()
        with self._lock:
            return {k: r.until - now for k, r in self._records.items() if r.until > now}
