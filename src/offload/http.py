"""The one network seam: HTTP clients (aiohttp), transport failures mapped once, SSE, the request log.

Every HTTP call offload makes goes through an ``HttpClient`` from ``make_client``; this is the
only module that imports the HTTP library (aiohttp, imported on first use so ``import offload``
stays light). An aiohttp session belongs to one event loop, so a client keeps one session per
loop it is used on (the sync facades run their own loop) and ``aclose`` closes them all.
Transport exceptions become ``Unreachable``/``Timeout`` in ``transport_errors`` and nowhere
else. ``RequestLog`` writes JSON lines of requests and responses with secrets masked by
``log_safe`` (``--log PATH``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit, urlunsplit

from offload.closing import closing
from offload.errors import ProviderError, Timeout, Unreachable
from offload.locality import is_local_url as is_local_url  # re-exported: providers import it here
from offload.sse import SseParser

if TYPE_CHECKING:
    import aiohttp

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 600.0
"""Long on purpose: a JIT load of a big model can take minutes before the first byte."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds allowed to open a connection, and to wait for the next bytes of an answer."""

    connect: float = CONNECT_TIMEOUT
    read: float = READ_TIMEOUT


def default_timeout(read: float = READ_TIMEOUT) -> Timeouts:
    """Short connect, long read: local servers load models inside the first request."""
    return Timeouts(connect=CONNECT_TIMEOUT, read=read)


@dataclass(frozen=True, slots=True)
class Response:
    """A whole HTTP response: status, headers (case-insensitive) and body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


class StreamResponse:
    """A response whose body is read as it arrives: ``aread()`` for all of it, ``iter_sse``
    for events."""

    def __init__(self, raw: aiohttp.ClientResponse, on_body: _BodyLog | None) -> None:
        self._raw = raw
        self.status_code = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self._log = on_body

    async def aread(self) -> Response:
        """Read the rest of the body."""
        content = await self._raw.read()
        if self._log is not None:
            self._log.chunks.append(content)
        return Response(self.status_code, self.headers, content)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as the server sends them."""
        async for chunk in self._raw.content.iter_any():
            if self._log is not None:
                self._log.chunks.append(chunk)
            yield chunk


@dataclass(slots=True)
class _BodyLog:
    chunks: list[bytes]


class HttpClient:
    """Requests to one server: base URL, default headers, timeouts, a pooled connection set."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        log: RequestLog | None = None,
        max_connections: int = 256,
    ) -> None:
        self.base_url, self.headers = _without_userinfo(base_url.rstrip("/"), dict(headers or {}))
        self.timeout = timeout or default_timeout()
        self.log = log
        self.max_connections = max_connections
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            import aiohttp

            t = self.timeout
            session = aiohttp.ClientSession(
                headers=self.headers,
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=t.read, sock_connect=t.connect, sock_read=t.read
                ),
                trust_env=_proxy_in_env(),
            )
            self._sessions[loop] = session
        return session

    def _url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    async def request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None
    ) -> Response:
        """Send one request and read the whole answer (transport failures raise aiohttp's errors;
        wrap the call in ``transport_errors``)."""
        url = self._url(path)
        data = _encode(json)
        if self.log is not None:
            self.log.request(method, url, self.headers, json)
        headers = _JSON if data is not None else None
        session = self._session()
        async with session.request(
            method, url, data=data, params=params, headers=headers, allow_redirects=False
        ) as raw:
            content = await raw.read()
        if self.log is not None:
            self.log.response(url, raw.status, content)
        return Response(raw.status, raw.headers, content)

    def stream(self, method: str, path: str, *, json: Any = None) -> _Streaming:
        """``async with client.stream(...) as response``: send one request and get the response
        before its body is read; leaving the block releases it (a plain context manager, not a
        generator, so only the reader's task ever unwinds it)."""
        return _Streaming(self, method, path, json)

    async def aclose(self) -> None:
        """Close the session of every loop this client was used on: this loop's here, another
        running loop's on that loop (waiting for it). A loop already closed took its sockets
        down with it as far as it could; its session is only dropped."""
        sessions, self._sessions = self._sessions, {}
        here = asyncio.get_running_loop()
        for loop, session in sessions.items():
            if loop is here:
                await session.close()
            elif loop.is_running():
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
            else:
                session.detach()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_JSON = {"Content-Type": "application/json"}


class _Streaming:
    """The context manager behind ``HttpClient.stream``: one request, its response released
    (and logged, with the body read so far) on exit."""

    def __init__(self, client: HttpClient, method: str, path: str, json: Any) -> None:
        self._client = client
        self._method = method
        self._url = client._url(path)
        self._json = json
        self._body = _BodyLog([]) if client.log is not None else None
        self._raw: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> StreamResponse:
        client, data = self._client, _encode(self._json)
        if client.log is not None:
            client.log.request(self._method, self._url, client.headers, self._json)
        headers = _JSON if data is not None else None
        self._raw = await client._session().request(
            self._method, self._url, data=data, headers=headers, allow_redirects=False
        )
        return StreamResponse(self._raw, self._body)

    async def __aexit__(self, *exc: object) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        raw.release()
        await raw.wait_for_close()
        log = self._client.log
        if log is not None and self._body is not None:
            log.response(self._url, raw.status, b"".join(self._body.chunks))


def _without_userinfo(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``user:password@`` taken out of ``url`` (aiohttp refuses it beside an Authorization
    header) and sent as Basic auth instead, unless an Authorization header is configured."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url, headers
    except ValueError:  # a malformed URL fails later, inside ``transport_errors``
        return url, headers
    if not any(name.lower() == "authorization" for name in headers):
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host)), headers


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _proxy_in_env() -> bool:
    """Honour ``HTTP(S)_PROXY``/``NO_PROXY`` when one is set (aiohttp's ``trust_env``, which
    otherwise costs a look at the environment on every request)."""
    return any(os.environ.get(name) for name in PROXY_VARIABLES)


def _encode(body: Any) -> bytes | None:
    if body is None:
        return None
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def make_client(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: Timeouts | None = None,
    log: RequestLog | None = None,
    max_connections: int = 256,
) -> HttpClient:
    """The client for one server; the only place clients are constructed."""
    return HttpClient(base_url, headers=headers, timeout=timeout, log=log, max_connections=max_connections)


def relay_session(*, limit: int = 512, read: float = READ_TIMEOUT) -> aiohttp.ClientSession:
    """A raw session for byte-for-byte relays (``offload serve``): pooled keep-alive connections,
    long reads, bodies left compressed as they come, no default headers added."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit // 2, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type", "Accept"),
    )


@contextmanager
def transport_errors(*, provider: str, address: str, model: str | None = None) -> Iterator[None]:
    """Translate transport exceptions raised inside the block into ``ProviderError``s."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        mapped = _mapped(exc, provider=provider, address=address, model=model)
        if mapped is None:
            raise
        raise mapped from exc


def _mapped(exc: BaseException, *, provider: str, address: str, model: str | None) -> ProviderError | None:
    import aiohttp

    if isinstance(exc, asyncio.TimeoutError):
        phase = "connecting to" if isinstance(exc, aiohttp.ConnectionTimeoutError) else "waiting for"
        return Timeout(
            f"timed out {phase} {provider} at {address}",
            remedy="the server may be loading a large model; retry, raise the timeout, or load it first",
            provider=provider,
            model=model,
            address=address,
        )
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        reason = _reason(exc)
        return Unreachable(
            f"{provider} is not reachable at {address} ({reason})",
            refused=reason == "connection refused",
            provider=provider,
            model=model,
            address=address,
        )
    return None


def _reason(exc: BaseException) -> str:
    import aiohttp

    text = str(exc) or type(exc).__name__
    if _caused_by(exc, ConnectionRefusedError) or "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | ConnectionResetError):
        return "connection closed mid-response"
    if isinstance(exc, aiohttp.InvalidURL):
        return f"invalid URL {exc}"
    return text.splitlines()[0][:120]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True when ``kind`` appears in the cause/context chain of ``exc`` (or its ``os_error``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind) or isinstance(getattr(current, "os_error", None), kind):
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


def json_body(response: Response) -> Any:
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


async def iter_sse(response: StreamResponse) -> AsyncIterator[SseEvent]:
    """Yield the events of an SSE response as they arrive; ``[DONE]`` markers end the stream."""
    parser = SseParser()
    async with closing(response.chunks()) as chunks:
        async for chunk in chunks:
            for raw in parser.feed(chunk):
                event = _event(raw.event, raw.data)
                if event is None:
                    return
                yield event
    for raw in parser.close():
        event = _event(raw.event, raw.data)
        if event is None:
            return
        yield event


def _event(name: str, data: str) -> SseEvent | None:
    """``None`` for the ``[DONE]`` marker."""
    if data.strip() == "[DONE]":
        return None
    try:
        parsed: Any = json.loads(data)
    except json.JSONDecodeError:
        parsed = data
    return SseEvent(name if name != "message" else "", parsed)


# --- request log ----------------------------------------------------------------------------


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secrets masked (see ``offload.redact``)."""
    from offload import redact as redaction

    return redaction.json_value(value)


def log_safe(record: Mapping[str, Any]) -> Any:
    """What the request log may keep of one record: the seam's only redaction step."""
    return redact(record)


class RequestLog:
    """Append-only JSON-lines log of HTTP requests and responses, secrets redacted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (adds a timestamp)."""
        line = json.dumps({"time": time.time(), **log_safe(record)}, ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def request(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> None:
        """Record a request about to be sent."""
        from offload import redact as redaction

        names = redaction.headers((k.lower(), v) for k, v in headers.items())
        record = {"direction": "request", "method": method, "url": url, "headers": names}
        self.write({**record, "body": body})

    def response(self, url: str, status: int, content: bytes) -> None:
        """Record a response whose body has been read."""
        self.write({"direction": "response", "url": url, "status": status, "body": _decode(content)})


def _decode(content: bytes) -> Any:
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def describe(exc: ProviderError) -> str:
    """A one-line description used in notices: ``provider/model kind (status)``."""
    where = "/".join(p for p in (exc.provider, exc.model) if p)
    return f"{where} {exc.short()}".strip()
