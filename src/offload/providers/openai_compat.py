"""The OpenAI-style provider: Chat Completions or Responses over HTTP, for OpenAI and its imitators.

Works against OpenAI itself, OpenRouter, vLLM, llama.cpp's llama-server, Ollama's ``/v1``,
LiteLLM and LM Studio's ``/v1``. ``base_url`` includes the ``/v1`` part, as OpenAI-style
configs write it; paths are ``/chat/completions``, ``/responses`` and ``/models``. A bearer
token is sent only when a key is set. ``api`` picks the wire protocol with the names
OpenClaw configs use (``openai-completions``, ``openai-responses``). Never retries.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

from offload.closing import closing
from offload.errors import ConfigError, InvalidRequest
from offload.http import RequestLog, Timeouts, is_local_url
from offload.protocols import openai_chat, openai_responses
from offload.providers._hosted import Accumulator, HostedHttp, stream_result, with_timings
from offload.types import ChatRequest, ChatResult, ModelInfo, StreamEvent

OpenAIApi = Literal["openai-completions", "openai-responses"]
APIS: tuple[OpenAIApi, ...] = ("openai-completions", "openai-responses")


class OpenAIProvider:
    """One OpenAI-compatible server reached over Chat Completions or the Responses API."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api: str = "openai-completions",
        name: str = "openai",
        local: bool | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        log: RequestLog | None = None,
        max_tokens_field: str = "max_tokens",
        routing: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if api not in APIS:
            raise ConfigError(f"provider {name!r}: api must be one of {', '.join(APIS)}, not {api!r}")
        self.name = name
        self.api: OpenAIApi = "openai-responses" if api == "openai-responses" else "openai-completions"
        self.base_url = base_url.rstrip("/")
        self.local = is_local_url(self.base_url) if local is None else local
        self.max_tokens_field = max_tokens_field
        self.routing = dict(routing or {})
        """OpenRouter provider preferences per model id, sent as the body's ``provider``."""
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._http = HostedHttp(
            name=name,
            base_url=self.base_url,
            classify=openai_chat.classify_error,
            auth_remedy=f"check the API key configured for provider {name!r} (sent as a bearer token)",
            headers=all_headers,
            timeout=timeout,
            log=log,
        )

    @property
    def address(self) -> str:
        """The server's base URL (with its ``/v1``)."""
        return self.base_url

    async def models(self) -> list[ModelInfo]:
        """``GET /models``: every model id the server offers."""
        data = await self._http.call("GET", openai_chat.MODELS, expect="data")
        return self._http.parsed(lambda d: openai_chat.parse_models(d, provider=self.name), data)

    # --- protocol dispatch -----------------------------------------------------------------------

    @property
    def _path(self) -> str:
        return openai_chat.CHAT if self.api == "openai-completions" else openai_responses.RESPONSES

    @property
    def _expect(self) -> str:
        return "choices" if self.api == "openai-completions" else "output"

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        if not request.model:
            raise InvalidRequest(f"provider {self.name!r} needs request.model; choose a model first")
        if self.api == "openai-completions":
            body = openai_chat.build_body(
                request, model=request.model, stream=stream, max_tokens_field=self.max_tokens_field
            )
        else:
            body = openai_responses.build_body(request, model=request.model, stream=stream)
        if request.model in self.routing:
            body["provider"] = dict(self.routing[request.model])
        return body

    def _parse(self, data: Any, model: str) -> ChatResult:
        parse: Callable[..., ChatResult] = (
            openai_chat.parse_response
            if self.api == "openai-completions"
            else openai_responses.parse_response
        )
        return self._http.parsed(lambda d: parse(d, provider=self.name, model=model), data, model)

    def _accumulator(self, model: str) -> Accumulator:
        ctx = self._http.ctx(model)
        if self.api == "openai-completions":
            return openai_chat.ChatStream(ctx, model=model)
        return openai_responses.ResponsesStream(ctx, model=model)

    # --- chat ----------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> ChatResult:
        """One whole answer."""
        body = self._body(request, stream=False)
        model = str(body["model"])
        started = time.perf_counter()
        data = await self._http.call("POST", self._path, expect=self._expect, body=body, model=model)
        return with_timings(self._parse(data, model), started)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """One streamed answer: deltas, then ``StreamEnd`` with usage from the final chunk."""
        body = self._body(request, stream=True)
        model = str(body["model"])
        events = self._http.stream(self._path, body, expect=self._expect, model=model)
        answer = stream_result(events, self._accumulator(model), lambda d: self._parse(d, model))
        async with closing(answer) as stream:
            async for event in stream:
                yield event

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
