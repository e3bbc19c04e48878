"""HTTP plumbing shared by the hosted-API providers (OpenAI-style and Anthropic).

One JSON call and one SSE stream, both through the client from ``offload.http.make_client``;
transport failures become ``Unreachable``/``Timeout`` via ``transport_errors``, and HTTP errors
(including a 200 whose body is only an ``error``) go through the protocol's own classifier.
Nothing here retries: that is the router's job.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from offload.closing import closing
from offload.errors import BadResponse, ProviderError
from offload.http import (
    RequestLog,
    Response,
    SseEvent,
    Timeouts,
    iter_sse,
    json_body,
    make_client,
    retry_after_seconds,
    transport_errors,
)
from offload.protocols.errors import ErrorContext, error_in_ok_body
from offload.types import ChatResult, StreamEnd, StreamEvent, TextDelta

T = TypeVar("T")

FULL_BODY = "offload.full-body"
"""Event name ``HostedHttp.stream`` uses when the server answered a stream request with plain JSON."""


class Classifier(Protocol):
    """A protocol's mapping from an error response to a ``ProviderError``."""

    def __call__(
        self, status: int, body: Any, ctx: ErrorContext, *, retry_after: float | None = None
    ) -> ProviderError: ...


class Accumulator(Protocol):
    """A protocol's stream reader: deltas out of each event, the whole result at the end."""

    def feed(self, event: str, data: Any) -> list[StreamEvent]: ...

    def result(self) -> ChatResult: ...


class HostedHttp:
    """One server's client plus the error mapping of the protocol it speaks."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        classify: Classifier,
        auth_remedy: str,
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._classify = classify
        self._auth_remedy = auth_remedy
        self.client = make_client(self.base_url, headers=headers, timeout=timeout, log=log)

    def ctx(self, model: str | None = None) -> ErrorContext:
        """Where an error happened, for messages and remedies."""
        return ErrorContext(self.name, self.base_url, model, auth_remedy=self._auth_remedy)

    def error(self, response: Response, data: Any, model: str | None) -> ProviderError:
        """The mapped error for a failed response whose body has been read."""
        retry_after = retry_after_seconds(response.headers)
        return self._classify(response.status_code, data, self.ctx(model), retry_after=retry_after)

    async def call(
        self,
        method: str,
        path: str,
        *,
        expect: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        model: str | None = None,
    ) -> Any:
        """One JSON request; returns the parsed body or raises the mapped ``ProviderError``."""
        with transport_errors(provider=self.name, address=self.base_url, model=model):
            response = await self.client.request(method, path, json=body, params=params)
        data = json_body(response)
        if response.status_code >= 400 or error_in_ok_body(data, expect):
            raise self.error(response, data, model)
        return data

    async def stream(
        self, path: str, body: Any, *, expect: str, model: str | None
    ) -> AsyncIterator[SseEvent]:
        """The SSE events of a streamed POST. A server that answers with plain JSON instead
        yields one ``SseEvent(FULL_BODY, body)``."""
        with transport_errors(provider=self.name, address=self.base_url, model=model):
            async with self.client.stream("POST", path, json=body) as response:
                if response.status_code >= 400 or "event-stream" not in response.headers.get(
                    "content-type", ""
                ):
                    whole = await response.aread()
                    data = json_body(whole)
                    if whole.status_code >= 400 or error_in_ok_body(data, expect):
                        raise self.error(whole, data, model)
                    yield SseEvent(FULL_BODY, data)
                    return
                async with closing(iter_sse(response)) as events:
                    async for sse in events:
                        yield sse

    def parsed(self, parse: Callable[[Any], T], data: Any, model: str | None = None) -> T:
        """``parse(data)``, with a ``BadResponse`` it raises located at this server."""
        try:
            return parse(data)
        except BadResponse as exc:
            exc.provider = exc.provider or self.name
            exc.address = exc.address or self.base_url
            exc.model = exc.model or model
            raise

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


async def stream_result(
    events: AsyncIterator[SseEvent],
    accumulator: Accumulator,
    parse_full: Callable[[Any], ChatResult],
) -> AsyncIterator[StreamEvent]:
    """Core stream events from SSE events: deltas as they come, then ``StreamEnd`` with timings.
    ``events`` is closed when this stream ends or is closed."""
    started = time.perf_counter()
    first: float | None = None
    async with closing(events) as sses:
        async for sse in sses:
            if sse.event == FULL_BODY:
                result = parse_full(sse.data)
                if result.content:
                    yield TextDelta(result.content)
                yield StreamEnd(with_timings(result, started, first))
                return
            for event in accumulator.feed(sse.event, sse.data):
                if first is None and isinstance(event, TextDelta):
                    first = time.perf_counter() - started
                yield event
    yield StreamEnd(with_timings(accumulator.result(), started, first))


def with_timings(result: ChatResult, started: float, first: float | None = None) -> ChatResult:
    """``result`` with the wall-clock total (and first-token time, when measured) filled in."""
    timings = replace(
        result.timings,
        total_seconds=time.perf_counter() - started,
        time_to_first_token=result.timings.time_to_first_token or first,
    )
    return replace(result, timings=timings)
