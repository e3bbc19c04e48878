"""The Anthropic provider: the Messages API over HTTP (Anthropic itself, or any server copying it).

Sends ``x-api-key`` (when a key is set) and ``anthropic-version: 2023-06-01``. The base URL may
be written with or without its trailing ``/v1``; paths are ``/v1/messages`` and ``/v1/models``.
Structured output rides on a forced tool (see ``offload.protocols.anthropic_messages``).
Never retries.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from offload.closing import closing
from offload.errors import InvalidRequest
from offload.http import RequestLog, Timeouts, is_local_url
from offload.protocols import anthropic_messages as wire
from offload.providers._hosted import HostedHttp, stream_result, with_timings
from offload.types import ChatRequest, ChatResult, ModelInfo, StreamEvent

DEFAULT_URL = "https://api.anthropic.com"
MAX_MODEL_PAGES = 20
MODEL_PAGE_SIZE = 1000


def strip_v1(base_url: str) -> str:
    """``base_url`` without a trailing slash or ``/v1`` (the paths carry ``/v1`` themselves)."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class AnthropicProvider:
    """One Anthropic Messages API server."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        name: str = "anthropic",
        local: bool | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.name = name
        self.base_url = strip_v1(base_url)
        self.local = is_local_url(self.base_url) if local is None else local
        all_headers = {"anthropic-version": wire.VERSION, **dict(headers or {})}
        if api_key:
            all_headers["x-api-key"] = api_key
        self._http = HostedHttp(
            name=name,
            base_url=self.base_url,
            classify=wire.classify_error,
            auth_remedy=f"check the API key configured for provider {name!r} (sent as x-api-key)",
            headers=all_headers,
            timeout=timeout,
            log=log,
        )

    @property
    def address(self) -> str:
        """The server's base URL (without ``/v1``)."""
        return self.base_url

    async def models(self) -> list[ModelInfo]:
        """``GET /v1/models``, following pages until ``has_more`` is false."""
        found: list[ModelInfo] = []
        params = {"limit": str(MODEL_PAGE_SIZE)}
        for _ in range(MAX_MODEL_PAGES):
            data = await self._http.call("GET", wire.MODELS, expect="data", params=params)
            found += self._http.parsed(lambda d: wire.parse_models(d, provider=self.name), data)
            after = wire.next_page(data)
            if after is None:
                break
            params = {"limit": str(MODEL_PAGE_SIZE), "after_id": after}
        return found

    def _model(self, request: ChatRequest) -> str:
        if not request.model:
            raise InvalidRequest(f"provider {self.name!r} needs request.model; choose a model first")
        return request.model

    def _parse(self, data: Any, request: ChatRequest, model: str) -> ChatResult:
        tool = wire.structured_tool(request)
        return self._http.parsed(
            lambda d: wire.parse_response(d, provider=self.name, tool=tool, model=model), data, model
        )

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One whole answer."""
        model = self._model(request)
        body = wire.build_body(request, model=model, stream=False)
        started = time.perf_counter()
        data = await self._http.call("POST", wire.MESSAGES, expect="content", body=body, model=model)
        return with_timings(self._parse(data, request, model), started)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """One streamed answer: deltas, then ``StreamEnd`` once ``message_stop`` arrives."""
        model = self._model(request)
        body = wire.build_body(request, model=model, stream=True)
        events = self._http.stream(wire.MESSAGES, body, expect="content", model=model)
        accumulator = wire.MessagesStream(
            self._http.ctx(model), tool=wire.structured_tool(request), model=model
        )
        answer = stream_result(events, accumulator, lambda d: self._parse(d, request, model))
        async with closing(answer) as stream:
            async for event in stream:
                yield event

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
