"""End-to-end tests of the LM Studio fake over real loopback HTTP (plain httpx, no offload client)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from offload.testing import FakeModel, FakeTurn, LMStudioFake, RunningServer
from offload.testing._lmstudio_text import default_responder, split_pieces
from offload.testing._schema_fill import fill_schema

RECORDED = Path(__file__).parent / "fixtures" / "lmstudio-recorded"
GEMMA = "google/gemma-3-1b"
QWEN = "qwen/qwen3-4b-2507"
GEMMA4 = "google/gemma-4-e4b"
RESP_ID = re.compile(r"^resp_[0-9a-f]{48}$")
CHAT_EVENTS = [
    "chat.start",
    "prompt_processing.start",
    "prompt_processing.progress",
    "prompt_processing.end",
]


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) of every SSE block; ``[DONE]`` stays a string."""
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        payload = "\n".join(data)
        events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
    return events


def names(events: list[tuple[str | None, Any]]) -> list[str | None]:
    return [name for name, _ in events]


@contextmanager
def client_for(fake: LMStudioFake, **kw: Any) -> Iterator[httpx.Client]:
    with fake.serve() as server, httpx.Client(base_url=server.url, timeout=10, **kw) as client:
        yield client


@pytest.fixture
def fake() -> LMStudioFake:
    return LMStudioFake()


@pytest.fixture
def server(fake: LMStudioFake) -> Iterator[RunningServer]:
    with fake.serve() as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http


def chat(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/v1/chat", json={"model": GEMMA, "input": "Hello"} | body)


# server basics and model management


def test_greeting_identifies_lmstudio(client: httpx.Client) -> None:
    response = client.get("/lmstudio-greeting")
    assert response.status_code == 200
    assert response.json() == {"lmstudio": True}


def test_default_model_list_equals_the_recorded_fixture(client: httpx.Client) -> None:
    response = client.get("/api/v1/models")
    assert response.status_code == 200
    assert response.json() == recorded("api-v1-models.json")


def test_load_ids_are_key_then_key_2_and_show_in_the_list(client: httpx.Client, fake: LMStudioFake) -> None:
    first = client.post("/api/v1/models/load", json={"model": QWEN})
    second = client.post("/api/v1/models/load", json={"model": QWEN, "context_length": 2048})
    assert first.status_code == second.status_code == 200
    assert first.json().keys() == recorded("api-v1-models-load.json").keys()
    assert first.json()["instance_id"] == QWEN
    assert second.json()["instance_id"] == f"{QWEN}:2"
    assert first.json()["status"] == "loaded"
    assert first.json()["type"] == "llm"
    listed = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    instances = listed[QWEN]["loaded_instances"]
    assert [i["id"] for i in instances] == [QWEN, f"{QWEN}:2"]
    assert instances[1]["config"]["context_length"] == 2048
    assert instances[0]["config"]["parallel"] == 4
    assert fake.loaded_instances() == [GEMMA, "text-embedding-nomic-embed-text-v1.5", QWEN, f"{QWEN}:2"]


def test_loading_an_already_loaded_key_creates_another_instance(client: httpx.Client) -> None:
    response = client.post("/api/v1/models/load", json={"model": GEMMA})
    assert response.json()["instance_id"] == f"{GEMMA}:2"


def test_echo_load_config_reports_the_applicable_keys() -> None:
    gguf = FakeModel("acme/tiny-gguf", max_context_length=4096)
    with client_for(LMStudioFake([gguf])) as http:
        body = http.post(
            "/api/v1/models/load",
            json={
                "model": "acme/tiny-gguf",
                "context_length": 1024,
                "flash_attention": False,
                "echo_load_config": True,
            },
        ).json()
        listed = http.get("/api/v1/models").json()["models"][0]
    assert body["load_config"] == {
        "context_length": 1024,
        "eval_batch_size": 512,
        "flash_attention": False,
        "offload_kv_cache_to_gpu": True,
    }
    assert listed["loaded_instances"][0]["config"]["parallel"] == 4
    assert listed["loaded_instances"][0]["config"]["flash_attention"] is False


def test_unload_keeps_the_model_listed_without_instances(client: httpx.Client) -> None:
    response = client.post("/api/v1/models/unload", json={"instance_id": GEMMA})
    assert response.status_code == 200
    assert response.json() == recorded("api-v1-models-unload.json")
    listed = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert listed[GEMMA]["loaded_instances"] == []


def test_unload_of_an_unknown_instance_is_a_404_native_envelope(client: httpx.Client) -> None:
    response = client.post("/api/v1/models/unload", json={"instance_id": "nope:7"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "model_not_found"
    assert "nope:7" in error["message"]
    assert set(error) == {"message", "type", "code", "param"}


def test_load_rejects_unrecognized_keys_like_lmstudio(client: httpx.Client) -> None:
    response = client.post("/api/v1/models/load", json={"model": QWEN, "ttl": 60})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Unrecognized key(s) in object: 'ttl'",
            "type": "invalid_request",
            "code": "unrecognized_keys",
            "param": None,
        }
    }


def test_load_of_an_unknown_key_is_model_not_found(client: httpx.Client) -> None:
    response = client.post("/api/v1/models/load", json={"model": "nobody/nothing"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"


def test_download_of_a_new_model_completes_and_lists_it() -> None:
    models = [FakeModel("ibm/granite-4-micro", downloaded=False), FakeModel(GEMMA, loaded=True)]
    with client_for(LMStudioFake(models)) as http:
        assert [m["key"] for m in http.get("/api/v1/models").json()["models"]] == [GEMMA]
        job = http.post("/api/v1/models/download", json={"model": "ibm/granite-4-micro"}).json()
        status = http.get(f"/api/v1/models/download/status/{job['job_id']}").json()
        again = http.post("/api/v1/models/download", json={"model": "ibm/granite-4-micro"}).json()
        missing = http.get("/api/v1/models/download/status/job_0000000000")
        listed = [m["key"] for m in http.get("/api/v1/models").json()["models"]]
    assert job["status"] == "downloading"
    assert status["status"] == "completed"
    assert status["downloaded_bytes"] == status["total_size_bytes"]
    assert again == {"status": "already_downloaded"}
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "job_not_found"
    assert "ibm/granite-4-micro" in listed


# /api/v1/chat


def test_chat_answers_in_the_recorded_shape(client: httpx.Client) -> None:
    stored = chat(client)
    unstored = chat(client, store=False)
    assert stored.status_code == unstored.status_code == 200
    body = stored.json()
    want = recorded("api-v1-chat-stored.json")
    assert body.keys() == want.keys()
    assert body["stats"].keys() == want["stats"].keys()
    assert body["output"] == [{"type": "message", "content": "Hi."}]
    assert body["model_instance_id"] == GEMMA
    assert RESP_ID.match(body["response_id"])
    assert body["stats"]["input_tokens"] == 15
    assert unstored.json().keys() == recorded("api-v1-chat-store-false.json").keys()


def test_chat_rejects_extra_and_missing_keys(client: httpx.Client) -> None:
    extra = chat(client, messages=[])
    missing = client.post("/api/v1/chat", json={"input": "Hello"})
    bad_type = chat(client, temperature="hot")
    assert extra.status_code == missing.status_code == bad_type.status_code == 400
    assert extra.json()["error"]["message"] == "Unrecognized key(s) in object: 'messages'"
    assert extra.json()["error"]["code"] == "unrecognized_keys"
    assert missing.json() == {
        "error": {
            "message": '"model" is required',
            "type": "invalid_request",
            "code": "missing_required_parameter",
            "param": "model",
        }
    }
    assert bad_type.json()["error"]["param"] == "temperature"


def test_chat_accepts_text_and_message_input_items(client: httpx.Client) -> None:
    items = [{"type": "text", "content": "Summarize"}, {"type": "message", "content": "this paragraph"}]
    response = chat(client, input=items)
    assert response.status_code == 200
    assert response.json()["output"][0]["content"] == "Understood: Summarize this paragraph."


def test_chat_with_an_unknown_model_is_404(client: httpx.Client) -> None:
    response = chat(client, model="nobody/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"


def test_image_input_needs_a_vision_model(client: httpx.Client, fake: LMStudioFake) -> None:
    image = [
        {"type": "text", "content": "Describe"},
        {"type": "image", "data_url": "data:image/png;base64,AAAA"},
    ]
    refused = chat(client, input=image)
    fake.load(GEMMA4)
    accepted = chat(client, model=GEMMA4, input=image, reasoning="off")
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request"
    assert accepted.status_code == 200
    assert accepted.json()["stats"]["input_tokens"] > 256


def test_reasoning_is_validated_against_the_model_options(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.load(GEMMA4)
    not_supported = chat(client, reasoning="on")
    wrong_option = chat(client, model=GEMMA4, reasoning="high")
    off = chat(client, model=GEMMA4, reasoning="off")
    on = chat(client, model=GEMMA4)
    assert not_supported.status_code == wrong_option.status_code == 400
    assert "Supported options: off." in not_supported.json()["error"]["message"]
    assert "Supported options: off, on." in wrong_option.json()["error"]["message"]
    assert [item["type"] for item in off.json()["output"]] == ["message"]
    assert [item["type"] for item in on.json()["output"]] == ["reasoning", "message"]
    stats = on.json()["stats"]
    assert stats["reasoning_output_tokens"] > 0
    assert stats["total_output_tokens"] == stats["reasoning_output_tokens"] + 1


def test_max_output_tokens_cuts_the_reply(client: httpx.Client) -> None:
    body = chat(client, input="Explain the theory of relativity in simple words", max_output_tokens=3).json()
    assert body["output"][0]["content"] == "Understood: Explain the "
    assert body["stats"]["total_output_tokens"] == 3


def test_jit_load_reports_load_time_and_loads_once(client: httpx.Client, fake: LMStudioFake) -> None:
    first = chat(client, model=QWEN).json()
    second = chat(client, model=QWEN).json()
    assert first["model_instance_id"] == QWEN
    assert first["stats"]["model_load_time_seconds"] > 0
    assert "model_load_time_seconds" not in second["stats"]
    assert fake.loaded_instances().count(QWEN) == 1


def test_jit_off_refuses_unloaded_models() -> None:
    with client_for(LMStudioFake(jit=False)) as http:
        response = chat(http, model=QWEN)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "No models loaded. Please load a model in the developer page or use the 'lms load' command."
    )


def test_jit_auto_evicts_the_previous_jit_model(client: httpx.Client, fake: LMStudioFake) -> None:
    chat(client, model=QWEN)
    chat(client, model="google/gemma-4-26b-a4b-qat", reasoning="off")
    assert QWEN not in fake.loaded_instances()
    assert "google/gemma-4-26b-a4b-qat" in fake.loaded_instances()
    assert GEMMA in fake.loaded_instances()


async def test_concurrent_jit_requests_share_one_load() -> None:
    fake = LMStudioFake(load_delay=0.2)
    with fake.serve() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            body = {"model": QWEN, "input": "Hello"}
            replies = await asyncio.gather(*(http.post("/api/v1/chat", json=body) for _ in range(3)))
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert fake.loaded_instances().count(QWEN) == 1
    assert fake.stats.loads == 1
    assert sum("model_load_time_seconds" in r.json()["stats"] for r in replies) == 1


def test_context_overflow_is_the_recorded_500(client: httpx.Client) -> None:
    response = chat(client, input="word " * 8000)
    assert response.status_code == 500
    assert response.json() == recorded("error-500-api-v1-chat-context-overflow.json")


def test_context_length_of_a_jit_load_applies(client: httpx.Client, fake: LMStudioFake) -> None:
    response = chat(client, model=QWEN, context_length=16, input="A sentence that is clearly too long for it")
    assert response.status_code == 500
    listed = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert listed[QWEN]["loaded_instances"][0]["config"]["context_length"] == 16


def test_malformed_json_is_a_400_native_envelope(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"


# stateful threads


def test_threads_continue_and_branch() -> None:
    seen: list[FakeTurn] = []

    def responder(turn: FakeTurn) -> str:
        seen.append(turn)
        return f"reply {len(seen)}"

    with client_for(LMStudioFake(responder=responder)) as http:
        first = chat(http, input="one", system_prompt="Be brief.").json()
        second = chat(http, input="two", previous_response_id=first["response_id"]).json()
        branch = chat(http, input="branch", previous_response_id=first["response_id"]).json()
        third = chat(http, input="three", previous_response_id=second["response_id"]).json()
    assert (
        len({first["response_id"], second["response_id"], branch["response_id"], third["response_id"]}) == 4
    )
    assert [(m.role, m.content) for m in seen[1].history] == [("user", "one"), ("assistant", "reply 1")]
    assert seen[2].history == seen[1].history
    assert [m.content for m in seen[3].history] == ["one", "reply 1", "two", "reply 2"]
    assert seen[3].system_prompt == "Be brief."
    assert third["stats"]["input_tokens"] > first["stats"]["input_tokens"]


def test_store_false_answers_cannot_be_continued(client: httpx.Client, fake: LMStudioFake) -> None:
    chat(client, store=False)
    assert fake.response_ids() == []


def test_unknown_previous_response_id_is_the_recorded_400(client: httpx.Client) -> None:
    response = chat(client, previous_response_id="resp_not_a_stored_reply")
    other = chat(client, previous_response_id="not-even-resp")
    assert response.status_code == other.status_code == 400
    assert response.json() == recorded("error-400-api-v1-chat-unknown-previous-response.json")
    assert "'not-even-resp'" in other.json()["error"]["message"]


def test_forgotten_responses_behave_as_expired(client: httpx.Client, fake: LMStudioFake) -> None:
    first = chat(client).json()
    fake.forget_responses()
    assert chat(client, previous_response_id=first["response_id"]).status_code == 400


def test_system_prompt_on_a_follow_up_reproduces_the_lmstudio_bug() -> None:
    for bug, status in ((True, 500), (False, 200)):
        with client_for(LMStudioFake(system_prompt_bug=bug)) as http:
            first = chat(http, system_prompt="Be brief.").json()
            follow = chat(http, system_prompt="Be brief.", previous_response_id=first["response_id"])
        assert follow.status_code == status
    with client_for(LMStudioFake()) as http:
        first = chat(http, system_prompt="Be brief.").json()
        body = chat(http, system_prompt="Again", previous_response_id=first["response_id"]).json()
    assert body["error"]["message"] == "Only user, assistant and tool roles are supported, got system"


# streaming


def test_stream_event_order_for_a_jit_loaded_reasoning_model(client: httpx.Client) -> None:
    response = chat(client, model=GEMMA4, input="What is the capital of France?", stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    order = [n for n in names(events) if not n or not n.endswith((".delta", ".progress"))]
    assert order == [
        "chat.start",
        "model_load.start",
        "model_load.end",
        "prompt_processing.start",
        "prompt_processing.end",
        "reasoning.start",
        "reasoning.end",
        "message.start",
        "message.end",
        "chat.end",
    ]
    assert all(data["type"] == name for name, data in events)
    result = events[-1][1]["result"]
    message = "".join(d["content"] for n, d in events if n == "message.delta")
    reasoning = "".join(d["content"] for n, d in events if n == "reasoning.delta")
    assert result["output"] == [
        {"type": "reasoning", "content": reasoning},
        {"type": "message", "content": message},
    ]
    assert (
        names(events).count("message.delta") + names(events).count("reasoning.delta")
        == (result["stats"]["total_output_tokens"])
    )
    assert "model_load_time_seconds" in result["stats"]
    assert RESP_ID.match(result["response_id"])


def test_stream_of_a_loaded_model_has_no_load_events(client: httpx.Client) -> None:
    events = sse_events(chat(client, stream=True).text)
    assert names(events) == [*CHAT_EVENTS, "message.start", "message.delta", "message.end", "chat.end"]
    assert events[0][1] == {"type": "chat.start", "model_instance_id": GEMMA}


def test_load_progress_events_when_loading_takes_time() -> None:
    with client_for(LMStudioFake(load_delay=0.1, token_delay=0.001)) as http:
        events = sse_events(chat(http, model=QWEN, input="one two three four", stream=True).text)
    progress = [d["progress"] for n, d in events if n == "model_load.progress"]
    assert progress == [0.25, 0.5, 0.75, 1.0]
    assert next(d for n, d in events if n == "model_load.end")["load_time_seconds"] >= 0.1


def test_errors_before_streaming_are_plain_http_errors(client: httpx.Client) -> None:
    response = chat(client, model="nobody/nothing", stream=True)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"


def test_errors_during_streaming_are_error_events(client: httpx.Client) -> None:
    response = chat(client, input="word " * 8000, stream=True)
    events = sse_events(response.text)
    assert response.status_code == 200
    assert names(events) == ["chat.start", "prompt_processing.start", "error", "chat.end"]
    assert events[2][1]["error"]["message"].startswith("The number of tokens to keep")
    assert events[3][1]["result"]["output"] == []


# auth


def test_auth_on_requires_the_token() -> None:
    with client_for(LMStudioFake(auth_token="sk-lm-abcdefgh:01234567890123456789")) as http:
        missing = http.get("/api/v1/models")
        wrong = http.get("/api/v1/models", headers={"Authorization": "Bearer lm-studio"})
        right = http.get(
            "/api/v1/models", headers={"Authorization": "Bearer sk-lm-abcdefgh:01234567890123456789"}
        )
        greeting = http.get("/lmstudio-greeting")
        messages = http.post(
            "/v1/messages",
            headers={"x-api-key": "sk-lm-abcdefgh:01234567890123456789"},
            json={"model": GEMMA, "max_tokens": 20, "messages": [{"role": "user", "content": "Hello"}]},
        )
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert missing.json()["error"]["message"].startswith("An LM Studio API token is required")
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert wrong.json()["error"]["message"] != missing.json()["error"]["message"]
    assert right.status_code == greeting.status_code == messages.status_code == 200


def test_auth_off_accepts_any_or_no_header(client: httpx.Client, fake: LMStudioFake) -> None:
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/api/v1/models", headers={"Authorization": "Bearer whatever"}).status_code == 200
    assert fake.requests[-1].headers["authorization"] == "Bearer <redacted>"


def test_requests_are_recorded_with_parsed_bodies(client: httpx.Client, fake: LMStudioFake) -> None:
    chat(client, input="Record me")
    client.get("/nowhere")
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/api/v1/chat"), ("GET", "/nowhere")]
    assert fake.requests[0].body == {"model": GEMMA, "input": "Record me"}


# the unknown-endpoint quirk


def test_unknown_endpoint_answers_200_with_an_error(client: httpx.Client) -> None:
    response = client.post("/chat/completions", json={"model": GEMMA})
    wrong_method = client.get("/api/v1/chat")
    assert response.status_code == wrong_method.status_code == 200
    assert response.json() == recorded("error-200-unknown-endpoint.json")
    assert wrong_method.json() == {"error": "Unexpected endpoint or method. (GET /api/v1/chat)"}


# faults


def test_fault_drop_without_a_response(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client)
    assert chat(client).status_code == 200


def test_fault_drop_mid_stream_releases_the_slot() -> None:
    fake = LMStudioFake(parallel=1)
    fake.fail_next("drop")
    received: list[str] = []
    body = {"model": GEMMA, "input": "tell a long story", "stream": True}
    with client_for(fake) as http:
        with pytest.raises(httpx.RemoteProtocolError), http.stream("POST", "/api/v1/chat", json=body) as r:
            received.extend(r.iter_lines())
        after = chat(http)
    assert any("message.delta" in line for line in received)
    assert not any("chat.end" in line for line in received)
    assert after.status_code == 200
    assert fake.stats.active == 0


def test_fault_status_answers_with_a_native_envelope(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("status:503", count=2)
    first, second, third = chat(client), chat(client), chat(client)
    assert first.status_code == second.status_code == 503
    assert third.status_code == 200
    assert first.json()["error"]["type"] == "internal_error"


def test_fault_path_filter_and_default_scope(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("status:500", path="/v1/")
    assert client.get("/api/v1/models").status_code == 200
    assert chat(client).status_code == 200
    assert client.get("/v1/models").status_code == 500
    fake.fail_next("status:500")
    assert client.get("/api/v1/models").status_code == 200
    assert chat(client).status_code == 500


def test_fault_slow_delays_the_answer(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("slow:30")
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/v1/chat", json={"model": GEMMA, "input": "Hello"}, timeout=0.3)
    fake.fail_next("slow:0.01")
    assert chat(client).json()["output"][0]["content"] == "Hi."


def test_fault_timeout_hangs_until_the_client_gives_up(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("timeout")
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/v1/chat", json={"model": GEMMA, "input": "Hello"}, timeout=0.3)
    assert chat(client).status_code == 200


def test_fault_timeout_ends_when_the_server_stops() -> None:
    fake = LMStudioFake()
    fake.fail_next("timeout")
    outcome: list[BaseException] = []
    with fake.serve() as server:

        def call() -> None:
            try:
                httpx.post(f"{server.url}/api/v1/chat", json={"model": GEMMA, "input": "Hello"}, timeout=60)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        while not fake.requests:
            thread.join(0.01)
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.RemoteProtocolError)


def test_fault_context_overflow_uses_each_family_body(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("context_overflow", count=3)
    native = chat(client)
    openai = client.post(
        "/v1/chat/completions", json={"model": GEMMA, "messages": [{"role": "user", "content": "Hi"}]}
    )
    responses = client.post("/v1/responses", json={"model": GEMMA, "input": "Hi"})
    assert native.status_code == responses.status_code == 500
    assert native.json() == recorded("error-500-api-v1-chat-context-overflow.json")
    assert openai.status_code == 400
    assert openai.json() == recorded("error-400-v1-chat-completions-context-overflow.json")
    assert responses.json()["error"]["type"] == "internal_error"


def test_fault_crash_mid_generation(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("crash", count=2)
    plain = chat(client, input="one two three four five six")
    events = sse_events(chat(client, input="one two three four five six", stream=True).text)
    assert plain.status_code == 500
    assert "crashed" in plain.json()["error"]["message"]
    assert names(events)[-2:] == ["error", "chat.end"]
    partial = events[-1][1]["result"]["output"][0]["content"]
    assert 0 < len(split_pieces(partial)) < 7
    assert fake.stats.active == 0


def test_fault_load_failure(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.fail_next("load_failure", count=2)
    explicit = client.post("/api/v1/models/load", json={"model": QWEN})
    events = sse_events(chat(client, model=QWEN, stream=True).text)
    assert explicit.status_code == 500
    assert explicit.json()["error"]["message"].startswith(f'Failed to load model "{QWEN}"')
    assert names(events) == ["chat.start", "model_load.start", "model_load.progress", "error", "chat.end"]
    assert QWEN not in fake.loaded_instances()
    assert chat(client, model=QWEN).status_code == 200


def test_unknown_fault_spec_is_rejected(fake: LMStudioFake) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail_next("explode")


# parallel slots


@pytest.mark.parametrize("parallel", [2, 4])
async def test_parallel_slots_bound_concurrency_and_queue_the_rest(parallel: int) -> None:
    fake = LMStudioFake(parallel=parallel, service_time=0.3)
    with fake.serve() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            body = {"model": GEMMA, "input": "Hello"}
            replies = await asyncio.gather(*(http.post("/api/v1/chat", json=body) for _ in range(4)))
    assert [r.status_code for r in replies] == [200] * 4
    assert fake.stats.max_concurrency == parallel
    assert fake.stats.generations == 4
    assert (fake.stats.max_queued > 0) == (parallel < 4)


def test_python_side_load_sets_parallel_and_identifier(fake: LMStudioFake, client: httpx.Client) -> None:
    instance_id = fake.load(QWEN, parallel=1, identifier="my-qwen")
    listed = {m["key"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert instance_id == "my-qwen"
    assert listed[QWEN]["loaded_instances"] == [
        {"id": "my-qwen", "config": {"context_length": 4096, "parallel": 1, "reasoning_budget_message": ""}}
    ]
    assert chat(client, model="my-qwen").json()["model_instance_id"] == "my-qwen"


# replies


def test_script_replies_come_first_then_the_responder(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.script("first scripted", "second scripted")
    replies = [chat(client).json()["output"][0]["content"] for _ in range(3)]
    assert replies == ["first scripted", "second scripted", "Hi."]


async def test_async_responder_sees_the_turn() -> None:
    turns: list[FakeTurn] = []

    async def responder(turn: FakeTurn) -> str:
        turns.append(turn)
        return "async reply"

    fake = LMStudioFake(responder=responder)
    with fake.serve() as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            body = {"model": GEMMA, "input": "Hello", "system_prompt": "Sys", "max_output_tokens": 9}
            reply = (await http.post("/api/v1/chat", json=body)).json()
    assert reply["output"][0]["content"] == "async reply"
    assert turns[0].system_prompt == "Sys"
    assert turns[0].max_output_tokens == 9
    assert turns[0].instance_id == GEMMA
    assert turns[0].route == "/api/v1/chat"


def test_default_responder_is_deterministic_and_input_dependent() -> None:
    def reply(text: str) -> str:
        result = default_responder(FakeTurn(model=GEMMA, instance_id=GEMMA, route="/", user_text=text))
        assert isinstance(result, str)
        return result

    assert reply("Hello") == "Hi."
    assert reply("hey there") == "Hi."
    assert reply("Reply with exactly: OK") == "OK"
    assert (
        reply("Summarize the following report about rain")
        == "Understood: Summarize the following report about rain."
    )
    assert reply("Summarize the following report") == reply("Summarize the following report")


def test_fill_schema_validates_against_simple_schemas() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 5},
            "score": {"type": "integer", "minimum": 5, "maximum": 9},
            "ratio": {"type": "number", "maximum": 1},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "mood": {"enum": ["happy", "sad"]},
            "when": {"type": "string", "format": "date"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "ref": {"$ref": "#/$defs/point"},
        },
        "required": ["title", "score", "ratio", "ok", "tags", "mood", "when", "maybe", "ref"],
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
    }
    value = fill_schema(schema, ["some", "words", "here", "more"])
    jsonschema.validate(value, schema)
    assert value["mood"] == "happy"


# OpenAI-compatible routes


def completions(client: httpx.Client, **body: Any) -> httpx.Response:
    default = {"model": GEMMA, "messages": [{"role": "user", "content": "Hello"}]}
    return client.post("/v1/chat/completions", json=default | body)


def test_chat_completions_recorded_shape_and_single_model_quirk(client: httpx.Client) -> None:
    response = completions(client, model="not-a-model")
    body = response.json()
    want = recorded("v1-chat-completions-unknown-model-answered.json")
    assert response.status_code == 200
    assert body.keys() == want.keys()
    assert body["choices"][0].keys() == want["choices"][0].keys()
    assert body["choices"][0]["message"] == want["choices"][0]["message"]
    assert body["usage"].keys() == want["usage"].keys()
    assert body["model"] == body["system_fingerprint"] == GEMMA
    assert body["id"].startswith("chatcmpl-")
    assert body["stats"] == {}


def test_chat_completions_unknown_model_with_two_models_loaded(
    client: httpx.Client, fake: LMStudioFake
) -> None:
    fake.load(QWEN)
    response = completions(client, model="not-a-model")
    error = response.json()["error"]
    want = recorded("error-400-v1-chat-completions-unknown-model.json")["error"]
    assert response.status_code == 400
    assert error.keys() == want.keys()
    assert (error["type"], error["param"], error["code"]) == (want["type"], want["param"], want["code"])
    assert error["message"].startswith(
        'Invalid model identifier "not-a-model". Please specify a valid downloaded model'
    )


def test_chat_completions_model_key_matches_case_insensitively(
    client: httpx.Client, fake: LMStudioFake
) -> None:
    fake.load(QWEN)
    assert completions(client, model="Google/Gemma-3-1B").json()["model"] == GEMMA


def test_chat_completions_json_schema(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "rating", "strict": True, "schema": schema}}
    body = completions(client, response_format=fmt).json()
    want = recorded("v1-chat-completions-json-schema.json")
    assert body.keys() == want.keys()
    jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)
    assert body["choices"][0]["finish_reason"] == "stop"


def test_chat_completions_cut_at_max_tokens(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"why": {"type": "string"}, "how": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": schema}}
    body = completions(client, response_format=fmt, max_tokens=2).json()
    want = recorded("v1-chat-completions-cut-at-max-tokens.json")
    assert body.keys() == want.keys()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(body["choices"][0]["message"]["content"])


def test_chat_completions_stop_and_system_messages() -> None:
    turns: list[FakeTurn] = []

    def responder(turn: FakeTurn) -> str:
        turns.append(turn)
        return "alpha beta STOP gamma"

    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    with client_for(LMStudioFake(responder=responder)) as http:
        body = completions(http, messages=messages, stop=["STOP"]).json()
    assert body["choices"][0]["message"]["content"] == "alpha beta "
    assert turns[0].system_prompt == "You are terse."
    assert turns[0].user_text == "second"
    assert [(m.role, m.content) for m in turns[0].history] == [("user", "first"), ("assistant", "ok")]


def test_chat_completions_stream_with_usage(client: httpx.Client) -> None:
    text = completions(
        client,
        messages=[{"role": "user", "content": "Tell me about owls"}],
        stream=True,
        stream_options={"include_usage": True},
    ).text
    events = sse_events(text)
    chunks = [d for _, d in events[:-1]]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert events[-1] == (None, "[DONE]")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert content == "Understood: Tell me about owls."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_chat_completions_reasoning_content(client: httpx.Client, fake: LMStudioFake) -> None:
    fake.unload(GEMMA)
    fake.load(GEMMA4)
    message = completions(client, model=GEMMA4).json()["choices"][0]["message"]
    assert message["reasoning_content"].startswith("The user wrote")
    assert message["content"] == "Hi."


def test_v1_models_lists_downloaded_with_jit_and_loaded_without() -> None:
    with client_for(LMStudioFake()) as http:
        jit_ids = [m["id"] for m in http.get("/v1/models").json()["data"]]
    with client_for(LMStudioFake(jit=False)) as http:
        body = http.get("/v1/models").json()
    assert len(jit_ids) == 5
    assert [m["id"] for m in body["data"]] == [GEMMA, "text-embedding-nomic-embed-text-v1.5"]
    assert body["object"] == "list"
    assert body["data"][0] == {"id": GEMMA, "object": "model", "owned_by": "organization_owner"}


def test_embeddings_are_deterministic_unit_vectors(client: httpx.Client) -> None:
    body = {"model": "text-embedding-nomic-embed-text-v1.5", "input": ["a", "b", "a"]}
    data = client.post("/v1/embeddings", json=body).json()["data"]
    assert data[0]["embedding"] == data[2]["embedding"] != data[1]["embedding"]
    assert abs(sum(v * v for v in data[0]["embedding"]) - 1) < 1e-3


# /v1/responses


def test_responses_recorded_shape_and_shared_thread_store(client: httpx.Client) -> None:
    native = chat(client, input="remember me").json()
    response = client.post(
        "/v1/responses", json={"model": GEMMA, "input": "Bye", "previous_response_id": native["response_id"]}
    )
    body = response.json()
    want = recorded("v1-responses-threaded.json")
    assert response.status_code == 200
    assert body.keys() == want.keys()
    assert body["output"][0].keys() == want["output"][0].keys()
    assert body["usage"].keys() == want["usage"].keys()
    assert body["previous_response_id"] == native["response_id"]
    assert RESP_ID.match(body["id"])
    follow = chat(client, input="and again", previous_response_id=body["id"])
    assert follow.status_code == 200


def test_responses_unknown_previous_id_is_the_recorded_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/responses", json={"model": GEMMA, "input": "Hi", "previous_response_id": "not_a_stored_reply"}
    )
    assert response.status_code == 400
    assert response.json() == recorded("error-400-v1-responses-unknown-previous-response.json")


def test_responses_store_false_still_has_an_id(client: httpx.Client, fake: LMStudioFake) -> None:
    body = client.post("/v1/responses", json={"model": GEMMA, "input": "Hi", "store": False}).json()
    assert RESP_ID.match(body["id"])
    assert fake.response_ids() == []


def test_responses_stream(client: httpx.Client) -> None:
    text = client.post(
        "/v1/responses", json={"model": GEMMA, "input": "Tell me about owls", "stream": True}
    ).text
    events = sse_events(text)
    kinds = names(events)
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert deltas == events[-1][1]["response"]["output"][0]["content"][0]["text"]
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))


# /v1/messages


def messages(client: httpx.Client, **body: Any) -> httpx.Response:
    default = {"model": GEMMA, "max_tokens": 50, "messages": [{"role": "user", "content": "Hello"}]}
    return client.post("/v1/messages", json=default | body)


def test_messages_anthropic_shape(client: httpx.Client) -> None:
    body = messages(client, system="Be kind.").json()
    assert body["type"] == "message"
    assert body["content"] == [{"type": "text", "text": "Hi."}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == 1
    assert messages(client, max_tokens=None).status_code == 400


def test_messages_stream_events(client: httpx.Client) -> None:
    events = sse_events(messages(client, stream=True).text)
    assert names(events) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "Hi."}
    assert events[4][1]["delta"]["stop_reason"] == "end_turn"


# packaging and command line


def test_importing_offload_testing_does_not_import_starlette() -> None:
    code = "import sys, offload.testing; print('starlette' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_command_line_serves_until_terminated() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "offload.testing.lmstudio_fake", "--port", "0", "--parallel", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        models = httpx.get(f"{match.group(1)}/api/v1/models", timeout=10).json()["models"]
        gemma = next(m for m in models if m["key"] == GEMMA)
        assert gemma["loaded_instances"][0]["config"]["parallel"] == 2
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
