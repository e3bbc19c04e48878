"""Bounded retries for transient failures: exponential backoff with jitter, ``Retry-After`` honoured.

Whether an error is retried is ``offload.routing.policy.decide``'s call (transient errors only:
unreachable, timeout, 429, 5xx; never after a stream started); this module adds the budgets —
attempts and total time — and the pauses between tries.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from offload.closing import closing
from offload.errors import ProviderError
from offload.routing.policy import Action, Situation, decide

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
    another: bool = False,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: OnRetry | None = None,
) -> T:
    """Run ``fn`` until it succeeds, ``decide`` says not to retry, or the budgets run out.

    ``another``: another candidate is left after this one (a refused connection then is not
    waited on; see ``offload.routing.policy``).
    """
    started = clock()
    index = 0
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            wait = _retry_wait(exc, policy, index, clock() - started, another=another)
            if wait is None:
                raise
            index += 1
            if on_retry is not None:
                on_retry(exc, index, wait)
        await sleep(wait)


async def stream_with_retry(
    start: Callable[[], AsyncIterator[E]],
    policy: RetryPolicy,
    *,
    another: bool = False,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[E]:
    """Like ``call_with_retry`` for a stream: retried only while nothing has been yielded yet."""
    began = clock()
    index = 0
    while True:
        yielded = False  # pragma: no mutate (None ≡ False)
        try:
            async with closing(start()) as events:
                async for event in events:
                    yielded = True
                    yield event
            return
        except ProviderError as exc:
            wait = _retry_wait(exc, policy, index, clock() - began, another=another, started=yielded)
            if wait is None:
                raise
            index += 1
            if on_retry is not None:
                on_retry(exc, index, wait)
        await sleep(wait)


def _retry_wait(
    exc: ProviderError,
    policy: RetryPolicy,
    index: int,
    elapsed: float,
    *,
    another: bool,
    started: bool = False,
) -> float | None:
    """Seconds to wait before retrying after ``exc`` (retry number ``index``), or ``None``: don't."""
    wait = policy.delay(index, exc.retry_after)
    left = index + 1 < policy.attempts and elapsed + wait <= policy.budget
    decision = decide(exc, Situation(another=another, started=started, retries_left=left))
    return wait if decision.action is Action.RETRY else None
