"""The LM Studio provider: native REST v1 (list, load, unload, chat, streamed chat) over HTTP.

Requests the native chat cannot carry — a JSON schema (``response_format``) or a history
with assistant turns (re-asks) — go to the same server's OpenAI-compatible
``/v1/chat/completions`` instead. Errors are read with ``offload.protocols.errors`` and
enriched with what the server knows: a missing model names the closest downloaded keys, a
context overflow names the prompt size and the loaded context. The provider never retries;
callers wrap it in a ``RetryPolicy``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from offload import loading
from offload.closing import closing
from offload.errors import (
    BadResponse,
    ContextOverflow,
    ModelNotFound,
    ModelNotLoaded,
    OutOfMemory,
    ProviderError,
    closest,
)
from offload.http import RequestLog, Timeouts, is_local_url
from offload.protocols import lmstudio as wire
from offload.protocols.errors import ErrorContext, classify
from offload.providers._hosted import FULL_BODY, HostedHttp, with_timings
from offload.settings import DEFAULT_LMSTUDIO_URL
from offload.tokens import estimate_prompt
from offload.types import (
    ChatRequest,
    ChatResult,
    LoadResult,
    ModelInfo,
    Progress,
    StreamEnd,
    StreamEvent,
    TextDelta,
)

AUTH_REMEDY = (
    "set LM_API_TOKEN (or pass --api-token) to a token from LM Studio → Developer → "
    "Server Settings → Manage Tokens, or turn off 'Require Authentication'"
)
JIT_REMEDY = (
    "a load with a TTL needs LM Studio's Just-in-Time model loading (Developer → Server Settings); "
    "turn it on, or load without --ttl / offload.keepWarm"
)
UNREACHABLE_REMEDY = (
    "start LM Studio and its server (Developer tab, or `lms server start`), "
    "or point offload at it with --base-url / LM_STUDIO_API_URL"
)


def classify_native(
    status: int, body: Any, ctx: ErrorContext, *, retry_after: float | None = None
) -> ProviderError:
    """LM Studio's error mapping, with the 200 "Unexpected endpoint" quirk made explicit."""
    exc = classify(status, body, ctx, retry_after=retry_after)
    if status < 400 and "unexpected endpoint" in exc.message.lower():
        return BadResponse(
            f"{ctx.address} answered 200 with an error: {exc.message.split(': ', 1)[-1]}",
            remedy="offload needs LM Studio 0.4 or newer (native REST v1); check that --base-url "
            "points at LM Studio itself, without a /v1 suffix",
            provider=ctx.provider,
            address=ctx.address,
            status=status,
        )
    return exc


class LMStudioProvider:
    """One LM Studio server (0.4+) reached over its native REST v1 API."""

    def __init__(
        self,
        base_url: str = DEFAULT_LMSTUDIO_URL,
        *,
        api_token: str | None = None,
        name: str = "lmstudio",
        local: bool | None = None,
        timeout: Timeouts | None = None,
        log: RequestLog | None = None,
        headers: Mapping[str, str] | None = None,
        keep_warm: int | None = None,
    ) -> None:
        self.name = name
        self.keep_warm = keep_warm
        """When set, a model offload's calls need is loaded with this idle TTL (seconds) first."""
        self.record: loading.LoadRecord | None = None
        """What offload loaded here (default: the record in the data directory)."""
        self.warmed: dict[str, float] = {}
        """When ``keep_warm`` last checked each model (see ``offload.loading.keep_warm``)."""
        self.base_url = base_url.rstrip("/")
        self.local = is_local_url(self.base_url) if local is None else local
        self._token = api_token
        self._options: dict[str, Any] = {"timeout": timeout, "log": log}
        all_headers = dict(headers or {})
        if api_token:
            all_headers["Authorization"] = f"Bearer {api_token}"
        self._headers = all_headers
        self._http = HostedHttp(
            name=name,
            base_url=self.base_url,
            classify=classify_native,
            auth_remedy=AUTH_REMEDY,
            headers=all_headers,
            **self._options,
        )
        self._compat: Any = None

    @property
    def address(self) -> str:
        """The server's base URL."""
        return self.base_url

    async def _call(
        self, method: str, path: str, *, expect: str, body: Any = None, model: str | None = None
    ) -> Any:
        try:
            return await self._http.call(method, path, expect=expect, body=body, model=model)
        except ProviderError as exc:
            if exc.kind == "unreachable" and exc.remedy is None:
                exc.remedy = UNREACHABLE_REMEDY
            raise

    # --- model management --------------------------------------------------------------------

    async def greeting(self) -> bool:
        """True when the server identifies itself as LM Studio."""
        data = await self._call("GET", wire.GREETING, expect="lmstudio")
        return isinstance(data, Mapping) and data.get("lmstudio") is True

    async def models(self) -> list[ModelInfo]:
        """Downloaded models (LLMs and embeddings) with their loaded instances."""
        return wire.parse_models(await self._call("GET", wire.MODELS, expect="models"), provider=self.name)

    async def load(
        self,
        key: str,
        *,
        context_length: int | None = None,
        flash_attention: bool | None = None,
        eval_batch_size: int | None = None,
    ) -> LoadResult:
        """Load ``key`` (blocks until loaded). Always creates an instance; see ``client`` for reuse."""
        body = wire.load_body(
            key,
            context_length=context_length,
            flash_attention=flash_attention,
            eval_batch_size=eval_batch_size,
        )
        try:
            data = await self._call("POST", wire.LOAD, expect="instance_id", body=body, model=key)
        except ModelNotFound as exc:
            raise await self._with_suggestions(exc, key) from None
        except ProviderError as exc:
            raise self._out_of_memory(exc, key) or exc from None
        return wire.parse_load(data)

    async def load_with_ttl(self, key: str, ttl: int, *, embedding: bool = False) -> LoadResult:
        """Load ``key`` with LM Studio's idle TTL: unloaded after ``ttl`` seconds without requests.

        The native load endpoint rejects ``ttl``; LM Studio honours it only on a request that
        loads the model just in time through the OpenAI-compatible routes. So the load is a
        one-token completion (an embedding for embedding models) carrying ``ttl``.
        """
        started = time.perf_counter()
        if embedding:
            body: dict[str, Any] = {"model": key, "input": "warm-up", "ttl": ttl}
            path, expect = "/v1/embeddings", "data"
        else:
            body = {"model": key, "messages": [{"role": "user", "content": "Reply OK."}], "max_tokens": 1}
            body["ttl"] = ttl
            path, expect = "/v1/chat/completions", "choices"
        try:
            data = await self._call("POST", path, expect=expect, body=body, model=key)
        except ModelNotFound as exc:
            raise await self._with_suggestions(exc, key) from None
        except ProviderError as exc:
            if exc.remedy is None and "no models loaded" in exc.message.lower():
                exc.remedy = JIT_REMEDY
            raise self._out_of_memory(exc, key) or exc from None
        instance = (str(data.get("model") or key) if isinstance(data, Mapping) else key).split("@", 1)[0]
        if instance.lower() != key.lower() and not instance.startswith(key + ":"):
            raise ModelNotLoaded(  # the OpenAI routes let one loaded model answer for any name
                f"LM Studio at {self.base_url} answered with {instance} instead of loading {key}",
                remedy=JIT_REMEDY,
                provider=self.name,
                model=key,
                address=self.base_url,
            )
        kind = "embedding" if embedding else "llm"
        return LoadResult(instance, time.perf_counter() - started, kind, config={"ttl": ttl})

    def _out_of_memory(self, exc: ProviderError, key: str) -> OutOfMemory | None:
        """``exc`` as ``OutOfMemory`` when the server says the model did not fit."""
        if isinstance(exc, OutOfMemory) or not loading.is_out_of_memory(exc.message):
            return exc if isinstance(exc, OutOfMemory) else None
        return OutOfMemory(
            f"{key} does not fit in the memory left on {self.base_url}: {exc.message.splitlines()[0]}",
            remedy="unload other models (offload unload --all), load a smaller variant, "
            "or load with a smaller --context-length",
            provider=self.name,
            model=key,
            address=self.base_url,
            status=exc.status,
            code=exc.code,
        )

    async def unload(self, instance_id: str) -> None:
        """Unload one instance by its id (from ``loaded_instances[].id``)."""
        await self._call(
            "POST", wire.UNLOAD, expect="instance_id", body={"instance_id": instance_id}, model=instance_id
        )

    # --- chat ----------------------------------------------------------------------------------

    def _chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        if not request.model:
            raise ValueError("LMStudioProvider needs request.model; choose one first")
        # A continuing thread already holds its system prompt; re-sending it makes some chat
        # templates fail with a 500 ("Only user, assistant and tool roles are supported").
        send_system = request.previous_response_id is None
        return wire.chat_body(request, model=request.model, stream=stream, send_system=send_system)

    def compat(self) -> Any:
        """The OpenAI-compatible view of the same server (``/v1``), built on first use."""
        if self._compat is None:
            from offload.providers.openai_compat import OpenAIProvider

            self._compat = OpenAIProvider(
                self.base_url + "/v1",
                api_key=self._token,
                name=self.name,
                local=self.local,
                headers={k: v for k, v in self._headers.items() if k != "Authorization"},
                **self._options,
            )
        return self._compat

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One chat; a model load that runs out of memory frees offload's own instances and retries once."""
        try:
            return await self._chat(request)
        except OutOfMemory:
            if not await loading.freed_memory(self, request.model):
                raise
        return await self._chat(request)

    async def _chat(self, request: ChatRequest) -> ChatResult:
        """One chat on ``/api/v1/chat`` (or ``/v1/chat/completions`` when native cannot carry it)."""
        try:
            await loading.keep_warm(self, request.model)
            if wire.supports(request) is not None:
                return await self._checked(request, await self.compat().chat(request))
            started = time.perf_counter()
            data = await self._call(
                "POST",
                wire.CHAT,
                expect="output",
                body=self._chat_body(request, stream=False),
                model=request.model,
            )
        except ProviderError as exc:
            raise await self._enrich(exc, request) from None
        return with_timings(wire.parse_chat(data, provider=self.name, model=request.model or ""), started)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """One streamed chat; like ``chat``, retried once after freeing memory if nothing was yielded."""
        yielded = False
        try:
            async with closing(self._stream_chat(request)) as events:
                async for event in events:
                    yielded = yielded or isinstance(event, TextDelta)
                    yield event
            return
        except OutOfMemory:
            if yielded or not await loading.freed_memory(self, request.model):
                raise
        async with closing(self._stream_chat(request)) as events:
            async for event in events:
                yield event

    async def _stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            await loading.keep_warm(self, request.model)
            if wire.supports(request) is not None:
                async with closing(self.compat().stream_chat(request)) as events:
                    async for event in events:
                        if isinstance(event, StreamEnd):
                            event = StreamEnd(await self._checked(request, event.result))
                        yield event
                return
            async with closing(self._native_stream(request)) as events:
                async for event in events:
                    yield event
        except ProviderError as exc:
            raise await self._enrich(exc, request) from None

    async def _native_stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        first: float | None = None
        model = request.model or ""
        sses = self._http.stream(
            wire.CHAT, self._chat_body(request, stream=True), expect="output", model=model
        )
        load_started: float | None = None
        async with closing(sses) as events:
            async for sse in events:
                if sse.event == FULL_BODY:
                    yield StreamEnd(
                        with_timings(wire.parse_chat(sse.data, provider=self.name, model=model), started)
                    )
                    return
                event = wire.parse_event(sse.event, sse.data, self._http.ctx(model), model=model)
                if isinstance(event, Progress) and event.stage == "model_load":
                    load_started = self._jit_load_event(model, event, load_started)
                if event is None:
                    continue
                if first is None and isinstance(event, TextDelta):
                    first = time.perf_counter() - started
                if isinstance(event, StreamEnd):
                    event = StreamEnd(with_timings(event.result, started, first))
                yield event

    def _jit_load_event(self, model: str, event: Progress, started: float | None) -> float | None:
        """Tell ``offload.loading`` listeners about a load the server does for this stream."""
        if started is None:
            started = time.monotonic()
            loading.emit(loading.LoadEvent(self.name, self.base_url, model, "start", "jit"))
        if event.done:
            seconds = time.monotonic() - started
            loading.emit(loading.LoadEvent(self.name, self.base_url, model, "done", "jit", seconds))
        return started

    async def _checked(self, request: ChatRequest, result: ChatResult) -> ChatResult:
        """Guard against the OpenAI routes' quirk: one loaded model answers any model name."""
        answered, asked = result.model, request.model or ""
        if not answered or answered.lower() == asked.lower() or answered.startswith(asked + ":"):
            return result
        with contextlib.suppress(ProviderError):
            for m in await self.models():
                if m.key.lower() == asked.lower() and any(i.id == answered for i in m.loaded_instances):
                    return result
        raise await self._with_suggestions(
            ModelNotFound(f"{answered} answered a request for {asked}", provider=self.name, model=asked),
            asked,
        )

    # --- error enrichment -----------------------------------------------------------------------

    async def _enrich(self, exc: ProviderError, request: ChatRequest) -> ProviderError:
        if exc.kind == "unreachable" and exc.remedy is None:
            exc.remedy = UNREACHABLE_REMEDY
        if isinstance(exc, ModelNotFound) and request.model and exc.remedy is None:
            return await self._with_suggestions(exc, request.model)
        if isinstance(exc, ContextOverflow) and exc.remedy is None:
            return await self._overflow(exc, request)
        return self._out_of_memory(exc, request.model or "the model") or exc

    async def safe_models(self) -> list[ModelInfo]:
        """The model list, or ``[]`` when it cannot be read (for best-effort hints)."""
        return await self._safe_models()

    async def _safe_models(self) -> list[ModelInfo]:
        try:
            return await self.models()
        except ProviderError:
            return []

    async def _with_suggestions(self, exc: ModelNotFound, key: str) -> ModelNotFound:
        keys = [m.key for m in await self._safe_models() if m.is_llm]
        hint = closest(key, keys)
        remedy = (
            f"did you mean {', '.join(hint)}? (offload models lists them)"
            if hint
            else f"downloaded models: {', '.join(keys) or 'none'}; download one in LM Studio or `lms get`"
        )
        return ModelNotFound(
            f"LM Studio at {self.base_url} has no model {key!r}",
            remedy=remedy,
            available=keys,
            provider=self.name,
            model=key,
            address=self.base_url,
            status=exc.status,
            code=exc.code,
        )

    async def _overflow(self, exc: ContextOverflow, request: ChatRequest) -> ContextOverflow:
        prompt = estimate_prompt(request)
        ctx_len: int | None = None
        for m in await self._safe_models():
            if m.key == request.model or any(i.id == request.model for i in m.loaded_instances):
                ctx_len = m.loaded_context_length
        size = f"the loaded context of {ctx_len} tokens" if ctx_len else "the loaded context"
        suggested = max(prompt * 2, (ctx_len or 0) * 2, 4096)
        return ContextOverflow(
            f"the prompt (~{prompt} tokens) does not fit {size} of {request.model}",
            remedy=f"reload with a bigger window (offload load {request.model} --context-length "
            f"{suggested}, or --context-length on ask), shorten the input, or pick a larger-context model",
            prompt_tokens=prompt,
            context_length=ctx_len,
            provider=self.name,
            model=request.model,
            address=self.base_url,
            status=exc.status,
            code=exc.code,
        )

    async def aclose(self) -> None:
        """Close the connection pools."""
        await self._http.aclose()
        if self._compat is not None:
            await self._compat.aclose()
