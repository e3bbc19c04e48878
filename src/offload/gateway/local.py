"""Serving a gateway request with a translated call through offload's router (local models mostly).

The client's body is read into core types, ``max_tokens`` is clamped to what the model can
give (``offload.gateway.localMaxTokens``, the declared context window minus the prompt, the
declared ``maxTokens``), and the router calls the step's model — with its retries, cooldowns
and local-only rule. Nothing is sent to the client before the first answer text arrives, so a
failure up to then lets the gateway go on down the chain (``NextStep``). After that, a failure
ends the stream with the protocol's own error event, never a fake successful stop.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from offload.errors import OffloadError, ProviderError
from offload.gateway import wire
from offload.gateway.scenarios import Protocol, Step
from offload.gateway.usage import Outcome
from offload.protocols.incoming import Incoming
from offload.routing import CallOptions
from offload.tokens import estimate_prompt
from offload.types import ChatRequest, ChatResult, StreamEnd, StreamEvent, TextDelta, ToolCallDelta

if TYPE_CHECKING:
    from aiohttp import web

    from offload.routing.router import Router

MIN_OUTPUT = 256


class NextStep(Exception):
    """This step failed before anything was sent: try the next one."""

    def __init__(self, status: int, message: str, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.retry_after = retry_after


def clamp(request: ChatRequest, step: Step, local_max: int) -> ChatRequest:
    """``request`` with ``max_output_tokens`` cut to what ``step``'s model can produce."""
    limit = local_max
    declared = step.model_def
    if declared is not None and declared.context_window:
        limit = min(limit, max(MIN_OUTPUT, declared.context_window - estimate_prompt(request)))
    if declared is not None and declared.max_tokens:
        limit = min(limit, declared.max_tokens)
    wanted = request.max_output_tokens
    return replace(request, max_output_tokens=min(wanted, limit) if wanted else limit)


def _next(exc: OffloadError) -> NextStep:
    message = exc.message.splitlines()[0] if exc.message else str(exc)
    retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
    return NextStep(wire.status_of(exc), message, exc.kind, retry_after)


async def serve_local(
    request: web.Request,
    router: Router,
    protocol: Protocol,
    incoming: Incoming,
    step: Step,
    out: Outcome,
    headers: Mapping[str, str],
    local_max: int,
    finish: Callable[[], None],
) -> web.StreamResponse:
    """Answer with ``step`` through the router; raises ``NextStep`` when nothing was sent yet.

    ``finish`` records the request; a stream calls it just before its last bytes go out.
    """
    from aiohttp import web

    chat = clamp(wire.for_step(incoming.request, step.provider.api), step, local_max)
    options = CallOptions(chain=(step.name,), task=f"gateway/{out.scenario}")
    if not incoming.stream:
        try:
            routed = await router.chat(chat, options)
        except OffloadError as exc:
            raise _next(exc) from exc
        _count(out, routed.result)
        body = json.dumps(wire.render(protocol, routed.result, incoming), ensure_ascii=False).encode()
        return web.Response(body=body, content_type="application/json", headers=headers)
    stream = router.stream(chat, options, live=True)
    return await _relay_events(request, stream.events, protocol, incoming, out, headers, finish)


async def _relay_events(
    request: web.Request,
    events: AsyncIterator[StreamEvent],
    protocol: Protocol,
    incoming: Incoming,
    out: Outcome,
    headers: Mapping[str, str],
    finish: Callable[[], None],
) -> web.StreamResponse:
    from aiohttp import web

    writer = wire.writer(protocol, incoming)
    response: web.StreamResponse | None = None

    async def begin() -> web.StreamResponse:
        started = web.StreamResponse(
            status=200, headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await started.prepare(request)
        await started.write(writer.start())
        out.ttft = time.monotonic() - out.started
        return started

    try:
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                response = response or await begin()
                await response.write(writer.text(event.text))
            elif isinstance(event, ToolCallDelta):
                response = response or await begin()
                await response.write(writer.tool(event))
            elif isinstance(event, StreamEnd):
                response = response or await begin()
                _count(out, event.result)
                finish()  # the row is queued before the client can see the end of the stream
                await response.write(writer.end(event.result))
    except OffloadError as exc:
        if response is None:
            raise _next(exc) from exc
        out.error, out.kind = exc.message.splitlines()[0], exc.kind
        finish()
        await response.write(writer.error(wire.status_of(exc), out.error))
    except ConnectionResetError:
        out.error, out.kind = "the client closed the connection mid-stream", "client_closed"
        return response or web.StreamResponse()
    finally:
        closer = getattr(events, "aclose", None)
        if closer is not None:
            await closer()
    if response is None:  # the model ended without any event: nothing usable was produced
        raise NextStep(502, "the model produced no answer", "bad_response")
    await response.write_eof()
    return response


def _count(out: Outcome, result: ChatResult) -> None:
    out.served = result.model
    out.input_tokens = result.usage.input_tokens
    out.output_tokens = result.usage.output_tokens
