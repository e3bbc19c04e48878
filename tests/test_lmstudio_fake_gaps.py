"""The LM Studio fake's newer behaviours over real loopback HTTP: memory, idle TTL, embedding
context, token format, integrations and tool-call events, ``/api/v0``, ``/v1/completions``,
and its command line (request log, fault flags)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


# --- auth token format -------------------------------------------------------------------------

TOKEN = "sk-lm-Abcd1234:abcdefghijklmnopqrst"


def test_auth_requires_lm_studios_token_format() -> None:
    fake = LMStudioFake(auth_token=TOKEN)
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=30) as http:
        malformed = http.get("/api/v1/models", headers={"Authorization": "Bearer lmstudio"})
        unknown = http.get(
            "/api/v1/models", headers={"Authorization": "Bearer sk-lm-Zzzz9999:abcdefghijklmnopqrst"}
        )
        right = http.get("/api/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert malformed.status_code == 401
    assert "sk-lm-XXXXXXXX:YYYYYYYYYYYYYYYYYYYY" in malformed.json()["error"]["message"]
    assert unknown.status_code == 401
    assert "invalid or has been revoked" in unknown.json()["error"]["message"]
    assert right.status_code == 200


def test_a_fake_token_not_in_lm_studios_format_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="sk-lm-XXXXXXXX"):
        LMStudioFake(auth_token="lmstudio")


# --- integrations and tool calls -------------------------------------------------------------------

MCP = {"type": "ephemeral_mcp", "server_label": "hf", "server_url": "https://example.invalid/mcp"}


def test_integrations_produce_a_tool_call_item_before_the_message(
    served: tuple[LMStudioFake, httpx.Client],
) -> None:
    _, http = served
    body = {
        "model": GEMMA,
        "input": "Top model?",
        "integrations": [{**MCP, "allowed_tools": ["model_search"]}],
    }
    reply = http.post("/api/v1/chat", json=body)
    assert reply.status_code == 200
    output = reply.json()["output"]
    assert [item["type"] for item in output] == ["tool_call", "message"]
    assert output[0]["tool"] == "model_search"
    assert output[0]["provider_info"] == {"type": "ephemeral_mcp", "server_label": "hf"}
    assert output[0]["arguments"] == {"query": "Top model?"}


def test_an_unknown_tool_is_an_invalid_tool_call(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    body = {
        "model": GEMMA,
        "input": "call tool open_browser",
        "integrations": [{**MCP, "allowed_tools": ["a"]}],
    }
    item = http.post("/api/v1/chat", json=body).json()["output"][0]
    assert item["type"] == "invalid_tool_call"
    assert item["reason"] == "Cannot find tool with name open_browser."
    assert item["metadata"]["type"] == "invalid_name"


def test_streamed_tool_calls_emit_tool_call_events(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    body = {"model": GEMMA, "input": "hi", "stream": True, "integrations": [MCP]}
    text = http.post("/api/v1/chat", json=body).text
    kinds = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    start = kinds.index("tool_call.start")
    assert kinds[start : start + 3] == ["tool_call.start", "tool_call.arguments", "tool_call.success"]
    assert kinds.index("prompt_processing.end") < start < kinds.index("message.start")


def test_plugins_need_authentication_and_entries_are_validated(
    served: tuple[LMStudioFake, httpx.Client],
) -> None:
    _, http = served
    plugin = http.post(
        "/api/v1/chat", json={"model": GEMMA, "input": "hi", "integrations": ["mcp/playwright"]}
    )
    broken = http.post("/api/v1/chat", json={"model": GEMMA, "input": "hi", "integrations": [{"type": "x"}]})
    assert plugin.status_code == 403
    assert plugin.json()["error"]["type"] == "plugin_connection_error"
    assert broken.status_code == 400
    assert broken.json()["error"]["param"] == "integrations"


# --- /api/v0 and /v1/completions ---------------------------------------------------------------------


def test_api_v0_lists_models_in_its_own_shape(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    data = http.get("/api/v0/models").json()["data"]
    gemma = next(m for m in data if m["id"] == GEMMA)
    assert gemma["state"] == "loaded"
    assert gemma["type"] == "vlm" or gemma["type"] == "llm"
    assert next(m for m in data if m["id"] == NOMIC)["type"] == "embeddings"
    assert http.get(f"/api/v0/models/{GEMMA}").json()["id"] == GEMMA


def test_api_v0_chat_adds_stats_model_info_and_runtime(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    body = http.post(
        "/api/v0/chat/completions", json={"model": GEMMA, "messages": [{"role": "user", "content": "hi"}]}
    ).json()
    assert body["object"] == "chat.completion"
    assert body["stats"]["stop_reason"] == "eosFound"
    assert body["model_info"]["context_length"] == 8192
    assert body["runtime"]["supported_formats"] == ["gguf"]


def test_v1_completions_plain_and_streamed(served: tuple[LMStudioFake, httpx.Client]) -> None:
    fake, http = served
    fake.script("to find your purpose", "streamed words here")
    plain = http.post("/v1/completions", json={"model": GEMMA, "prompt": "the meaning of life is"}).json()
    assert plain["object"] == "text_completion"
    assert plain["choices"][0]["text"] == "to find your purpose"
    streamed = http.post("/v1/completions", json={"model": GEMMA, "prompt": "go", "stream": True}).text
    datas = [line[len("data: ") :] for line in streamed.splitlines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    pieces = [json.loads(d)["choices"][0]["text"] for d in datas[:-1]]
    assert "".join(pieces) == "streamed words here"


def test_api_v0_embeddings(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    body = http.post("/api/v0/embeddings", json={"model": NOMIC, "input": "hello"}).json()
    assert len(body["data"][0]["embedding"]) == 768


# --- the seed skill's flows (v1.0.3 test.mjs / unload.mjs, as described in the reference) -------


def test_the_seed_skills_smoke_test_flow(served: tuple[LMStudioFake, httpx.Client]) -> None:
    _, http = served
    headers = {"Authorization": "Bearer lmstudio"}  # what the skill hard-codes; fine with auth off
    key = "qwen/qwen3-4b-2507"
    assert http.post("/api/v1/models/load", json={"model": key}, headers=headers).status_code == 200
    chat = {
        "model": key,
        "input": "Reply with exactly: OK",
        "store": True,
        "temperature": 0,
        "max_output_tokens": 10,
    }
    reply = http.post("/api/v1/chat", json=chat, headers=headers).json()
    assert reply["output"][-1]["content"] == "OK"
    unload = http.post(
        "/api/v1/models/unload", json={"instance_id": reply["model_instance_id"]}, headers=headers
    )
    assert unload.status_code == 200
    models = http.get("/api/v1/models", headers=headers).json()["models"]
    assert next(m for m in models if m["key"] == key)["loaded_instances"] == []


# --- command line ------------------------------------------------------------------------------


def test_command_line_logs_requests_and_injects_faults() -> None:
    argv = [sys.executable, "-m", "offload.testing.lmstudio_fake", "--port", "0", "--log-requests"]
    argv += ["--fault", "status:503x2@/api/v1/models", "--memory-gb", "0.5"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", proc.stdout.readline().strip())
        assert match
        url = match.group(1)
        statuses = [httpx.get(f"{url}/api/v1/models", timeout=10).status_code for _ in range(3)]
        load = httpx.post(f"{url}/api/v1/models/load", json={"model": "qwen/qwen3-4b-2507"}, timeout=30)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert statuses == [503, 503, 200]
    assert load.status_code == 500
    assert 'Received request: POST to /api/v1/models/load with body {"model": "qwen/qwen3-4b-2507"}' in stderr


def test_command_line_rejects_a_bad_fault() -> None:
    argv = [sys.executable, "-m", "offload.testing.lmstudio_fake", "--port", "0", "--fault", "explode"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2
    assert "unknown fault 'explode'" in run.stderr
