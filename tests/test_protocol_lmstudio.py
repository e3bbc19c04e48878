"""The native REST v1 codec against every recorded LM Studio body, with no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload.errors import (
    AuthError,
    BadResponse,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
    ModelNotLoaded,
    ResponseNotFound,
    ServerError,
)
from offload.protocols import lmstudio as wire
from offload.protocols.errors import ErrorContext, classify, error_in_ok_body, parse_envelope
from offload.types import ChatRequest, Message, Progress, ReasoningDelta, StreamEnd, TextDelta
from tests.conftest import RECORDED, recorded

CTX = ErrorContext("lmstudio", "http://127.0.0.1:1234", "google/gemma-3-1b")


def test_every_recorded_body_parses_as_json_and_has_a_reader() -> None:
    names = sorted(p.stem for p in Path(RECORDED).glob("*.json"))
    assert len(names) == 15
    for name in names:
        body = recorded(name)
        if name.startswith("error-"):
            assert parse_envelope(body).message
        elif name.startswith("api-v1-models") and name != "api-v1-models":
            assert "instance_id" in body
        elif name == "api-v1-models":
            assert wire.parse_models(body)
        elif name.startswith("api-v1-chat"):
            assert wire.parse_chat(body).content == "Hi."
        else:  # OpenAI-compatible bodies: read by offload.protocols.openai_* (their own tests)
            assert name.startswith("v1-")
            assert body["id"]


def test_model_list_reads_every_field() -> None:
    models = {m.key: m for m in wire.parse_models(recorded("api-v1-models"))}
    assert list(models) == [
        "google/gemma-4-e4b",
        "google/gemma-4-26b-a4b-qat",
        "qwen/qwen3-4b-2507",
        "google/gemma-3-1b",
        "text-embedding-nomic-embed-text-v1.5",
    ]
    e4b = models["google/gemma-4-e4b"]
    assert e4b.vision
    assert e4b.tool_use
    assert e4b.reasoning_options == ("off", "on")
    assert e4b.reasoning_default == "on"
    assert e4b.quantization == "4bit"
    assert e4b.bits_per_weight == 4
    assert e4b.size_bytes == 6861915950
    assert not e4b.loaded
    gemma = models["google/gemma-3-1b"]
    assert gemma.loaded
    assert gemma.loaded_instances[0].id == "google/gemma-3-1b"
    assert gemma.loaded_instances[0].context_length == 8192
    assert gemma.loaded_instances[0].parallel == 4
    assert gemma.loaded_instances[0].config["reasoning_budget_message"] == ""
    nomic = models["text-embedding-nomic-embed-text-v1.5"]
    assert nomic.type == "embedding"
    assert not nomic.is_llm
    assert nomic.architecture is None
    assert nomic.loaded_context_length == 2048


def test_load_and_unload_replies() -> None:
    load = wire.parse_load(recorded("api-v1-models-load"))
    assert load.instance_id == "google/gemma-3-1b"
    assert load.load_time_seconds == 7.882
    legacy = wire.parse_load({"model_instance_id": "x:2", "load_time_seconds": 1.0})
    assert legacy.instance_id == "x:2"
    with pytest.raises(BadResponse):
        wire.parse_load({"error": "Unexpected endpoint or method. (POST /api/v1/models/load)"})


def test_chat_reply_stored_and_not_stored() -> None:
    stored = wire.parse_chat(recorded("api-v1-chat-stored"))
    assert stored.response_id == "resp_61f4b36a50a69b19bc133d2d364774c1e4a569fa1bfab1e0"
    assert stored.usage.input_tokens == 15
    assert stored.usage.output_tokens == 3
    assert stored.timings.time_to_first_token == 0.223
    assert stored.instance_id == "google/gemma-3-1b"
    assert wire.parse_chat(recorded("api-v1-chat-store-false")).response_id is None


def test_reasoning_never_lands_in_content() -> None:
    body = {
        "model_instance_id": "m",
        "output": [
            {"type": "reasoning", "content": "Need to think"},
            {"type": "message", "content": "Hello"},
            {"type": "tool_call", "tool": "x", "arguments": {}, "output": "[]"},
            {"type": "message", "content": " world"},
        ],
        "stats": {"input_tokens": 3, "total_output_tokens": 9, "reasoning_output_tokens": 4},
    }
    result = wire.parse_chat(body)
    assert result.content == "Hello world"
    assert result.reasoning == "Need to think"
    assert result.usage.reasoning_tokens == 4


@pytest.mark.parametrize(
    ("name", "status", "kind"),
    [
        ("error-500-api-v1-chat-context-overflow", 500, ContextOverflow),
        ("error-400-v1-chat-completions-context-overflow", 400, ContextOverflow),
        ("error-400-api-v1-chat-unknown-previous-response", 400, ResponseNotFound),
        ("error-400-v1-responses-unknown-previous-response", 400, ResponseNotFound),
        ("error-400-v1-chat-completions-unknown-model", 400, ModelNotFound),
        ("error-200-unknown-endpoint", 200, BadResponse),
    ],
)
def test_recorded_errors_classify(name: str, status: int, kind: type[Exception]) -> None:
    err = classify(status, recorded(name), CTX)
    assert type(err) is kind
    assert err.provider == "lmstudio"
    assert err.status == status


def test_context_overflow_is_not_retried_and_fails_over() -> None:
    err = classify(500, recorded("error-500-api-v1-chat-context-overflow"), CTX)
    assert not err.retryable
    assert err.failover


def test_other_error_shapes() -> None:
    auth = {
        "error": {
            "type": "invalid_request",
            "code": "invalid_api_key",
            "message": "An LM Studio API token is required to make requests to this server",
        }
    }
    assert isinstance(classify(401, auth, CTX), AuthError)
    assert isinstance(classify(400, auth, CTX), AuthError)
    no_models = {
        "error": "No models loaded. Please load a model in the developer page or use the 'lms load' command."
    }
    assert isinstance(classify(400, no_models, CTX), ModelNotLoaded)
    extra = {
        "error": {
            "message": "Unrecognized key(s) in object: 'ttl'",
            "type": "invalid_request",
            "code": "unrecognized_keys",
            "param": None,
        }
    }
    bad = classify(400, extra, CTX)
    assert isinstance(bad, InvalidRequest)
    assert not bad.failover
    assert isinstance(classify(503, "Service Unavailable", CTX), ServerError)
    assert isinstance(
        classify(404, {"error": {"message": "x", "type": "model_not_found"}}, CTX), ModelNotFound
    )


def test_200_with_error_quirk_detected() -> None:
    assert error_in_ok_body(recorded("error-200-unknown-endpoint"), "models")
    assert not error_in_ok_body(recorded("api-v1-models"), "models")


def test_chat_body_sends_only_documented_keys() -> None:
    req = ChatRequest.from_prompt("hi", system="be brief", temperature=0.2, max_output_tokens=50)
    body = wire.chat_body(req, model="m", stream=False)
    assert body == {
        "model": "m",
        "input": "hi",
        "system_prompt": "be brief",
        "temperature": 0.2,
        "max_output_tokens": 50,
    }
    req = ChatRequest.from_prompt("again", system="be brief", previous_response_id="resp_1", store=False)
    body = wire.chat_body(req, model="m", stream=True, send_system=False)
    assert body == {
        "model": "m",
        "input": "again",
        "previous_response_id": "resp_1",
        "store": False,
        "stream": True,
    }


def test_chat_body_images_and_unsupported_requests() -> None:
    req = ChatRequest.from_prompt("describe", images=("data:image/png;base64,AAAA",))
    body = wire.chat_body(req, model="vl", stream=False)
    assert body["input"] == [
        {"type": "text", "content": "describe"},
        {"type": "image", "data_url": "data:image/png;base64,AAAA"},
    ]
    history = ChatRequest(messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")))
    with pytest.raises(InvalidRequest, match="assistant turns"):
        wire.chat_body(history, model="m", stream=False)
    assert wire.supports(history) is not None


def test_stream_events_map_to_core_events() -> None:
    assert wire.parse_event("", {"type": "message.delta", "content": "He"}, CTX) == TextDelta("He")
    assert wire.parse_event("", {"type": "reasoning.delta", "content": "x"}, CTX) == ReasoningDelta("x")
    prog = wire.parse_event("model_load.progress", {"type": "model_load.progress", "progress": 0.5}, CTX)
    assert prog == Progress("model_load", 0.5)
    done = wire.parse_event("", {"type": "prompt_processing.end"}, CTX)
    assert done == Progress("prompt_processing", 1.0, done=True)
    assert wire.parse_event("", {"type": "chat.start", "model_instance_id": "m"}, CTX) is None
    assert wire.parse_event("", {"type": "some.future.event"}, CTX) is None
    end = wire.parse_event("", {"type": "chat.end", "result": recorded("api-v1-chat-stored")}, CTX)
    assert isinstance(end, StreamEnd)
    assert end.result.content == "Hi."
    with pytest.raises(ContextOverflow):
        wire.parse_event(
            "error",
            {"type": "error", "error": recorded("error-500-api-v1-chat-context-overflow")["error"]},
            CTX,
        )
