"""The router: every call walks a chain of candidate models until one answers.

For a call the router builds the chain (requested model or task chain, fallbacks, primary —
deduplicated; see ``Config.chain``), then *plans* it before sending anything:

* local-only mode drops every hosted candidate (they are never contacted);
* candidates whose declared ``contextWindow`` cannot hold the prompt are skipped — and if no
  candidate can, the call fails before any request, naming the sizes;
* candidates with an API offload does not speak, or that cannot continue a server-side
  thread (``previous_response_id``), are skipped.

Then each remaining candidate is called; what follows an error — retry it (bounded by
``RetryPolicy``), fail over to the next with a one-line notice, or stop, and whether to cool
it down — is ``offload.routing.policy.decide``'s call, and ``policy.ending`` picks the error
that ends the call. Candidates cooling down after repeated failures are skipped
(``Cooldowns``). Every attempt is kept (for the ledger and for the final "all N candidates
failed" message) and reported to observers as a ``CallEvent``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from offload.catalog import AUTO
from offload.closing import closing
from offload.config import Config
from offload.errors import Attempt, ModelNotFound, ProviderError
from offload.providers.base import Provider
from offload.providers.registry import ProviderPool
from offload.routing.cooldown import Cooldowns
from offload.routing.plan import (
    CallEvent,
    CallOptions,
    Candidate,
    Observer,
    Plan,
    Routed,
    RoutedStream,
    candidates,
    failover_notice,
    local_only,
    no_fit,
    plan,
)
from offload.routing.policy import Action, Situation, decide, ending
from offload.routing.retry import OnRetry, RetryPolicy, call_with_retry, stream_with_retry
from offload.routing.selection import Choice, Need, Prefer, choose
from offload.tokens import DEFAULT_MAX_OUTPUT
from offload.types import (
    ChatRequest,
    ChatResult,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

__all__ = ["CallEvent", "CallOptions", "Candidate", "Observer", "Routed", "RoutedStream", "Router"]


@dataclass
class _Walk:
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[ProviderError] = field(default_factory=list)
    failed: bool = False


class Router:
    """Sends requests down candidate chains built from a ``Config``."""

    def __init__(
        self,
        config: Config,
        *,
        pool: ProviderPool | None = None,
        retry: RetryPolicy | None = None,
        cooldowns: Cooldowns | None = None,
        notify: Callable[[str], None] | None = None,
        observers: Sequence[Observer] = (),
        prefer: Prefer = "fast",
        on_choice: Callable[[Candidate, Choice], None] | None = None,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.pool = pool or ProviderPool(config.providers)
        self.retry = retry or RetryPolicy()
        self.cooldowns = cooldowns or Cooldowns(clock)
        self.observers = list(observers)
        self._notify = notify
        self._prefer = prefer
        self._on_choice = on_choice
        self._on_retry = on_retry
        self._sleep = sleep
        self._clock = clock

    async def aclose(self) -> None:
        """Close every provider connection."""
        await self.pool.aclose()

    def using(
        self,
        *,
        pool: ProviderPool | None = None,
        cooldowns: Cooldowns | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> Router:
        """A router for one run over its own ``pool`` and ``cooldowns`` (a batch's servers).

        Same config, retry policy, observers and choices; this router is left untouched, so
        concurrent calls through it are unaffected. Closing the new router's pool is the
        caller's business.
        """
        return Router(
            self.config,
            pool=pool or self.pool,
            retry=self.retry,
            cooldowns=cooldowns or self.cooldowns,
            notify=notify or self._notify,
            observers=self.observers,
            prefer=self._prefer,
            on_choice=self._on_choice,
            on_retry=self._on_retry,
            sleep=self._sleep,
            clock=self._clock,
        )

    # --- planning ----------------------------------------------------------------------------

    def candidates(self, options: CallOptions | None = None) -> list[Candidate]:
        """The chain for a call, resolved against the config."""
        return candidates(self.config, options)

    def local_only(self, options: CallOptions) -> bool:
        """Whether local-only applies to a call (flag > task setting > global setting)."""
        return local_only(self.config, options)

    def plan(self, request: ChatRequest, options: CallOptions) -> Plan:
        """The candidates worth calling, and the skipped ones (see ``offload.routing.plan``)."""
        return plan(self.config, request, options)

    # --- calling -------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, options: CallOptions | None = None) -> Routed:
        """Answer ``request`` with the first candidate that can."""
        stream = self.stream(request, options, live=False)  # pragma: no mutate (None ≡ False)
        async with closing(stream):
            async for _ in stream:
                pass
        assert stream.routed is not None
        return stream.routed

    def stream(
        self, request: ChatRequest, options: CallOptions | None = None, *, live: bool = True
    ) -> RoutedStream:
        """Answer ``request`` as events; failover happens only before content is yielded."""
        opts = options or CallOptions()
        holder = RoutedStream(_empty())  # pragma: no mutate (replaced on the next line)
        holder.events = self._walk(request, opts, holder, live)
        return holder

    async def _walk(
        self, request: ChatRequest, opts: CallOptions, holder: RoutedStream, live: bool
    ) -> AsyncIterator[StreamEvent]:
        found = self.plan(request, opts)
        runnable = found.runnable
        walk = _Walk(found.attempts, failed=bool(found.skipped))
        for index, cand in enumerate(runnable):
            another = index + 1 < len(runnable)
            left = self.cooldowns.remaining(cand.name)
            if left > 0:
                walk.attempts.append(
                    Attempt(cand.name, "skipped", 0.0, error=f"cooling down ({left:.0f}s left)")
                )
                walk.failed = True
                continue
            started = self._clock()
            emitted = False  # pragma: no mutate (None ≡ False)
            bound = request
            try:
                bound = await self._bind(cand, request, another)
                async with closing(self._events(cand, bound, live, another)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta | ReasoningDelta | ToolCallDelta):
                            emitted = True
                        if isinstance(event, StreamEnd):
                            # name the model as configured (llama-server reports its GGUF path)
                            event = StreamEnd(replace(event.result, model=bound.model or event.result.model))
                            holder.routed = self._succeeded(cand, bound, event.result, started, walk, opts)
                        yield event
                return
            except ProviderError as exc:
                decision = decide(exc, Situation(another=another, started=emitted))
                self._failed(cand, bound, exc, started, walk, opts, cool_down=decision.cool_down)
                if decision.action is Action.STOP:
                    exc.attempts = tuple(walk.attempts)
                    raise ending(exc, walk.attempts, walk.errors, found.refused, started=emitted) from None
                self._say(failover_notice(cand, exc, runnable[index + 1]))
        raise ending(None, walk.attempts, walk.errors, found.refused)

    def _events(
        self, cand: Candidate, request: ChatRequest, live: bool, another: bool
    ) -> AsyncIterator[StreamEvent]:
        provider = self.pool.get(cand.provider.id)
        if live:
            return stream_with_retry(
                lambda: provider.stream_chat(request),
                self.retry,
                another=another,
                sleep=self._sleep,
                clock=self._clock,
                on_retry=self._on_retry,
            )
        return _one(
            lambda: call_with_retry(
                lambda: provider.chat(request),
                self.retry,
                another=another,
                sleep=self._sleep,
                clock=self._clock,
                on_retry=self._on_retry,
            )
        )

    async def _bind(self, cand: Candidate, request: ChatRequest, another: bool) -> ChatRequest:
        """Aim the request at ``cand``: choose the model for ``auto``, clamp the output cap."""
        if cand.model and cand.model.max_tokens and request.max_output_tokens:
            request = replace(
                request, max_output_tokens=min(request.max_output_tokens, cand.model.max_tokens)
            )
        if cand.ref.model != AUTO:
            return request.with_model(cand.ref.model)
        provider: Provider = self.pool.get(cand.provider.id)
        models = await call_with_retry(
            provider.models,
            self.retry,
            another=another,
            sleep=self._sleep,
            clock=self._clock,
        )
        need = Need.of(request, request.max_output_tokens or DEFAULT_MAX_OUTPUT)
        try:
            choice = choose(models, need, self._prefer)
        except ModelNotFound as exc:
            raise no_fit(exc, models, need, cand, provider.address) from exc
        if self._on_choice is not None:
            self._on_choice(cand, choice)
        bound = request.with_model(choice.model.key)
        if bound.context_length is None and choice.context_length:
            bound = replace(bound, context_length=choice.context_length)
        return bound

    def _succeeded(
        self,
        cand: Candidate,
        request: ChatRequest,
        result: ChatResult,
        started: float,
        walk: _Walk,
        opts: CallOptions,
    ) -> Routed:
        seconds = self._record(cand, request, started, walk, opts, result=result)
        self.cooldowns.succeeded(cand.name)
        walk.attempts.append(Attempt(cand.name, "ok", seconds, address=result.server))
        return Routed(result, cand, tuple(walk.attempts))

    def _failed(
        self,
        cand: Candidate,
        request: ChatRequest,
        exc: ProviderError,
        started: float,
        walk: _Walk,
        opts: CallOptions,
        *,
        cool_down: bool,
    ) -> None:
        seconds = self._record(cand, request, started, walk, opts, error=exc)
        walk.attempts.append(
            Attempt(cand.name, "failed", seconds, error=exc.short(), status=exc.status, address=exc.address)
        )
        if cool_down:
            self.cooldowns.failed(cand.name)
        walk.errors.append(exc)
        walk.failed = True

    def _record(
        self,
        cand: Candidate,
        request: ChatRequest,
        started: float,
        walk: _Walk,
        opts: CallOptions,
        *,
        result: ChatResult | None = None,
        error: ProviderError | None = None,
    ) -> float:
        """Report one call to the observers; returns its duration."""
        seconds = self._clock() - started
        event = CallEvent(
            cand,
            request.model or cand.ref.model,
            seconds,
            result=result,
            error=error,
            task=opts.task,
            failover=walk.failed,
            escalated=opts.escalated,
            request=request,
        )
        for observer in self.observers:
            observer(event)
        return seconds

    def _say(self, message: str) -> None:
        if self._notify is not None:
            self._notify(message)


async def _one(make: Callable[[], Awaitable[ChatResult]]) -> AsyncIterator[StreamEvent]:
    yield StreamEnd(await make())


async def _empty() -> AsyncIterator[StreamEvent]:
    return
    yield  # pragma: no cover
