"""The LM Studio provider: native REST v1 over httpx (list, load, unload, chat, streamed chat).

Errors are read with ``offload.protocols.errors`` and enriched with what the server knows:
a missing model names the closest downloaded keys, a context overflow names the prompt size
and the loaded context. The provider never retries; callers wrap it in a ``RetryPolicy``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import httpx

from offload.errors import BadResponse, ContextOverflow, ModelNotFound, ProviderError, closest
from offload.http import (
    RequestLog,
    is_local_url,
    iter_sse,
    json_body,
    make_client,
    retry_after_seconds,
    transport_errors,
)
from offload.protocols import lmstudio as wire
from offload.protocols.errors import ErrorContext, classify, error_in_ok_body
from offload.settings import DEFAULT_LMSTUDIO_URL
from offload.tokens import estimate_prompt
from offload.types import ChatRequest, ChatResult, LoadResult, ModelInfo, StreamEnd, StreamEvent, TextDelta

AUTH_REMEDY = (
    "set LM_API_TOKEN (or pass --api-token) to a token from LM Studio → Developer → "
    "Server Settings → Manage Tokens, or turn off 'Require Authentication'"
)
UNREACHABLE_REMEDY = (
    "start LM Studio and its server (Developer tab, or `lms server start`), "
    "or point offload at it with --base-url / LM_STUDIO_API_URL"
)


class LMStudioProvider:
    """One LM Studio server (0.4+) reached over its native REST v1 API."""

    def __init__(
        self,
        base_url: str = DEFAULT_LMSTUDIO_URL,
        *,
        api_token: str | None = None,
        name: str = "lmstudio",
        local: bool | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        log: RequestLog | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.local = is_local_url(self.base_url) if local is None else local
        all_headers = dict(headers or {})
        if api_token:
            all_headers["Authorization"] = f"Bearer {api_token}"
        self._client = make_client(
            self.base_url, headers=all_headers, timeout=timeout, transport=transport, log=log
        )

    @property
    def address(self) -> str:
        """The server's base URL."""
        return self.base_url

    def _ctx(self, model: str | None = None) -> ErrorContext:
        return ErrorContext(self.name, self.base_url, model, auth_remedy=AUTH_REMEDY)

    def _transport_errors(self, model: str | None = None) -> Any:
        return transport_errors(provider=self.name, address=self.base_url, model=model)

    async def _call(
        self, method: str, path: str, *, expect: str, body: Any = None, model: str | None = None
    ) -> Any:
        try:
            with self._transport_errors(model):
                response = await self._client.request(method, path, json=body)
        except ProviderError as exc:
            if exc.kind == "unreachable" and exc.remedy is None:
                exc.remedy = UNREACHABLE_REMEDY
            raise
        data = json_body(response)
        if response.status_code >= 400 or error_in_ok_body(data, expect):
            raise self._error(response.status_code, data, response.headers, model)
        return data

    def _error(self, status: int, data: Any, headers: Mapping[str, str], model: str | None) -> ProviderError:
        exc = classify(status, data, self._ctx(model), retry_after=retry_after_seconds(headers))
        if status < 400 and "unexpected endpoint" in exc.message.lower():
            return BadResponse(
                f"{self.base_url} answered 200 with an error: {exc.message.split(': ', 1)[-1]}",
                remedy="offload needs LM Studio 0.4 or newer (native REST v1); check that --base-url "
                "points at LM Studio itself, without a /v1 suffix",
                provider=self.name,
                address=self.base_url,
                status=status,
            )
        return exc

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
        return wire.parse_load(data)

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

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One chat on ``/api/v1/chat``."""
        body = self._chat_body(request, stream=False)
        started = time.perf_counter()
        try:
            data = await self._call("POST", wire.CHAT, expect="output", body=body, model=request.model)
        except ProviderError as exc:
            raise await self._enrich(exc, request) from None
        result = wire.parse_chat(data, provider=self.name, model=request.model or "")
        return replace(result, timings=replace(result.timings, total_seconds=time.perf_counter() - started))

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """One streamed chat; yields deltas and progress, then ``StreamEnd``."""
        body = self._chat_body(request, stream=True)
        started = time.perf_counter()
        first: float | None = None
        try:
            with self._transport_errors(request.model):
                async with self._client.stream("POST", wire.CHAT, json=body) as response:
                    if response.status_code >= 400 or "event-stream" not in response.headers.get(
                        "content-type", ""
                    ):
                        await response.aread()
                        data = json_body(response)
                        if response.status_code >= 400 or error_in_ok_body(data, "output"):
                            raise self._error(response.status_code, data, response.headers, request.model)
                        yield StreamEnd(wire.parse_chat(data, provider=self.name, model=request.model or ""))
                        return
                    async for sse in iter_sse(response):
                        event = wire.parse_event(
                            sse.event, sse.data, self._ctx(request.model), model=request.model or ""
                        )
                        if event is None:
                            continue
                        if first is None and isinstance(event, TextDelta):
                            first = time.perf_counter() - started
                        if isinstance(event, StreamEnd):
                            event = StreamEnd(_finish_timings(event.result, started, first))
                        yield event
        except ProviderError as exc:
            raise await self._enrich(exc, request) from None

    # --- error enrichment -----------------------------------------------------------------------

    async def _enrich(self, exc: ProviderError, request: ChatRequest) -> ProviderError:
        if isinstance(exc, ModelNotFound) and request.model:
            return await self._with_suggestions(exc, request.model)
        if isinstance(exc, ContextOverflow):
            return await self._overflow(exc, request)
        return exc

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
        """Close the connection pool."""
        await self._client.aclose()


def _finish_timings(result: ChatResult, started: float, first: float | None) -> ChatResult:
    timings = replace(
        result.timings,
        total_seconds=time.perf_counter() - started,
        time_to_first_token=result.timings.time_to_first_token or first,
    )
    return replace(result, timings=timings)
