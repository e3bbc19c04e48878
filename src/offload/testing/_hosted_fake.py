"""Machinery shared by the hosted-API fakes (``OpenAIFake``, ``AnthropicFake``).

Owns what does not depend on the wire protocol: the server lifecycle (real uvicorn on
127.0.0.1 through ``offload.testing._server``), recording every request with secrets
redacted, FIFO scripted replies, fault injection (``fail_next``), and the raw ASGI responses
that stream events or cut a connection mid-body. What the fake model says lives in
``offload.testing._fake_replies``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from offload.http import redact
from offload.testing._server import RunningServer, start

SLOW_PREFIX = "slow:"
MIDSTREAM_PREFIX = "midstream:"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request a fake received: secrets in ``headers`` are replaced by ``***``."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    raw: bytes = field(default=b"", repr=False)
    """The body exactly as received."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure. ``status`` faults answer with that API's error body; ``midstream``
    ones (streams only) send a few deltas first and then an in-stream error event."""

    name: str
    status: int = 0
    seconds: float = 0.0
    drop: bool = False
    midstream: bool = False
    retry_after: float | None = None


def parse_fault(spec: int | str, named: Mapping[str, int], retry_after: float | None) -> Fault:
    """Read ``429``, ``"rate_limit"``, ``"drop"``, ``"slow:2.5"`` or ``"midstream:overloaded"``."""
    text = str(spec).strip().lower()
    midstream = text.startswith(MIDSTREAM_PREFIX)
    if midstream:
        text = text[len(MIDSTREAM_PREFIX) :]
    if text == "drop":
        return Fault("drop", drop=True)
    if text.startswith(SLOW_PREFIX):
        return Fault("slow", seconds=float(text[len(SLOW_PREFIX) :]))
    if text.isdigit() and 400 <= int(text) < 600:
        return Fault(text, status=int(text), midstream=midstream, retry_after=retry_after)
    if text in named:
        return Fault(text, status=named[text], midstream=midstream, retry_after=retry_after)
    known = ", ".join([*sorted(named), "drop", "slow:SECONDS", "<status>", "midstream:<fault>"])
    raise ValueError(f"unknown fault {spec!r}; known: {known}")


# --- raw responses --------------------------------------------------------------------------


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (``event:`` line only when named)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class SseResponse(Response):
    """An event stream sent chunk by chunk; with ``cut`` the connection closes before the end."""

    def __init__(
        self, chunks: Sequence[bytes], *, cut: bool = False, headers: Mapping[str, str] | None = None
    ):
        super().__init__(media_type="text/event-stream", headers=dict(headers or {}))
        self.chunks = chunks
        self.cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        raw.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0)
        if not self.cut:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class CutResponse(Response):
    """A 200 that declares its full length, sends half the body and stops (a dropped connection)."""

    def __init__(self, payload: Any):
        super().__init__(content=json.dumps(payload).encode(), media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True}
        )


# --- the fake base --------------------------------------------------------------------------


class HostedFake:
    """Server lifecycle, scripted replies, faults and request recording for one fake API.

    Use as a context manager (``with OpenAIFake() as fake:``) or call ``start()``/``stop()``.
    Handlers run on the server's thread; test code calls ``script``/``fail_next`` from its own,
    so shared state sits behind a lock.
    """

    named_faults: ClassVar[Mapping[str, int]] = {}
    default_context_window: ClassVar[int] = 128_000

    def __init__(
        self,
        models: Iterable[str],
        *,
        api_key: str | None = None,
        context_windows: Mapping[str, int] | None = None,
    ) -> None:
        self.models = tuple(models)
        self.api_key = api_key
        self.context_windows = dict(context_windows or {})
        self._lock = threading.Lock()
        self._replies: deque[str] = deque()
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: RunningServer | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def app(self) -> Any:
        """The ASGI app (subclasses build it)."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start serving on a free 127.0.0.1 port."""
        if self._server is None:
            self._server = start(self.app)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        if self._server is None:
            raise RuntimeError("the fake is not running; call start() or use it as a context manager")
        return self._server.url

    # --- test controls ---------------------------------------------------------------------------

    def script(self, *replies: str) -> None:
        """Queue reply texts; each request takes the next one (FIFO) before falling back to defaults."""
        with self._lock:
            self._replies.extend(replies)

    def fail_next(self, fault: int | str, count: int = 1, *, retry_after: float | None = 1.0) -> None:
        """Make the next ``count`` requests fail with ``fault`` (see ``parse_fault``)."""
        parsed = parse_fault(fault, self.named_faults, retry_after)
        with self._lock:
            self._faults.extend([parsed] * count)

    def reset(self) -> None:
        """Forget scripts, pending faults and recorded requests."""
        with self._lock:
            self._replies.clear()
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def calls(self, path: str) -> list[RecordedRequest]:
        """The recorded requests whose path ends with ``path``."""
        return [r for r in self.requests if r.path.endswith(path)]

    # --- for handlers ----------------------------------------------------------------------------

    def take_reply(self) -> str | None:
        """The next scripted reply, if any."""
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def take_fault(self) -> Fault | None:
        """The next pending fault, if any."""
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def window(self, model: str) -> int:
        """The context window of ``model`` in tokens."""
        return self.context_windows.get(model, self.default_context_window)

    async def record(self, request: Request) -> tuple[Any, bool]:
        """Record ``request``; return its JSON body and whether the body parsed."""
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
            ok = True
        except (json.JSONDecodeError, UnicodeDecodeError):
            body, ok = raw.decode("utf-8", errors="replace"), False
        entry = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers=redact(dict(request.headers)),
            body=body,
            raw=raw,
        )
        with self._lock:
            self._requests.append(entry)
        return body, ok


async def pause(fault: Fault | None) -> None:
    """Wait out a ``slow:`` fault."""
    if fault is not None and fault.seconds:
        await asyncio.sleep(fault.seconds)
