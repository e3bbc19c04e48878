"""``Offloader``: the library's front door — config, router, conversations and ledger in one object.

::

    from offload import Offloader
    async with Offloader() as off:                 # reads the config file, if any
        routed = await off.ask("Summarize: ...", max_output_tokens=200)
        print(routed.result.content, routed.candidate.name)

Every call goes through the router (model chains, fallbacks, cooldowns, local-only). Named
conversations pin the serving model and continue its server-side thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from offload.closing import closing
from offload.config import Config, load_config
from offload.conversations import ConversationStore, ConversationTurn
from offload.http import RequestLog
from offload.ledger import Ledger
from offload.providers.base import ModelManager
from offload.providers.registry import PoolOptions, ProviderPool
from offload.routing.retry import OnRetry, RetryPolicy
from offload.routing.router import CallOptions, Candidate, Observer, Routed, RoutedStream, Router
from offload.routing.selection import Choice, Prefer
from offload.settings import data_dir
from offload.types import ChatRequest, PromptOptions, StreamEnd, StreamEvent


@dataclass(frozen=True, slots=True)
class AskOptions(PromptOptions):
    """Per-call options of ``Offloader.ask`` / ``Offloader.stream`` (``model`` is a ref or alias)."""

    conversation: str | None = None
    task: str | None = None
    local_only: bool | None = None
    fallbacks: bool = True
    unload_after: bool = False
    escalated: bool = False


class Offloader:
    """Routes requests to local-first model chains as the config says."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        config_path: str | Path | None = None,
        base_url: str | None = None,
        api_token: str | None = None,
        log: str | Path | None = None,
        notify: Callable[[str], None] | None = None,
        observers: Sequence[Observer] = (),
        prefer: Prefer = "fast",
        on_choice: Callable[[Candidate, Choice], None] | None = None,
        retry: RetryPolicy | None = None,
        on_retry: OnRetry | None = None,
        state_dir: Path | None = None,
        timeout: float | None = None,
        ledger: bool | Ledger = True,
    ) -> None:
        self.config = config or load_config(config_path)
        self.ledger: Ledger | None = (
            ledger if isinstance(ledger, Ledger) else Ledger(config=self.config) if ledger else None
        )
        self._own_ledger = ledger is True
        watchers = [*observers, self.ledger.record] if self.ledger is not None else list(observers)
        options = PoolOptions.for_config(
            self.config,
            log=RequestLog(log) if log else None,
            overrides={"lmstudio": base_url} if base_url else {},
            tokens={"lmstudio": api_token} if api_token else {},
            timeout=timeout,
        )
        self.router = Router(
            self.config,
            pool=ProviderPool(self.config.providers, options),
            retry=retry,
            notify=notify,
            observers=watchers,
            prefer=prefer,
            on_choice=on_choice,
            on_retry=on_retry,
        )
        self.conversations = ConversationStore((state_dir or data_dir()) / "conversations")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every provider and flush the usage ledger."""
        await self.router.aclose()
        if self.ledger is not None and self._own_ledger:
            self.ledger.close()

    async def ask(self, prompt: str | ChatRequest, **options: Any) -> Routed:
        """Answer one prompt; keyword options are the fields of ``AskOptions``."""
        routed: Routed | None = None
        stream = self._turn(prompt, AskOptions(**options), live=False)
        async with closing(stream):
            async for _ in stream:
                pass
        routed = stream.routed
        assert routed is not None, "a successful turn always ends with a routed result"
        return routed

    def stream(self, prompt: str | ChatRequest, **options: Any) -> RoutedStream:
        """Answer one prompt as events; ``.routed`` is set when the stream ends."""
        return self._turn(prompt, AskOptions(**options), live=True)

    def _turn(self, prompt: str | ChatRequest, opts: AskOptions, *, live: bool) -> RoutedStream:
        holder = RoutedStream(_nothing())
        holder.events = self._events(opts.request(prompt), opts, holder, live)
        return holder

    async def _events(
        self, request: ChatRequest, opts: AskOptions, holder: RoutedStream, live: bool
    ) -> AsyncIterator[StreamEvent]:
        if opts.conversation is None:
            async with closing(self._route(request, opts, holder, live, None)) as events:
                async for event in events:
                    yield event
            return
        async with (
            self.conversations.turn(opts.conversation) as turn,
            closing(self._route(request, opts, holder, live, turn)) as events,
        ):
            async for event in events:
                yield event

    async def _route(
        self,
        request: ChatRequest,
        opts: AskOptions,
        holder: RoutedStream,
        live: bool,
        turn: ConversationTurn | None,
    ) -> AsyncIterator[StreamEvent]:
        model = opts.model or request.model  # a ref or alias; the router picks each candidate's id
        if turn is not None and turn.previous_response_id and request.previous_response_id is None:
            request = replace(request, previous_response_id=turn.previous_response_id)
            model = model or turn.state.ref
        call = CallOptions(
            model=model,
            task=opts.task,
            local_only=opts.local_only,
            fallbacks=opts.fallbacks,
            escalated=opts.escalated,
        )
        before = await self._loaded(call) if opts.unload_after else None
        inner = self.router.stream(request, call, live=live)
        async with closing(inner):
            async for event in inner:
                if isinstance(event, StreamEnd) and inner.routed is not None:
                    holder.routed = inner.routed
                    if turn is not None:
                        served = event.result.model or inner.routed.candidate.ref.model
                        turn.commit(event.result.response_id, served, inner.routed.candidate.ref.provider)
                    if before is not None:
                        await self._unload_if_new(inner.routed, before)
                yield event

    async def _loaded(self, call: CallOptions) -> set[str]:
        """Instance ids loaded now on the chain's model-managing providers (for --unload-after)."""
        ids: set[str] = set()
        for cand in self.router.candidates(call):
            provider = self.router.pool.get(cand.provider.id)
            if isinstance(provider, ModelManager):
                with contextlib.suppress(Exception):
                    ids |= {
                        f"{cand.provider.id}:{i.id}"
                        for m in await provider.models()
                        for i in m.loaded_instances
                    }
        return ids

    async def _unload_if_new(self, routed: Routed, before: set[str]) -> None:
        provider = self.router.pool.get(routed.candidate.provider.id)
        instance = routed.result.instance_id or routed.result.model
        if (
            isinstance(provider, ModelManager)
            and instance
            and f"{routed.candidate.provider.id}:{instance}" not in before
        ):
            with contextlib.suppress(Exception):  # best effort: the answer is already delivered
                await provider.unload(instance)


async def _nothing() -> AsyncIterator[StreamEvent]:
    return
    yield  # pragma: no cover
