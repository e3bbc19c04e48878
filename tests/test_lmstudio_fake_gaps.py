"""The LM Studio fake's newer behaviours over real loopback HTTP: memory, idle TTL, embedding
context, token format, integrations and tool-call events, ``/api/v0``, ``/v1/completions``,
and its command line (request log, fault flags)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from offload.testing import FakeModel, LMStudioFake

GB = 1_000_000_000
GEMMA = "google/gemma-3-1b"
NOMIC = "text-embedding-nomic-embed-text-v1.5"


@pytest.fixture
def served() -> Iterator[tuple[LMStudioFake, httpx.Client]]:
    fake = LMStudioFake()
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield fake, http


def test_a_load_that_does_not_fit_the_memory_budget_fails_like_lm_studio() -> None:
    fake = LMStudioFake([FakeModel("a/big-8b", size_bytes=8 * GB)], memory_bytes=4 * GB)
    with fake.serve() as server:
        reply = httpx.post(f"{server.url}/api/v1/models/load", json={"model": "a/big-8b"}, timeout=30)
    assert reply.status_code == 500
    error = reply.json()["error"]
    assert error["type"] == "internal_error"
    assert "insufficient system resources" in error["message"]
    assert fake.loaded_instances() == []


def test_a_jit_load_with_ttl_is_unloaded_after_that_idle_time(
    served: tuple[LMStudioFake, httpx.Client],
) -> None:
    fake, http = served
    body = {"model": "qwen/qwen3-4b-2507", "messages": [{"role": "user", "content": "hi"}], "ttl": 120}
    assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert fake.instance_ttl("qwen/qwen3-4b-2507") == 120
    assert fake.pass_idle_time(60) == []
    assert fake.pass_idle_time(121) == ["qwen/qwen3-4b-2507"]
    assert "qwen/qwen3-4b-2507" not in fake.loaded_instances()


def test_ttl_on_an_already_loaded_model_changes_nothing(served: tuple[LMStudioFake, httpx.Client]) -> None:
    fake, http = served
    body = {"model": GEMMA, "messages": [{"role": "user", "content": "hi"}], "ttl": 5}
    assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert fake.instance_ttl(GEMMA) is None


def test_native_load_rejects_ttl(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    reply = http.post("/api/v1/models/load", json={"model": GEMMA, "ttl": 60})
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "unrecognized_keys"


def test_embedding_models_never_load_above_their_maximum_context(
    served: tuple[LMStudioFake, httpx.Client],
) -> None:
    fake, http = served
    fake.unload(NOMIC)
    reply = http.post(
        "/api/v1/models/load", json={"model": NOMIC, "context_length": 8192, "echo_load_config": True}
    )
    assert reply.status_code == 200
    assert reply.json()["load_config"] == {"context_length": 2048}
