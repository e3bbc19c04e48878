"""Bounded retries for transient failures: exponential backoff with jitter, ``Retry-After`` honoured.

Only errors whose class says ``retryable`` (unreachable, timeout, 429, 5xx) are retried, and
only within both an attempt budget and a total-time budget. Everything else is raised at once:
a context overflow or a malformed request would fail the same way again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from offload.errors import ProviderError

T = TypeVar("T")
E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to retry one call.

    ``attempts`` counts the first try. Delays grow ``base * 2**n`` up to ``cap`` with ±``jitter``
    (a fraction); a server's ``Retry-After`` replaces the computed delay. No retry starts once
    ``budget`` seconds have passed since the first try.
    """

    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0
    jitter: float = 0.2
    budget: float = 60.0

    def delay(self, retry_index: int, hint: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0-based)."""
        if hint is not None:
            return min(hint, self.budget)
        raw = min(self.cap, self.base * 2.0**retry_index)
        spread = raw * self.jitter
        offset: float = (rng or random).uniform(-spread, spread)
        return max(0.0, raw + offset)


NO_RETRY = RetryPolicy(attempts=1)

Sleep = Callable[[float], Awaitable[None]]
OnRetry = Callable[[ProviderError, int, float], None]


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: OnRetry | None = None,
    should_retry: Callable[[ProviderError], bool] | None = None,
) -> T:
    """Run ``fn`` until it succeeds, a non-retryable error occurs, or the budgets run out.

    ``should_retry`` can veto retrying an otherwise retryable error (the router uses it to
    fail over at once from a server that refuses connections).
    """
    started = clock()
    for index in range(policy.attempts):
        try:
            return await fn()
        except ProviderError as exc:
            vetoed = should_retry is not None and not should_retry(exc)
            if not exc.retryable or vetoed or index + 1 >= policy.attempts:
                raise
            hint = getattr(exc, "retry_after", None)
            wait = policy.delay(index, hint)
            if clock() - started + wait > policy.budget:
                raise
            if on_retry is not None:
                on_retry(exc, index + 1, wait)
            await sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


async def stream_with_retry(
    start: Callable[[], AsyncIterator[E]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: OnRetry | None = None,
    should_retry: Callable[[ProviderError], bool] | None = None,
) -> AsyncIterator[E]:
    """Like ``call_with_retry`` for a stream: retried only while nothing has been yielded yet."""
    started = clock()
    for index in range(policy.attempts):
        yielded = False
        try:
            async for event in start():
                yielded = True
                yield event
            return
        except ProviderError as exc:
            vetoed = should_retry is not None and not should_retry(exc)
            if yielded or vetoed or not exc.retryable or index + 1 >= policy.attempts:
                raise
            wait = policy.delay(index, getattr(exc, "retry_after", None))
            if clock() - started + wait > policy.budget:
                raise
            if on_retry is not None:
                on_retry(exc, index + 1, wait)
            await sleep(wait)
