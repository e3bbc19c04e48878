"""The network seam: transport error mapping, Retry-After, SSE, and the redacting request log."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from offload.errors import Timeout, Unreachable
from offload.http import (
    RequestLog,
    is_local_url,
    iter_sse,
    make_client,
    redact,
    retry_after_seconds,
    transport_errors,
)


async def test_connect_errors_become_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = make_client("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with (
        pytest.raises(Unreachable) as info,
        transport_errors(provider="lmstudio", address="http://127.0.0.1:9"),
    ):
        await client.get("/api/v1/models")
    assert "http://127.0.0.1:9" in str(info.value) and "connection refused" in str(info.value)
    assert info.value.retryable
    await client.aclose()


async def test_read_timeouts_become_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = make_client("http://x", transport=httpx.MockTransport(slow))
    with pytest.raises(Timeout), transport_errors(provider="p", address="http://x"):
        await client.get("/")
    await client.aclose()


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None


async def test_sse_reader_dispatches_events_and_stops_at_done() -> None:
    body = (
        b'event: message.delta\ndata: {"type":"message.delta","content":"Hi"}\n\n'
        b'data: {"plain": 1}\n\n'
        b"data: [DONE]\n\n"
        b'data: {"after": "done"}\n\n'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = make_client("http://x", transport=httpx.MockTransport(handler))
    async with client.stream("GET", "/") as response:
        events = [e async for e in iter_sse(response)]
    assert [(e.event, e.data) for e in events] == [
        ("message.delta", {"type": "message.delta", "content": "Hi"}),
        ("", {"plain": 1}),
    ]
    await client.aclose()


async def test_request_log_redacts_secrets(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "log.jsonl")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ok": True, "api_key": "leaked?"})

    client = make_client(
        "http://x",
        headers={"Authorization": "Bearer sk-lm-SECRET12:abcdefghijklmnopqrst"},
        transport=httpx.MockTransport(handler),
        log=log,
    )
    await client.post("/api/v1/chat", json={"model": "m", "input": "hi", "token": "hunter2"})
    await client.aclose()
    text = (tmp_path / "log.jsonl").read_text()
    assert "SECRET12" not in text and "hunter2" not in text and "leaked?" not in text
    lines = [json.loads(x) for x in text.splitlines()]
    assert [r["direction"] for r in lines] == ["request", "response"]
    assert lines[0]["body"]["input"] == "hi" and lines[1]["status"] == 200


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
