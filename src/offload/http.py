"""The one network seam: building httpx clients, mapping transport failures, reading SSE, logging.

Every HTTP call offload makes goes through a client built by ``make_client``; tests swap the
transport there (``transport=httpx.MockTransport(...)``) and nowhere else. Transport exceptions
are translated into the error tree exactly once, by ``transport_errors``. ``RequestLog`` writes
JSON lines of requests and responses with secrets redacted (``--log PATH``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from offload.errors import ProviderError, Timeout, Unreachable
from offload.locality import is_local_url as is_local_url  # re-exported: providers import it here

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 600.0
"""Long on purpose: a JIT load of a big model can take minutes before the first byte."""

SECRET_KEY = re.compile(r"(authorization|api[-_]?key|token|secret|password|cookie)", re.IGNORECASE)
REDACTED = "***"


def default_timeout(read: float = READ_TIMEOUT) -> httpx.Timeout:
    """Short connect, long read: local servers load models inside the first request."""
    return httpx.Timeout(connect=CONNECT_TIMEOUT, read=read, write=60.0, pool=read)


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    log: RequestLog | None = None,
    max_connections: int = 256,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for one server; the only place clients are constructed."""
    inner = transport or httpx.AsyncHTTPTransport(
        retries=0,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
    )
    if log is not None:
        inner = LoggingTransport(inner, log)
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=dict(headers or {}),
        timeout=timeout or default_timeout(),
        transport=inner,
    )


@contextmanager
def transport_errors(*, provider: str, address: str, model: str | None = None) -> Iterator[None]:
    """Translate httpx transport exceptions raised inside the block into ``ProviderError``s."""
    try:
        yield
    except httpx.TimeoutException as exc:
        phase = "connecting to" if isinstance(exc, httpx.ConnectTimeout) else "waiting for"
        raise Timeout(
            f"timed out {phase} {provider} at {address}",
            remedy="the server may be loading a large model; retry, raise the timeout, or load it first",
            provider=provider,
            model=model,
            address=address,
        ) from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        reason = _reason(exc)
        raise Unreachable(
            f"{provider} is not reachable at {address} ({reason})",
            refused=reason == "connection refused",
            provider=provider,
            model=model,
            address=address,
        ) from exc


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower() or _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed mid-response"
    return text.splitlines()[0][:120]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True when ``kind`` appears in the cause/context chain of ``exc``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Parse ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``; ``None`` if absent."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def json_body(response: httpx.Response) -> Any:
    """The parsed JSON body, or the raw text when it is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One server-sent event: its ``event:`` name (may be empty) and decoded JSON data."""

    event: str
    data: Any


async def iter_sse(response: httpx.Response) -> AsyncIterator[SseEvent]:
    """Yield the events of an SSE response; ``[DONE]`` markers end the stream."""
    from httpx_sse import EventSource

    async for sse in EventSource(response).aiter_sse():
        if not sse.data:
            continue
        if sse.data.strip() == "[DONE]":
            return
        try:
            data = json.loads(sse.data)
        except json.JSONDecodeError:
            data = sse.data
        yield SseEvent(sse.event if sse.event != "message" else "", data)


# --- request log ----------------------------------------------------------------------------


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secret-looking keys replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RequestLog:
    """Append-only JSON-lines log of HTTP requests and responses, secrets redacted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (adds a timestamp)."""
        line = json.dumps({"time": time.time(), **redact(record)}, ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _decode(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class LoggingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and records each exchange in a ``RequestLog``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, log: RequestLog) -> None:
        self._inner = inner
        self._log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Log the request, forward it, and log the response body once it has been read."""
        body = _decode(request.content) if request.content else None
        headers = {k: (REDACTED if SECRET_KEY.search(k) else v) for k, v in request.headers.items()}
        self._log.write(
            {
                "direction": "request",
                "method": request.method,
                "url": str(request.url),
                "headers": headers,
                "body": body,
            }
        )
        response = await self._inner.handle_async_request(request)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_LoggedStream(response, self._log, str(request.url)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


class _LoggedStream(httpx.AsyncByteStream):
    def __init__(self, response: httpx.Response, log: RequestLog, url: str) -> None:
        self._response = response
        self._log = log
        self._url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks: list[bytes] = []
        stream = self._response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for chunk in stream:
            chunks.append(chunk)
            yield chunk
        self._log.write(
            {
                "direction": "response",
                "url": self._url,
                "status": self._response.status_code,
                "body": _decode(b"".join(chunks)),
            }
        )

    async def aclose(self) -> None:
        stream = self._response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            await stream.aclose()


def describe(exc: ProviderError) -> str:
    """A one-line description used in notices: ``provider/model kind (status)``."""
    where = "/".join(p for p in (exc.provider, exc.model) if p)
    return f"{where} {exc.short()}".strip()
