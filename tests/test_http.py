"""The network seam over real loopback HTTP: error mapping, timeouts, Retry-After, SSE, the
redacting request log, and clean closing across event loops."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from pathlib import Path

import pytest
from aiohttp import web

from offload._sync import LoopThread
from offload.errors import Timeout, Unreachable
from offload.http import (
    RequestLog,
    Response,
    Timeouts,
    is_local_url,
    iter_sse,
    make_client,
    redact,
    retry_after_seconds,
    transport_errors,
)
from offload.sse import RawEvent, SseParser
from tests.loopback import answering, serving


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connect_errors_become_unreachable() -> None:
    address = f"http://127.0.0.1:{closed_port()}"
    async with make_client(address) as client:
        with pytest.raises(Unreachable) as info, transport_errors(provider="lmstudio", address=address):
            await client.request("GET", "/api/v1/models")
    assert address in str(info.value)
    assert "connection refused" in str(info.value)
    assert info.value.refused
    assert info.value.retryable


async def test_read_timeouts_become_timeout() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(text="late")

    async with serving(slow) as url, make_client(url, timeout=Timeouts(connect=5, read=0.2)) as client:
        try:
            with pytest.raises(Timeout) as info, transport_errors(provider="p", address=url):
                await client.request("GET", "/")
        finally:
            release.set()
    assert "waiting for p" in str(info.value)


async def test_a_connection_dropped_mid_answer_is_unreachable() -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"partial")
        assert request.transport is not None
        request.transport.close()
        return response

    async with serving(drop) as url, make_client(url) as client:
        with pytest.raises(Unreachable) as info, transport_errors(provider="p", address=url):
            await client.request("GET", "/")
    assert "connection closed mid-response" in str(info.value)


async def test_json_requests_carry_headers_and_params() -> None:
    seen: list[tuple[str, str, str, object]] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append((request.path_qs, request.headers["X-Key"], request.headers["Content-Type"], body))
        return web.json_response({"ok": True}, headers={"Retry-After": "7"})

    async with serving(echo) as url, make_client(url + "/", headers={"X-Key": "k"}) as client:
        response = await client.request("POST", "/v1/x", json={"a": "é"}, params={"q": "1"})
    assert seen == [("/v1/x?q=1", "k", "application/json", {"a": "é"})]
    assert response.json() == {"ok": True}
    assert retry_after_seconds(response.headers) == 7.0


async def test_credentials_in_the_url_become_basic_auth_unless_a_header_is_set() -> None:
    seen: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({})

    async with serving(record) as url:
        with_userinfo = url.replace("http://", "http://ad%40min:p%3Ass@")
        async with make_client(with_userinfo) as client:
            await client.request("GET", "/")
        async with make_client(with_userinfo, headers={"Authorization": "Bearer sk-1"}) as client:
            await client.request("GET", "/")
    assert seen == ["Basic " + base64.b64encode(b"ad@min:p:ss").decode(), "Bearer sk-1"]


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:99999/v1", "ftp://127.0.0.1/v1", "http://[::1/v1", "http:///v1"]
)
async def test_unusable_urls_are_one_clear_error(base: str) -> None:
    async with make_client(base) as client:
        with pytest.raises(Unreachable) as info, transport_errors(provider="p", address=base):
            await client.request("POST", "/chat/completions", json={})
    assert f"p is not reachable at {base}" in str(info.value)


async def test_redirects_are_returned_not_followed() -> None:
    async def moved(request: web.Request) -> web.StreamResponse:
        if request.path == "/elsewhere":
            return web.json_response({"followed": True})
        return web.Response(status=307, headers={"Location": "/elsewhere"})

    async with serving(moved) as url, make_client(url) as client:
        response = await client.request("POST", "/v1/chat/completions", json={"a": 1})
    assert response.status_code == 307


async def test_a_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    async with serving(answering(200, b"{}", "application/json")) as url, make_client(url) as client:
        with pytest.raises(Unreachable) as info, transport_errors(provider="p", address=url):
            await client.request("GET", "/")
    assert info.value.refused


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None


SSE_BODY = (
    b'event: message.delta\ndata: {"type":"message.delta","content":"Hi"}\n\n'
    b'data: {"plain": 1}\n\n'
    b"data: [DONE]\n\n"
    b'data: {"after": "done"}\n\n'
)


async def test_sse_reader_dispatches_events_and_stops_at_done() -> None:
    handler = answering(200, SSE_BODY, "text/event-stream")
    async with serving(handler) as url, make_client(url) as client, client.stream("GET", "/") as response:
        events = [e async for e in iter_sse(response)]
    assert [(e.event, e.data) for e in events] == [
        ("message.delta", {"type": "message.delta", "content": "Hi"}),
        ("", {"plain": 1}),
    ]


async def test_sse_events_arrive_before_the_stream_ends() -> None:
    more = asyncio.Event()

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await more.wait()
        await response.write(b'data: {"n": 2}\n\n')
        return response

    async with serving(trickle) as url, make_client(url) as client, client.stream("GET", "/") as response:
        events = aiter(iter_sse(response))
        first = await anext(events)
        more.set()
        rest = [e.data async for e in events]
    assert first.data == {"n": 1}
    assert rest == [{"n": 2}]


def feed_all(chunks: list[bytes]) -> list[RawEvent]:
    parser = SseParser()
    out = [e for c in chunks for e in parser.feed(c)]
    return out + parser.close()


@pytest.mark.parametrize(
    "chunks",
    [
        [b"event: a\r\ndata: x\r\n\r\ndata: y\r\ndata: z\r\n\r\n"],
        [b"event: a\r", b"\ndata: x\r", b"\n\r", b"\ndata: y\ndata: z\n", b"\n"],
        [b"event: a\rdata: x\r\rdata: y\rdata: z\r\r"],
        [bytes([b]) for b in b"event: a\ndata: x\n\ndata: y\ndata: z\n\n"],
    ],
)
def test_sse_parser_handles_every_line_ending_and_split(chunks: list[bytes]) -> None:
    assert feed_all(chunks) == [RawEvent("a", "x"), RawEvent("", "y\nz")]


def test_sse_parser_skips_comments_and_splits_utf8_safely() -> None:
    text = ": keep-alive\ndata:é€\n\n".encode()
    assert feed_all([text[:15], text[15:]]) == [RawEvent("", "é€")]


def test_sse_parser_dispatches_a_last_event_without_its_blank_line() -> None:
    assert feed_all([b"data: last"]) == [RawEvent("", "last")]


async def test_request_log_redacts_secrets(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.jsonl")
    handler = answering(200, json.dumps({"ok": True, "api_key": "leaked?"}).encode(), "application/json")
    headers = {"Authorization": "Bearer sk-lm-SECRET12:abcdefghijklmnopqrst"}
    async with serving(handler) as url, make_client(url, headers=headers, log=log) as client:
        await client.request("POST", "/api/v1/chat", json={"model": "m", "input": "hi", "token": "hunter2"})
    text = (tmp_path / "log.jsonl").read_text()
    assert "SECRET12" not in text
    assert "hunter2" not in text
    assert "leaked?" not in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert [r["direction"] for r in lines] == ["request", "response"]
    assert lines[0]["body"]["input"] == "hi"
    assert lines[1]["status"] == 200


async def test_request_log_keeps_a_streamed_body(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.jsonl")
    handler = answering(200, SSE_BODY, "text/event-stream")
    async with (
        serving(handler) as url,
        make_client(url, log=log) as client,
        client.stream("POST", "/s", json={"stream": True}) as response,
    ):
        [e async for e in iter_sse(response)]
    lines = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert lines[1]["body"].startswith("event: message.delta")


def test_one_client_serves_two_event_loops_and_closes_both() -> None:
    """The sync facades run a private loop in a thread: a client used there and on the caller's
    loop keeps a session per loop, and closing it from the caller's loop closes both
    (``filterwarnings = error`` turns a leaked session or socket into a failure)."""
    body = json.dumps({"ok": True}).encode()
    server_thread, private = LoopThread(), LoopThread()
    try:
        served = serving(answering(200, body, "application/json"))
        url = server_thread.run(served.__aenter__())
        client = make_client(url)
        first = private.run(client.request("GET", "/"))

        async def here() -> Response:
            answer = await client.request("GET", "/")
            await client.aclose()
            return answer

        second = asyncio.run(here())
        server_thread.run(served.__aexit__(None, None, None))
    finally:
        private.close()
        server_thread.close()
    assert first.status_code == 200
    assert second.json() == {"ok": True}


def test_redact_nested() -> None:
    assert redact({"a": [{"apiKey": "x", "b": 1}], "password": "p"}) == {
        "a": [{"apiKey": "***", "b": 1}],
        "password": "***",
    }


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:1234", True),
        ("http://localhost:1234/v1", True),
        ("http://192.168.1.20:1234", True),
        ("http://10.0.0.5:8000/v1", True),
        ("http://studio.local:1234", True),
        ("http://gpubox:8000", False),  # dotless: local only with `local: true`
        ("https://api.anthropic.com", False),
        ("https://openrouter.ai/api/v1", False),
        ("http://8.8.8.8", False),
    ],
)
def test_local_url_detection(url: str, local: bool) -> None:
    assert is_local_url(url) is local
