"""Bounded retries: what is retried, how long it waits, and when it gives up (injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from offload.errors import (
    AuthError,
    BadResponse,
    ContextOverflow,
    InvalidRequest,
    ProviderError,
    RateLimited,
    ServerError,
    Unreachable,
)
from offload.routing.retry import RetryPolicy, call_with_retry, stream_with_retry


class Clock:
    """A fake clock whose sleep advances time instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(errors: list[ProviderError], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = {"n": 0}

    async def fn() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return fn, calls


async def test_transient_errors_are_retried_with_growing_backoff() -> None:
    clock = Clock()
    fn, calls = failing([Unreachable("down"), ServerError("503")])
    policy = RetryPolicy(attempts=3, base=1.0, jitter=0.0)
    assert await call_with_retry(fn, policy, sleep=clock.sleep, clock=clock) == "ok"
    assert calls["n"] == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_retry_after_replaces_backoff() -> None:
    clock = Clock()
    fn, _ = failing([RateLimited("slow down", retry_after=7.0)])
    await call_with_retry(fn, RetryPolicy(jitter=0.0), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [7.0]


@pytest.mark.parametrize("error", [ContextOverflow("too long"), InvalidRequest("bad key")])
async def test_non_transient_errors_raise_at_once(error: ProviderError) -> None:
    clock = Clock()
    fn, calls = failing([error])
    with pytest.raises(type(error)):
        await call_with_retry(fn, RetryPolicy(), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 1
    assert clock.sleeps == []


async def test_attempt_budget_is_bounded() -> None:
    clock = Clock()
    fn, calls = failing([Unreachable("a"), Unreachable("b"), Unreachable("c"), Unreachable("d")])
    with pytest.raises(Unreachable, match="c"):
        await call_with_retry(fn, RetryPolicy(attempts=3, jitter=0.0), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 3


async def test_total_time_budget_is_bounded() -> None:
    clock = Clock()
    fn, calls = failing([RateLimited("x", retry_after=50.0), RateLimited("y", retry_after=50.0)])
    with pytest.raises(RateLimited, match="y"):
        await call_with_retry(fn, RetryPolicy(attempts=5, budget=60.0), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 2
    assert clock.sleeps == [50.0]


def test_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, jitter=0.2)
    delays = [policy.delay(3) for _ in range(200)]
    assert all(6.4 <= d <= 9.6 for d in delays)
    assert len(set(delays)) > 1


async def test_stream_retried_only_before_first_event() -> None:
    clock = Clock()
    starts = {"n": 0}

    async def flaky_before() -> AsyncIterator[str]:
        starts["n"] += 1
        if starts["n"] == 1:
            raise Unreachable("refused")
        yield "a"
        yield "b"

    out = [
        e
        async for e in stream_with_retry(
            flaky_before, RetryPolicy(jitter=0.0), sleep=clock.sleep, clock=clock
        )
    ]
    assert out == ["a", "b"]
    assert starts["n"] == 2

    async def dies_midway() -> AsyncIterator[str]:
        starts["n"] += 1
        yield "partial"
        raise Unreachable("reset")

    starts["n"] = 0
    got: list[str] = []

    async def consume() -> None:
        async for e in stream_with_retry(dies_midway, RetryPolicy(), sleep=clock.sleep, clock=clock):
            got.append(e)

    with pytest.raises(Unreachable):
        await consume()
    assert got == ["partial"]
    assert starts["n"] == 1


@pytest.mark.parametrize(
    "error",
    [
        AuthError("401 invalid key"),
        InvalidRequest("bad key"),
        ContextOverflow("too long"),
        BadResponse("garbled"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_stream_does_not_retry_what_must_not_be_retried(error: ProviderError) -> None:
    clock = Clock()
    starts = {"n": 0}

    async def refuses() -> AsyncIterator[str]:
        starts["n"] += 1
        raise error
        yield "never"  # pragma: no cover

    with pytest.raises(type(error)):
        async for _ in stream_with_retry(refuses, RetryPolicy(attempts=5), sleep=clock.sleep, clock=clock):
            pass
    assert starts["n"] == 1
    assert clock.sleeps == []


async def test_stream_retries_transient_errors_within_the_attempt_budget() -> None:
    clock = Clock()
    starts = {"n": 0}

    async def always_503() -> AsyncIterator[str]:
        starts["n"] += 1
        raise ServerError("503 loading")
        yield "never"  # pragma: no cover

    retried: list[int] = []
    with pytest.raises(ServerError):
        async for _ in stream_with_retry(
            always_503,
            RetryPolicy(attempts=3, base=1.0, jitter=0.0),
            sleep=clock.sleep,
            clock=clock,
            on_retry=lambda _e, n, _w: retried.append(n),
        ):
            pass
    assert starts["n"] == 3
    assert clock.sleeps == [1.0, 2.0]
    assert retried == [1, 2]


async def test_stream_time_budget_is_bounded() -> None:
    clock = Clock()
    starts = {"n": 0}

    async def limited() -> AsyncIterator[str]:
        starts["n"] += 1
        raise RateLimited("429", retry_after=40.0)
        yield "never"  # pragma: no cover

    with pytest.raises(RateLimited):
        async for _ in stream_with_retry(
            limited, RetryPolicy(attempts=5, budget=60.0), sleep=clock.sleep, clock=clock
        ):
            pass
    assert starts["n"] == 2
    assert clock.sleeps == [40.0]


async def test_a_wait_that_exactly_meets_the_time_budget_still_retries() -> None:
    clock = Clock()
    fn, calls = failing([RateLimited("x", retry_after=60.0)])
    assert (
        await call_with_retry(fn, RetryPolicy(attempts=2, budget=60.0), sleep=clock.sleep, clock=clock)
        == "ok"
    )
    assert calls["n"] == 2


@pytest.mark.parametrize("another", [False, True])
async def test_a_refused_connection_is_retried_only_when_nothing_else_is_left(another: bool) -> None:
    clock = Clock()
    fn, calls = failing([Unreachable("refused", refused=True)])
    call = call_with_retry(fn, RetryPolicy(jitter=0.0), another=another, sleep=clock.sleep, clock=clock)
    if another:
        with pytest.raises(Unreachable):
            await call
        assert calls["n"] == 1
    else:
        assert await call == "ok"
        assert calls["n"] == 2


def test_retry_after_hint_is_capped_by_the_budget() -> None:
    assert RetryPolicy(budget=10.0).delay(0, hint=99.0) == 10.0
    assert RetryPolicy(budget=10.0).delay(0, hint=3.0) == 3.0


def test_backoff_grows_from_base_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=3.0, jitter=0.0)
    assert [policy.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_a_refused_connection_is_retried_by_default() -> None:
    clock = Clock()
    fn, calls = failing([Unreachable("refused", refused=True)])
    assert await call_with_retry(fn, RetryPolicy(jitter=0.0), sleep=clock.sleep, clock=clock) == "ok"
    assert calls["n"] == 2

    starts = {"n": 0}

    async def refused_once() -> AsyncIterator[str]:
        starts["n"] += 1
        if starts["n"] == 1:
            raise Unreachable("refused", refused=True)
        yield "ok"

    got = [
        e
        async for e in stream_with_retry(
            refused_once, RetryPolicy(jitter=0.0), sleep=clock.sleep, clock=clock
        )
    ]
    assert got == ["ok"]
    assert starts["n"] == 2


async def test_on_retry_hears_the_error_the_retry_number_and_the_wait() -> None:
    clock = Clock()
    first, second = ServerError("503"), Unreachable("reset")
    fn, _ = failing([first, second])
    heard: list[tuple[ProviderError, int, float]] = []
    policy = RetryPolicy(attempts=3, base=1.0, jitter=0.0)
    await call_with_retry(fn, policy, sleep=clock.sleep, clock=clock, on_retry=lambda *a: heard.append(a))
    assert heard == [(first, 1, 1.0), (second, 2, 2.0)]

    errors = [ServerError("503")]

    async def flaky() -> AsyncIterator[str]:
        if errors:
            raise errors[0]
        yield "ok"

    heard.clear()

    def note(exc: ProviderError, n: int, wait: float) -> None:
        heard.append((exc, n, wait))
        errors.clear()

    got = [e async for e in stream_with_retry(flaky, policy, sleep=clock.sleep, clock=clock, on_retry=note)]
    assert got == ["ok"]
    assert [(type(e), n, w) for e, n, w in heard] == [(ServerError, 1, 1.0)]


async def test_the_stream_time_budget_counts_from_the_first_try_on_any_clock() -> None:
    clock = Clock()
    clock.now = 5000.0  # a clock that does not start at zero
    starts = {"n": 0}

    async def limited() -> AsyncIterator[str]:
        starts["n"] += 1
        raise RateLimited("429", retry_after=40.0)
        yield "never"  # pragma: no cover

    with pytest.raises(RateLimited):
        async for _ in stream_with_retry(
            limited, RetryPolicy(attempts=5, budget=60.0), sleep=clock.sleep, clock=clock
        ):
            pass
    assert starts["n"] == 2


def test_jitter_is_added_as_drawn() -> None:
    import random

    policy = RetryPolicy(base=1.0, cap=8.0, jitter=0.5)
    expected = 1.0 + random.Random(7).uniform(-0.5, 0.5)
    assert policy.delay(0, rng=random.Random(7)) == expected
