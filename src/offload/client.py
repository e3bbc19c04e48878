"""The LM Studio client for Python callers: ``AsyncLMStudio`` and its thin sync twin ``LMStudio``.

It adds to the raw provider what a user expects of "just works": settings from the
environment, bounded retries of transient failures, model choice when none is named, no
duplicate instances on load, unload-and-verify, and named stateful conversations::

    from offload import LMStudio
    with LMStudio() as lms:
        print(lms.chat("Summarize: ...", max_output_tokens=200).content)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from offload import loading
from offload.closing import closing
from offload.conversations import ConversationStore, ConversationTurn
from offload.errors import (
    InputError,
    ModelNotFound,
    OutOfMemory,
    ProviderError,
    UnloadIncomplete,
    closest,
)
from offload.http import RequestLog, default_timeout
from offload.providers.lmstudio import LMStudioProvider
from offload.routing.retry import OnRetry, RetryPolicy, call_with_retry, stream_with_retry
from offload.routing.selection import Choice, Need, Prefer, choose
from offload.settings import data_dir, lmstudio_token, lmstudio_url
from offload.tokens import DEFAULT_MAX_OUTPUT
from offload.types import (
    ChatRequest,
    ChatResult,
    LoadResult,
    ModelInfo,
    PromptOptions,
    StreamEnd,
    StreamEvent,
)


@dataclass(frozen=True, slots=True)
class ChatOptions(PromptOptions):
    """Per-call options shared by ``chat`` and ``stream_chat``."""

    conversation: str | None = None
    prefer: Prefer = "fast"
    unload_after: bool = False


class AsyncLMStudio:
    """Async client for one LM Studio server (0.4+)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_token: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        log: str | Path | None = None,
        state_dir: Path | None = None,
        on_retry: OnRetry | None = None,
        on_choice: Callable[[Choice], None] | None = None,
    ) -> None:
        self.base_url = lmstudio_url(base_url)
        self.provider = LMStudioProvider(
            self.base_url,
            api_token=lmstudio_token(api_token),
            timeout=default_timeout(timeout) if timeout else None,
            log=RequestLog(log) if log else None,
        )
        self.retry = retry or RetryPolicy()
        self.conversations = ConversationStore((state_dir or data_dir()) / "conversations")
        self.record = loading.LoadRecord((state_dir or data_dir()) / loading.RECORD_FILE)
        self.provider.record = self.record
        self._on_retry = on_retry
        self._on_choice = on_choice

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections."""
        await self.provider.aclose()

    async def _retrying(self, fn: Callable[[], Any]) -> Any:
        return await call_with_retry(fn, self.retry, on_retry=self._on_retry)

    # --- models ----------------------------------------------------------------------------

    async def models(self) -> list[ModelInfo]:
        """Downloaded models with loaded instances (also the server preflight)."""
        result: list[ModelInfo] = await self._retrying(self.provider.models)
        return result

    async def find(self, key: str) -> ModelInfo:
        """The model with ``key``, or ``ModelNotFound`` naming the closest keys."""
        models = await self.models()
        for m in models:
            if m.key == key:
                return m
        keys = [m.key for m in models]
        hint = closest(key, keys)
        raise ModelNotFound(
            f"LM Studio at {self.base_url} has no model {key!r}",
            remedy=f"did you mean {', '.join(hint)}?" if hint else "run `offload models` to see the keys",
            available=keys,
            provider=self.provider.name,
            model=key,
            address=self.base_url,
        )

    async def load(
        self,
        key: str,
        *,
        context_length: int | None = None,
        flash_attention: bool | None = None,
        eval_batch_size: int | None = None,
        new_instance: bool = False,
        ttl: int | None = None,
    ) -> LoadResult:
        """Load ``key``; an already-loaded key is reused unless ``new_instance`` is set.

        ``ttl`` gives the instance LM Studio's idle TTL (seconds). When the server runs out of
        memory, instances offload loaded earlier are unloaded — or, if there are none, the next
        smaller model of the same family is loaded instead — and the load is retried once;
        ``LoadResult.note`` says what was done. Load events go to ``offload.loading``.
        """
        model = await self.find(key)
        if model.loaded and not new_instance:
            inst = model.loaded_instances[0]
            note = "already loaded; its TTL is unchanged" if ttl else None
            return LoadResult(inst.id, None, model.type, "loaded", True, dict(inst.config), note)
        if ttl is not None and (context_length or flash_attention is not None or eval_batch_size):
            raise InputError(
                "LM Studio's REST API cannot load with a TTL and load options at once",
                remedy="drop --ttl, or the --context-length / --flash-attention / --eval-batch-size options",
            )

        async def attempt(target: ModelInfo) -> LoadResult:
            if ttl is not None:
                return await self.provider.load_with_ttl(target.key, ttl, embedding=not target.is_llm)
            result: LoadResult = await self._retrying(
                lambda: self.provider.load(
                    target.key,
                    context_length=context_length,
                    flash_attention=flash_attention,
                    eval_batch_size=eval_batch_size,
                )
            )
            return result

        with loading.announced(self.provider.name, self.base_url, key):
            try:
                result = await attempt(model)
            except OutOfMemory as exc:
                result = await self._load_after_oom(exc, model, attempt)
        self.record.add(self.base_url, result.instance_id)
        return result

    async def _load_after_oom(
        self, exc: OutOfMemory, model: ModelInfo, attempt: Callable[[ModelInfo], Any]
    ) -> LoadResult:
        """Free memory (unload offload's own instances) or step down to a smaller sibling; retry once."""
        models = await self.models()
        mine = await loading.free_memory(self.provider, models, self.base_url, self.record, model.key)
        if mine:
            note = f"unloaded {', '.join(mine)} (loaded earlier by offload) to free memory"
            target = model
        else:
            sibling = loading.smaller_sibling(models, model.key)
            if sibling is None:
                exc.remedy = (exc.remedy or "") + (
                    "; offload had no idle instances of its own to unload and found no smaller "
                    f"model of the same family as {model.key}"
                )
                raise exc
            note = f"{model.key} did not fit in memory; loaded the smaller {sibling.key} instead"
            target = sibling
        try:
            result: LoadResult = await attempt(target)
        except OutOfMemory as again:
            again.remedy = f"tried once after this: {note}; " + (again.remedy or "")
            raise again from None
        return replace(result, note=note)

    async def unload(
        self, key: str | None = None, *, instance_id: str | None = None, all: bool = False
    ) -> list[str]:
        """Unload every instance of ``key`` (or one instance, or everything), then verify."""
        if sum((key is not None, instance_id is not None, all)) != 1:
            raise InputError("name exactly one of: a model key, --instance ID, or --all")
        models = await self.models()
        if key is not None:
            targets = [i.id for i in (await self.find(key)).loaded_instances]
        elif instance_id is not None:
            known = [i.id for m in models for i in m.loaded_instances]
            if instance_id not in known:
                hint = ", ".join(known) or "none"
                raise InputError(f"no loaded instance {instance_id!r} (loaded: {hint})")
            targets = [instance_id]
        else:
            targets = [i.id for m in models for i in m.loaded_instances]
        for target in targets:
            await self._unload_one(target)
        self.record.discard(self.base_url, targets)
        still = {i.id for m in await self.models() for i in m.loaded_instances}
        remaining = [t for t in targets if t in still]
        if remaining:
            raise UnloadIncomplete(remaining, self.base_url)
        return targets

    async def _unload_one(self, instance_id: str) -> None:
        await self._retrying(lambda: self.provider.unload(instance_id))

    async def choose(self, request: ChatRequest, prefer: Prefer = "fast") -> Choice:
        """Pick a model for ``request`` (see ``offload.routing.selection``)."""
        need = Need.of(request, request.max_output_tokens or DEFAULT_MAX_OUTPUT)
        choice = choose(await self.models(), need, prefer)
        if self._on_choice is not None:
            self._on_choice(choice)
        return choice

    # --- chat ----------------------------------------------------------------------------------

    async def _prepare(
        self, request: ChatRequest, opts: ChatOptions, turn: ConversationTurn | None
    ) -> ChatRequest:
        if turn is not None:
            if request.previous_response_id is None and turn.previous_response_id:
                request = replace(request, previous_response_id=turn.previous_response_id)
            if request.model is None and turn.state.model:
                request = request.with_model(self._conversation_model(turn))
        if request.model is None:
            choice = await self.choose(request, opts.prefer)
            request = request.with_model(choice.model.key)
            if request.context_length is None and choice.context_length:
                request = replace(request, context_length=choice.context_length)
        return request

    def _conversation_model(self, turn: ConversationTurn) -> str:
        key = turn.state.key_for(self.provider.name)
        if key is None:
            raise InputError(
                f"conversation {turn.state.name!r} continues on {turn.state.ref}, "
                f"not on LM Studio at {self.base_url}",
                remedy=f"continue it with `offload ask -c {turn.state.name}` (or Offloader), "
                "or start a new conversation",
            )
        return key

    async def _loaded_ids(self) -> set[str]:
        return {i.id for m in await self.models() for i in m.loaded_instances}

    async def chat(self, prompt: str | ChatRequest, **options: Any) -> ChatResult:
        """One chat turn; keyword options are the fields of ``ChatOptions``."""
        result: ChatResult | None = None
        async for event in self._turn(prompt, ChatOptions(**options), stream=False):
            if isinstance(event, StreamEnd):
                result = event.result
        assert result is not None, "a turn always ends with StreamEnd"
        return result

    def stream_chat(self, prompt: str | ChatRequest, **options: Any) -> AsyncIterator[StreamEvent]:
        """One chat turn as events: progress, deltas, then ``StreamEnd`` with the result."""
        return self._turn(prompt, ChatOptions(**options), stream=True)

    async def _turn(
        self, prompt: str | ChatRequest, opts: ChatOptions, *, stream: bool
    ) -> AsyncIterator[StreamEvent]:
        request = opts.request(prompt)
        if opts.conversation is None:
            async with closing(self._run(request, opts, None, stream)) as events:
                async for event in events:
                    yield event
            return
        async with (
            self.conversations.turn(opts.conversation) as turn,
            closing(self._run(request, opts, turn, stream)) as events,
        ):
            async for event in events:
                yield event

    async def _run(
        self, request: ChatRequest, opts: ChatOptions, turn: ConversationTurn | None, stream: bool
    ) -> AsyncIterator[StreamEvent]:
        request = await self._prepare(request, opts, turn)
        before = await self._loaded_ids() if opts.unload_after else set()
        if stream:
            events = stream_with_retry(
                lambda: self.provider.stream_chat(request), self.retry, on_retry=self._on_retry
            )
        else:
            events = _single(lambda: self._retrying(lambda: self.provider.chat(request)))
        async with closing(events):
            async for event in events:
                if isinstance(event, StreamEnd) and turn is not None:
                    turn.commit(event.result.response_id, request.model, self.provider.name)
                yield event
                if isinstance(event, StreamEnd) and opts.unload_after:
                    await self._unload_if_new(event.result, before)

    async def _unload_if_new(self, result: ChatResult, before: set[str]) -> None:
        instance = result.instance_id or result.model
        if instance and instance not in before:
            with contextlib.suppress(ProviderError):  # best effort: the answer is delivered
                await self.provider.unload(instance)


async def _single(make: Callable[[], Any]) -> AsyncIterator[StreamEvent]:
    result: ChatResult = await make()
    yield StreamEnd(result)


class LMStudio:
    """Synchronous facade over ``AsyncLMStudio`` (same arguments, same methods)."""

    def __init__(self, base_url: str | None = None, api_token: str | None = None, **kwargs: Any) -> None:
        from offload._sync import LoopThread

        self._loop = LoopThread()
        self._async = self._loop.run(_make(base_url, api_token, kwargs))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        return self._async.base_url

    def close(self) -> None:
        """Close connections and the private event loop."""
        self._loop.run(self._async.aclose())
        self._loop.close()

    def models(self) -> list[ModelInfo]:
        """See ``AsyncLMStudio.models``."""
        return self._loop.run(self._async.models())

    def load(self, key: str, **kwargs: Any) -> LoadResult:
        """See ``AsyncLMStudio.load``."""
        return self._loop.run(self._async.load(key, **kwargs))

    def unload(self, key: str | None = None, **kwargs: Any) -> list[str]:
        """See ``AsyncLMStudio.unload``."""
        return self._loop.run(self._async.unload(key, **kwargs))

    def chat(self, prompt: str | ChatRequest, **options: Any) -> ChatResult:
        """See ``AsyncLMStudio.chat``."""
        return self._loop.run(self._async.chat(prompt, **options))

    def stream_chat(self, prompt: str | ChatRequest, **options: Any) -> Iterator[StreamEvent]:
        """See ``AsyncLMStudio.stream_chat``."""
        return self._loop.iterate(self._async.stream_chat(prompt, **options))


async def _make(base_url: str | None, api_token: str | None, kwargs: dict[str, Any]) -> AsyncLMStudio:
    return AsyncLMStudio(base_url, api_token, **kwargs)
