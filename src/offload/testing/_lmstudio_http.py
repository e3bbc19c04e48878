"""HTTP plumbing shared by the LM Studio fake's routes.

Owns ``RecordedRequest`` (what ``LMStudioFake.requests`` holds, secrets redacted), ``Call`` (one
parsed request handed to a route), body validation helpers (strict keys, required keys, JSON
types, in LM Studio's error shapes), SSE framing, and the connection tricks behind the faults:
closing the socket without an answer (``drop``), cutting a stream, and holding a request open
until the client or the server gives up (``slow``/``timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from offload.testing import _lmstudio_errors as errors
from offload.testing._lmstudio_errors import TurnError
from offload.testing._lmstudio_events import DropNow, Event
from offload.testing._lmstudio_faults import Fault

JsonKind = Literal["string", "number", "integer", "boolean", "array", "object"]
SECRET_HEADERS = frozenset({"authorization", "x-api-key"})


class ConnectionDropped(Exception):
    """Raised to make the server abort a response when the socket cannot be closed directly."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received. ``body`` is the parsed JSON (``None`` if empty or malformed)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: str = ""


@dataclass
class Call:
    """A request that passed auth and JSON parsing; ``fault`` is a generation-time fault to apply."""

    request: Request
    path: str
    body: dict[str, Any]
    fault: Fault | None = None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True


Handler = Callable[[Call], Awaitable[Response]]


def redact(name: str, value: str) -> str:
    if name not in SECRET_HEADERS:
        return value
    return "Bearer <redacted>" if value.lower().startswith("bearer ") else "<redacted>"


def record(request: Request, body: Any) -> RecordedRequest:
    headers = {name: redact(name, value) for name, value in request.headers.items()}
    return RecordedRequest(request.method, request.url.path, headers, body, request.url.query)


def parse_body(raw: bytes) -> tuple[Any, errors.ApiError | None]:
    """The JSON body (``{}`` when empty) or the 400 to answer."""
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, errors.malformed_json(str(exc))


# validation


def check_keys(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """400 ``unrecognized_keys`` for any key not in ``allowed`` (LM Studio's strict validation)."""
    extra = [key for key in body if key not in set(allowed)]
    if extra:
        raise errors.unrecognized_keys(extra)


def require(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if body.get(name) is None:
            raise errors.missing_parameter(name)


def _is_kind(value: Any, kind: JsonKind) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def check_types(
    body: Mapping[str, Any],
    spec: Mapping[str, tuple[JsonKind, ...]],
    error: Callable[[str, str], errors.ApiError] = errors.invalid_type,
) -> None:
    """400 (``error(name, expected)``) when a present, non-null key has the wrong JSON type."""
    for name, kinds in spec.items():
        value = body.get(name)
        if value is not None and not any(_is_kind(value, kind) for kind in kinds):
            raise error(name, " or ".join(kinds))


# server-sent events


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def sse_data(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def event_stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# connections


def transport_of(receive: Receive) -> asyncio.BaseTransport | None:
    """The socket transport behind uvicorn's ``receive`` (None under other servers)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    return transport if isinstance(transport, asyncio.BaseTransport) else None


def set_nodelay(receive: Receive) -> None:
    """Turn off Nagle's algorithm on the connection (uvicorn writes headers and body separately;
    with Nagle on, every answer waits ~40 ms for the client's delayed ACK)."""
    transport = transport_of(receive)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayMiddleware:
    """ASGI middleware applying ``set_nodelay`` to every HTTP connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            set_nodelay(receive)
        await self.app(scope, receive, send)


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def hold(request: Request, seconds: float, stopping: Callable[[], bool]) -> bool:
    """Wait ``seconds``; False as soon as the client disconnects or the server is stopping."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    watcher = asyncio.ensure_future(_until_disconnect(request.receive))
    try:
        while not watcher.done() and not stopping():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            await asyncio.wait({watcher}, timeout=min(remaining, 0.05))
        return False
    finally:
        watcher.cancel()


class DropResponse(Response):
    """Closes the connection without sending anything: the client sees the server hang up."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = transport_of(receive)
        if transport is None:
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
            )
            raise ConnectionDropped("connection dropped by fault injection")
        transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until_disconnect(receive), timeout=5)


async def cut_stream(request: Request) -> None:
    """Close the connection mid-stream (after flushing what was sent) and wait to be cancelled."""
    transport = transport_of(request.receive)
    if transport is None:
        raise ConnectionDropped("stream cut by fault injection")
    transport.close()
    await asyncio.sleep(5)


class Renderer(Protocol):
    """Turns engine events into the wire chunks of one route family's stream."""

    def render(self, event: Event) -> list[bytes]: ...

    def error(self, err: TurnError) -> list[bytes]: ...


async def drive(
    call: Call, events: AsyncGenerator[Event, None], renderer: Renderer, head: Iterable[Event] = ()
) -> AsyncIterator[bytes]:
    """The body of a streamed answer: rendered events; a ``TurnError`` becomes the family's error chunks."""
    try:
        for event in head:
            for chunk in renderer.render(event):
                yield chunk
        async for event in events:
            if isinstance(event, DropNow):
                await cut_stream(call.request)
                return
            for chunk in renderer.render(event):
                yield chunk
    except TurnError as err:
        for chunk in renderer.error(err):
            yield chunk
    finally:
        await events.aclose()
