"""The Python client (``AsyncLMStudio`` and the sync ``LMStudio``) against the fake over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload import AsyncLMStudio, LMStudio
from offload.errors import (
    AuthError,
    ContextOverflow,
    ModelNotFound,
    ResponseNotFound,
    ServerError,
    Timeout,
    Unreachable,
)
from offload.routing.retry import RetryPolicy
from offload.testing import FakeModel, LMStudioFake
from offload.types import Progress, StreamEnd, TextDelta


@pytest.fixture
def served() -> Iterator[tuple[LMStudioFake, str]]:
    fake = LMStudioFake()
    with fake.serve() as server:
        yield fake, server.url


def test_sync_facade_round_trip(served: tuple[LMStudioFake, str], tmp_path: Path) -> None:
    fake, url = served
    fake.script("Four.")
    with LMStudio(base_url=url, state_dir=tmp_path) as lms:
        models = lms.models()
        assert {m.key for m in models} >= {"google/gemma-3-1b", "qwen/qwen3-4b-2507"}
        loaded = lms.load("qwen/qwen3-4b-2507", context_length=8192)
        assert loaded.instance_id == "qwen/qwen3-4b-2507"
        assert not loaded.already_loaded
        assert lms.load("qwen/qwen3-4b-2507").already_loaded
        result = lms.chat("What is 2+2?", model="qwen/qwen3-4b-2507", max_output_tokens=10)
        assert result.content == "Four."
        assert result.instance_id == "qwen/qwen3-4b-2507"
        assert result.usage.input_tokens > 0
        assert result.timings.total_seconds is not None
        events = list(lms.stream_chat("count to three", model="qwen/qwen3-4b-2507"))
        assert isinstance(events[-1], StreamEnd)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == events[-1].result.content
        assert lms.unload("qwen/qwen3-4b-2507") == ["qwen/qwen3-4b-2507"]
        assert "qwen/qwen3-4b-2507" not in fake.loaded_instances()


async def test_streaming_reports_jit_load_progress(served: tuple[LMStudioFake, str], tmp_path: Path) -> None:
    _, url = served
    async with AsyncLMStudio(url, state_dir=tmp_path) as lms:
        events = [e async for e in lms.stream_chat("hello", model="google/gemma-4-e4b", reasoning="off")]
    stages = [(e.stage, e.done) for e in events if isinstance(e, Progress)]
    assert ("model_load", True) in stages
    assert ("prompt_processing", True) in stages
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.result.timings.model_load_time is not None


async def test_conversations_from_the_library(served: tuple[LMStudioFake, str], tmp_path: Path) -> None:
    fake, url = served
    async with AsyncLMStudio(url, state_dir=tmp_path) as lms:
        first = await lms.chat("remember 7", conversation="c1", system="terse")
        second = await lms.chat("what number?", conversation="c1", system="terse")
    bodies = [r.body for r in fake.requests if r.path == "/api/v1/chat"]
    assert bodies[1]["previous_response_id"] == first.response_id
    assert "system_prompt" not in bodies[1]
    assert lms.conversations.get("c1").response_id == second.response_id


async def test_library_error_kinds(tmp_path: Path) -> None:
    fake = LMStudioFake(models=[FakeModel("tiny/m", loaded=True, context_length=32, max_context_length=1024)])
    with fake.serve() as server:
        async with AsyncLMStudio(
            server.url, state_dir=tmp_path, retry=RetryPolicy(attempts=2, base=0.01)
        ) as lms:
            with pytest.raises(ModelNotFound) as missing:
                await lms.chat("hi", model="tiny")
            assert missing.value.available == ("tiny/m",)
            with pytest.raises(ContextOverflow) as overflow:
                await lms.chat("word " * 200, model="tiny/m")
            assert overflow.value.context_length == 32
            assert (overflow.value.prompt_tokens or 0) > 32
            with pytest.raises(ResponseNotFound):
                await lms.chat("hi", model="tiny/m", previous_response_id="resp_" + "1" * 48)
            fake.fail_next("status:500", count=2)
            with pytest.raises(ServerError):
                await lms.chat("hi", model="tiny/m")
            fake.fail_next("timeout")
        async with AsyncLMStudio(
            server.url, state_dir=tmp_path, retry=RetryPolicy(attempts=1), timeout=0.3
        ) as lms:
            with pytest.raises(Timeout):
                await lms.chat("hi", model="tiny/m")


async def test_auth_and_unreachable(tmp_path: Path) -> None:
    fake = LMStudioFake(auth_token="sk-lm-Abcd1234:abcdefghijklmnopqrst")
    with fake.serve() as server:
        async with AsyncLMStudio(server.url, state_dir=tmp_path) as lms:
            with pytest.raises(AuthError):
                await lms.models()
        async with AsyncLMStudio(
            server.url, "sk-lm-Abcd1234:abcdefghijklmnopqrst", state_dir=tmp_path
        ) as lms:
            assert await lms.models()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncLMStudio(
        f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=1), state_dir=tmp_path
    ) as lms:
        with pytest.raises(Unreachable) as down:
            await lms.models()
    assert down.value.refused
    assert "lms server start" in str(down.value)


async def test_settings_come_from_the_environment(
    served: tuple[LMStudioFake, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake, url = served
    monkeypatch.setenv("LM_STUDIO_API_URL", f"{url}/v1/")
    monkeypatch.setenv("LMSTUDIO_API_TOKEN", "tok")
    async with AsyncLMStudio(state_dir=tmp_path) as lms:
        assert lms.base_url == url
        await lms.models()
    monkeypatch.delenv("LMSTUDIO_API_TOKEN")
    async with AsyncLMStudio(state_dir=tmp_path) as lms:
        await lms.models()
    assert [r.path for r in fake.requests] == ["/api/v1/models", "/api/v1/models"]
    assert fake.requests[0].headers["authorization"] == "Bearer <redacted>"
    assert "authorization" not in fake.requests[1].headers


async def test_concurrent_library_turns_keep_one_chain(
    served: tuple[LMStudioFake, str], tmp_path: Path
) -> None:
    fake, url = served
    async with AsyncLMStudio(url, state_dir=tmp_path) as lms:
        results = await asyncio.gather(*(lms.chat(f"turn {i}", conversation="many") for i in range(5)))
    previous = [r.body.get("previous_response_id") for r in fake.requests if r.path == "/api/v1/chat"]
    assert previous.count(None) == 1
    assert len(set(previous)) == 5
    assert lms.conversations.get("many").turns == 5
    assert {r.response_id for r in results} >= {p for p in previous if p}
