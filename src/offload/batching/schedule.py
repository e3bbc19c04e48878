"""Request scheduling for batches: slots per server, several servers behind one provider, failover.

Owns ``EndpointSet``, a ``Provider`` that stands in the router's pool for one configured local
provider and spreads its requests over that provider's servers (``--base-url`` repeated, or
``baseUrls`` in the config):

* each server (``Endpoint``) has a slot limit — its parallel slot count, or what ``Probe``
  finds by raising concurrency while throughput still grows; a request takes a slot on the
  server with the most free slots and waits (client side, FIFO) when every slot is busy;
* a server that states its slot count also gets ``standby`` requests (half its slots, at
  least one) waiting in its own queue, already parsed, so a slot restarts the instant it
  frees instead of after the client's turnaround — and when equal-length answers finish
  together, several slots restart together;
* a server that stops answering (refused, reset, dropped mid-request) is set aside with a
  growing back-off (1, 2, 4… up to 10 s) and the request is sent again to another server at
  once; only when no server is left does the error reach the router, which retries or fails
  over as usual. After a back-off the server gets one request; its full slots come back with
  the first success (a circuit breaker's half-open state), so a still-dead server costs one
  failed request per back-off, not a burst;
* the model an ``auto`` candidate resolved to at warm-up is pinned: ``models()`` lists only
  it, so every item runs on the same, already loaded model (no JIT reload thrash);
* batch requests never continue a server-side thread, so they are sent with ``store=False``:
  thousands of items leave no stored responses behind on LM Studio.

Which server answered travels back with the answer (``ChatResult.server``), for the output
line; ``slots()`` says how many requests the servers take at once now (the batch keeps that
many, and a few more, in flight).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from offload.closing import closing
from offload.errors import ProviderError, Unreachable
from offload.providers.base import Provider
from offload.types import ChatRequest, ChatResult, ModelInfo, StreamEnd, StreamEvent

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 10.0
MODELS_TTL = 30.0
RECHECK = 1.0
"""Longest a waiting request sleeps before looking at the servers again (a safety net)."""


class Probe:
    """Finds a good concurrency for a server that does not say its slot count.

    Starting at ``start`` in-flight requests, each level runs until ``level`` requests started
    at that level have finished (the pipeline is full), then measures completions per second
    over ``max(2 * level, 8)`` more. While a doubling raises the rate by at least ``gain`` it
    doubles again; otherwise it settles on the previous level (or at ``cap``).
    """

    def __init__(self, start: int = 2, cap: int = 64, gain: float = 1.15) -> None:
        self.level = start
        self.cap = cap
        self.gain = gain
        self.epoch = 0
        self.done = False
        self.rates: list[tuple[int, float]] = []
        self._count = 0
        self._t0 = 0.0

    def window(self) -> int:
        """Completions measured per level."""
        return max(2 * self.level, 8)

    def finished(self, epoch: int, now: float) -> int | None:
        """Count one completion of a request started in ``epoch``; a new level when one is chosen."""
        if self.done or epoch != self.epoch:
            return None
        self._count += 1
        if self._count == self.level:
            self._t0 = now
            return None
        if self._count < self.level + self.window():
            return None
        rate = self.window() / max(now - self._t0, 1e-9)
        previous = self.rates[-1][1] if self.rates else None
        self.rates.append((self.level, rate))
        if previous is not None and rate < previous * self.gain:
            self.level = self.rates[-2][0]
            self.done = True
        elif self.level * 2 > self.cap:
            self.done = True
        else:
            self.level *= 2
        self.epoch += 1
        self._count = 0
        return self.level


@dataclass(eq=False)
class Endpoint:
    """One server of a provider."""

    url: str
    provider: Provider
    limit: int = 1
    standby: int = 0
    """Requests beyond ``limit`` allowed to wait in the server's own queue."""
    source: str = "default"
    """Where ``limit`` came from: the server's slot count, a probe, ``--concurrency``…"""
    probe: Probe | None = None
    in_flight: int = 0
    served: int = 0
    failed: int = 0
    lost: int = 0
    """Requests cut off mid-flight (reset, dropped), each sent again elsewhere."""
    streak: int = 0
    down_until: float = 0.0
    downs: int = 0
    marked_at: float = -1.0
    """When it was last set aside; requests already in flight then are not a new outage."""
    excluded: str | None = None
    """Why this server takes no work at all (e.g. it lacks the pinned model)."""
    last_error: str | None = None

    def live(self, now: float) -> bool:
        """True when the server may take requests now."""
        return self.excluded is None and now >= self.down_until

    def room(self) -> int:
        """Requests it may hold: its slots (plus standby), or one while it proves it is back."""
        return 1 if self.downs else self.limit + self.standby


class EndpointSet:
    """A provider over several servers with per-server slots (see the module docstring)."""

    def __init__(
        self,
        name: str,
        endpoints: Sequence[Endpoint],
        *,
        local: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("EndpointSet needs at least one endpoint")
        self.name = name
        self.local = local
        self.endpoints = list(endpoints)
        self.pinned: list[ModelInfo] | None = None
        self._clock = clock
        self._on_change = on_change
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._models: tuple[float, list[ModelInfo]] | None = None

    @property
    def address(self) -> str:
        """Every server address, comma-separated."""
        return ", ".join(e.url for e in self.endpoints)

    def slots(self) -> int:
        """Requests that may be in flight now over all live servers (at least 1)."""
        now = self._clock()
        return max(1, sum(e.room() for e in self.endpoints if e.live(now)))

    # --- slots --------------------------------------------------------------------------------

    def _pick(self, avoid: Endpoint | None) -> Endpoint | None:
        """The live server with the most free slots, ``avoid`` only when no other has one."""
        now = self._clock()
        best: Endpoint | None = None
        for ep in self.endpoints:
            if not ep.live(now) or ep.in_flight >= ep.room():
                continue
            if (
                best is None
                or (best is avoid and ep is not avoid)
                or (
                    (ep is avoid) == (best is avoid) and ep.limit - ep.in_flight > best.limit - best.in_flight
                )
            ):
                best = ep
        return best

    def _any_live(self) -> bool:
        now = self._clock()
        return any(ep.live(now) for ep in self.endpoints)

    async def _acquire(self, avoid: Endpoint | None = None) -> Endpoint:
        """A slot: at once when one is free and nobody waits, else in arrival order."""
        ep = None if self._waiters else self._pick(avoid)
        while ep is None:
            if not self._any_live():
                raise self._all_down()
            now = self._clock()
            revive = [e.down_until for e in self.endpoints if e.excluded is None and e.down_until > now]
            timeout = min([RECHECK, *(t - now for t in revive)])
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await asyncio.wait_for(asyncio.shield(future), max(timeout, 0.0))
            except TimeoutError:
                pass
            finally:
                self._waiters.remove(future)
            ep = self._pick(avoid)
        ep.in_flight += 1
        return ep

    def _release(self, ep: Endpoint) -> None:
        ep.in_flight -= 1
        self._wake()

    def _wake(self, count: int = 1) -> None:
        """Wake the oldest ``count`` waiters not woken yet (they leave the queue themselves)."""
        for future in self._waiters:
            if count <= 0:
                return
            if not future.done():
                future.set_result(None)
                count -= 1

    def set_limit(self, ep: Endpoint, limit: int, source: str | None = None) -> None:
        """Change one server's slot limit (probing, tests)."""
        ep.limit = max(1, limit)
        if source is not None:
            ep.source = source
        self._wake(ep.limit)
        if self._on_change is not None:
            self._on_change()

    def _all_down(self) -> Unreachable:
        reasons = "; ".join(f"{e.url}: {e.excluded or e.last_error or 'down'}" for e in self.endpoints)
        return Unreachable(
            f"no server of {self.name} is answering ({reasons})",
            refused=True,
            provider=self.name,
            address=self.address,
            remedy="start the server(s), or check --base-url / baseUrls",
        )

    # --- health -------------------------------------------------------------------------------

    def _failed(self, ep: Endpoint, exc: Unreachable, started: float | None = None) -> None:
        ep.failed += 1
        ep.streak += 1
        if not exc.refused:
            ep.lost += 1
        ep.last_error = exc.short()
        if started is not None and started <= ep.marked_at:
            return  # sent before the outage was noticed: the same outage, no longer back-off
        if exc.refused or ep.streak >= 2:
            self.mark_down(ep, exc)

    def mark_down(self, ep: Endpoint, exc: ProviderError) -> None:
        """Set a server aside for a back-off that doubles with each consecutive outage."""
        ep.last_error = exc.short()
        ep.downs += 1
        ep.marked_at = self._clock()
        ep.down_until = ep.marked_at + min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (ep.downs - 1))
        self._wake(len(self._waiters))  # waiters re-decide: another server, or wait for this one
        if self._on_change is not None:
            self._on_change()

    def _succeeded(self, ep: Endpoint, epoch: int | None) -> None:
        ep.served += 1
        ep.streak = 0
        if ep.downs and ep.down_until <= self._clock():
            ep.downs = 0
            self._wake(ep.limit + ep.standby)
        probe = ep.probe
        if probe is not None and epoch is not None:
            level = probe.finished(epoch, self._clock())
            if level is not None:
                self.set_limit(ep, level, "probed" if probe.done else "probing")

    # --- the Provider protocol ------------------------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        """The pinned model when there is one; else a live server's list (cached briefly)."""
        if self.pinned is not None:
            return list(self.pinned)
        now = self._clock()
        if self._models is not None and now - self._models[0] < MODELS_TTL:
            return list(self._models[1])
        last: Unreachable | None = None
        for ep in [e for e in self.endpoints if e.live(now)]:
            try:
                found = await ep.provider.models()
            except Unreachable as exc:
                self._failed(ep, exc)
                last = exc
                continue
            self._models = (now, found)
            return list(found)
        raise last or self._all_down()

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer on the server with the most free slots; move to another when one dies."""
        if request.store and request.previous_response_id is None:
            request = replace(request, store=False)
        avoid: Endpoint | None = None
        attempts = 0
        while True:
            ep = await self._acquire(avoid)
            epoch = ep.probe.epoch if ep.probe is not None else None
            started = self._clock()
            try:
                result = await ep.provider.chat(request)
            except Unreachable as exc:
                self._release(ep)
                self._failed(ep, exc, started)
                attempts += 1
                if attempts > 2 * len(self.endpoints) or not self._any_live():
                    raise
                avoid = ep
                continue
            except BaseException:
                self._release(ep)
                raise
            self._release(ep)
            self._succeeded(ep, epoch)
            return replace(result, server=ep.url)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """A streamed answer on one server (no failover once it started)."""
        if request.store and request.previous_response_id is None:
            request = replace(request, store=False)
        ep = await self._acquire()
        try:
            async with closing(ep.provider.stream_chat(request)) as events:
                async for event in events:
                    yield (
                        StreamEnd(replace(event.result, server=ep.url))
                        if isinstance(event, StreamEnd)
                        else event
                    )
        except Unreachable as exc:
            self._failed(ep, exc)
            raise
        finally:
            self._release(ep)

    async def aclose(self) -> None:
        """Close every server's provider."""
        for ep in self.endpoints:
            await ep.provider.aclose()
