"""Pure codec tests for the OpenAI wire protocols (Chat Completions and Responses), on plain dicts.

Recorded LM Studio bodies (``tests/fixtures/lmstudio-recorded``) must parse; error bodies must
map onto the right ``offload.errors`` class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload.errors import (
    AuthError,
    BadResponse,
    BillingError,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
    ModelNotLoaded,
    ProviderError,
    RateLimited,
    ResponseNotFound,
    ServerError,
)
from offload.protocols import openai_chat as chat
from offload.protocols import openai_responses as responses
from offload.protocols.errors import ErrorContext
from offload.types import ChatRequest, JsonSchema, Message, ReasoningDelta, TextDelta

RECORDED = Path(__file__).parent / "fixtures" / "lmstudio-recorded"
CTX = ErrorContext("openai", "https://api.openai.com/v1", "gpt-4o-mini")
IMAGE = "data:image/png;base64,iVBORw0KGgo="
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def conversation(**options: Any) -> ChatRequest:
    return ChatRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello."),
            Message("user", "What is this?", images=(IMAGE,)),
        ),
        **options,
    )


# --- chat completions: request ------------------------------------------------------------


def test_chat_body_carries_every_role_and_images_as_parts() -> None:
    body = chat.build_body(conversation(), model="gpt-4o", stream=False)
    assert body["model"] == "gpt-4o"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][0]["content"] == "Be brief."
    assert body["messages"][3]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
    ]
    assert "stream" not in body
    assert "stream_options" not in body
    assert not {"temperature", "top_p", "max_tokens", "reasoning_effort", "response_format"} & set(body)


def test_chat_body_options_and_streaming() -> None:
    request = conversation(temperature=0.2, top_p=0.9, max_output_tokens=64, reasoning="high")
    body = chat.build_body(request, model="m", stream=True)
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 64)
    assert body["reasoning_effort"] == "high"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_chat_body_uses_the_configured_max_tokens_field() -> None:
    body = chat.build_body(
        conversation(max_output_tokens=10), model="o3", stream=False, max_tokens_field="max_completion_tokens"
    )
    assert body["max_completion_tokens"] == 10
    assert "max_tokens" not in body


@pytest.mark.parametrize(
    ("level", "effort"), [("low", "low"), ("medium", "medium"), ("high", "high"), ("on", None), ("off", None)]
)
def test_reasoning_effort_only_for_named_levels(level: Any, effort: str | None) -> None:
    body = chat.build_body(conversation(reasoning=level), model="m", stream=False)
    assert body.get("reasoning_effort") == effort


def test_chat_body_json_schema_response_format() -> None:
    request = conversation(response_format=JsonSchema(SCHEMA, name="my score!"))
    body = chat.build_body(request, model="m", stream=False)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "my_score_", "schema": SCHEMA, "strict": True},
    }


def test_chat_body_needs_messages() -> None:
    with pytest.raises(InvalidRequest):
        chat.build_body(ChatRequest(messages=()), model="m", stream=False)


# --- chat completions: response ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "finish", "usage"),
    [
        ("v1-chat-completions-unknown-model-answered.json", "Hi.", "stop", (15, 3)),
        ("v1-chat-completions-json-schema.json", '{ "score": 3 }', "stop", (26, 9)),
        ("v1-chat-completions-cut-at-max-tokens.json", '{"why":', "length", (29, 4)),
    ],
)
def test_recorded_chat_completions_parse(
    name: str, content: str, finish: str, usage: tuple[int, int]
) -> None:
    result = chat.parse_response(recorded(name), provider="lmstudio")
    assert result.content == content
    assert result.finish_reason == finish
    assert (result.usage.input_tokens, result.usage.output_tokens) == usage
    assert result.model == "google/gemma-3-1b"
    assert result.provider == "lmstudio"
    assert result.reasoning == ""
    assert result.response_id is None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_read_from_either_field_and_kept_apart(field: str) -> None:
    data = {
        "model": "gpt-oss-20b",
        "choices": [{"message": {"content": "42", field: "think think"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 9,
            "completion_tokens_details": {"reasoning_tokens": 7},
        },
    }
    result = chat.parse_response(data, provider="vllm")
    assert (result.content, result.reasoning) == ("42", "think think")
    assert result.usage.reasoning_tokens == 7
    assert result.usage.output_tokens == 9


def test_refusal_becomes_the_content() -> None:
    data = {"choices": [{"message": {"content": None, "refusal": "I can't help."}, "finish_reason": "stop"}]}
    result = chat.parse_response(data, provider="openai", model="gpt-4o")
    assert (result.content, result.finish_reason, result.model) == ("I can't help.", "refusal", "gpt-4o")


def test_llama_server_timings_and_content_parts() -> None:
    data = {
        "choices": [
            {
                "message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                "finish_reason": "stop",
            }
        ],
        "timings": {"predicted_per_second": 31.5, "prompt_ms": 120.0},
    }
    result = chat.parse_response(data, provider="llama")
    assert result.content == "ab"
    assert result.timings.tokens_per_second == 31.5
    assert result.timings.time_to_first_token == pytest.approx(0.12)


@pytest.mark.parametrize(
    "data", [{"error": "Unexpected endpoint or method."}, "not json", {"choices": [{"message": "x"}]}]
)
def test_unreadable_chat_bodies_are_bad_responses(data: Any) -> None:
    with pytest.raises(BadResponse):
        chat.parse_response(data, provider="x")


# --- chat completions: streaming ------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def test_parse_chunk_gives_reasoning_then_text() -> None:
    events = chat.parse_chunk(chunk({"reasoning_content": "hmm", "content": "Hi"}))
    assert events == [ReasoningDelta("hmm"), TextDelta("Hi")]
    assert chat.parse_chunk(chunk({"role": "assistant", "content": ""})) == []
    assert chat.parse_chunk({"choices": [], "usage": {"prompt_tokens": 1}}) == []


def test_chat_stream_accumulates_text_usage_and_model() -> None:
    stream = chat.ChatStream(CTX, model="gpt-4o-mini")
    seen: list[Any] = []
    for data in [
        chunk({"role": "assistant", "content": ""}, usage=None),
        chunk({"reasoning": "let me see"}, usage=None),
        chunk({"content": "Hello"}, usage=None),
        chunk({"content": ", world"}, usage=None),
        chunk({}, "stop", usage=None),
        {
            "id": "chatcmpl-1",
            "choices": [],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 4,
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        },
    ]:
        seen += stream.feed("", data)
    result = stream.result()
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == result.content == "Hello, world"
    assert result.reasoning == "let me see"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.reasoning_tokens) == (
        11,
        4,
        2,
    )
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.finish_reason == "stop"


def test_chat_stream_without_finish_is_a_bad_response() -> None:
    stream = chat.ChatStream(CTX)
    stream.feed("", chunk({"content": "Hel"}))
    with pytest.raises(BadResponse, match="before the model finished"):
        stream.result()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}, RateLimited),
        ({"message": "The server had an error", "type": "server_error", "code": None}, ServerError),
        ({"code": 502, "message": "Provider returned error"}, ServerError),
        (
            {"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"},
            ContextOverflow,
        ),
        (
            {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            },
            BillingError,
        ),
    ],
)
def test_in_stream_error_chunks_raise_the_mapped_error(
    error: dict[str, Any], kind: type[ProviderError]
) -> None:
    stream = chat.ChatStream(CTX)
    stream.feed("", chunk({"content": "partial"}))
    with pytest.raises(kind) as caught:
        stream.feed("", {"error": error})
    assert type(caught.value) is kind
    assert caught.value.provider == "openai"


# --- models ---------------------------------------------------------------------------------


def test_models_list_reads_ids_and_known_extras() -> None:
    data = {
        "object": "list",
        "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "system"},
            {"id": "meta/llama-3", "name": "Llama 3", "context_length": 8192},
            {"id": "Qwen/Qwen3-8B", "max_model_len": 32768, "owned_by": "vllm"},
            {
                "id": "text-embedding-nomic-embed-text-v1.5",
                "object": "model",
                "owned_by": "organization_owner",
            },
            {"object": "model"},
        ],
    }
    models = chat.parse_models(data, provider="hosted")
    assert [m.key for m in models] == [
        "gpt-4o-mini",
        "meta/llama-3",
        "Qwen/Qwen3-8B",
        "text-embedding-nomic-embed-text-v1.5",
    ]
    assert models[0].publisher == "system"
    assert (models[1].display_name, models[1].max_context_length) == ("Llama 3", 8192)
    assert models[2].max_context_length == 32768
    assert [m.type for m in models] == ["llm", "llm", "llm", "embedding"]
    assert {m.provider for m in models} == {"hosted"}


def test_models_list_without_data_is_a_bad_response() -> None:
    with pytest.raises(BadResponse):
        chat.parse_models({"models": []}, provider="x")


# --- error mapping --------------------------------------------------------------------------


def err(
    message: str,
    type_: str | None = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, err("Incorrect API key provided: sk-***.", code="invalid_api_key"), AuthError),
        (403, err("Country, region, or territory not supported", "request_forbidden"), AuthError),
        (402, {"error": {"code": 402, "message": "Insufficient credits"}}, BillingError),
        (
            429,
            err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            BillingError,
        ),
        (429, err("Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"), RateLimited),
        (
            404,
            err("The model `gpt-5x` does not exist or you do not have access to it.", code="model_not_found"),
            ModelNotFound,
        ),
        (
            400,
            err(
                "This model's maximum context length is 128000 tokens.",
                code="context_length_exceeded",
                param="messages",
            ),
            ContextOverflow,
        ),
        (
            400,
            err(
                "Your input exceeds the context window of this model.",
                code="context_length_exceeded",
                param="input",
            ),
            ContextOverflow,
        ),
        (413, err("Request too large.", code="request_too_large"), ContextOverflow),
        (400, err("Invalid value: 'robot'.", code="invalid_value", param="messages[0].role"), InvalidRequest),
        (500, err("The server had an error while processing your request.", "server_error"), ServerError),
        (
            503,
            err("The engine is currently overloaded, please try again later.", "server_error"),
            ServerError,
        ),
        (400, recorded("error-400-v1-chat-completions-context-overflow.json"), ContextOverflow),
        (400, recorded("error-400-v1-chat-completions-unknown-model.json"), ModelNotFound),
        (400, recorded("error-400-v1-responses-unknown-previous-response.json"), ResponseNotFound),
        (400, {"error": "No models loaded. Please load a model in the developer page."}, ModelNotLoaded),
        (200, {"error": "Unexpected endpoint or method. (POST /v1/chat/completions)"}, BadResponse),
        (404, err("Invalid URL (POST /chat/completions)"), BadResponse),
        (404, {"detail": "Not Found"}, BadResponse),
        (404, "404 page not found", BadResponse),
    ],
)
def test_error_bodies_map_to_the_right_class(status: int, body: Any, kind: type[ProviderError]) -> None:
    exc = chat.classify_error(status, body, CTX)
    assert type(exc) is kind
    assert (exc.provider, exc.status) == ("openai", status)


def test_quota_is_billing_and_never_retried() -> None:
    exc = chat.classify_error(
        429,
        err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
        CTX,
        retry_after=3,
    )
    assert isinstance(exc, BillingError)
    assert not isinstance(exc, RateLimited)
    assert exc.retryable is False


def test_rate_limit_keeps_retry_after_and_invalid_request_does_not_fail_over() -> None:
    limited = chat.classify_error(
        429, err("Rate limit reached", "requests", "rate_limit_exceeded"), CTX, retry_after=2.5
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 2.5
    assert limited.retryable
    invalid = chat.classify_error(400, err("Invalid 'temperature'.", param="temperature"), CTX)
    assert isinstance(invalid, InvalidRequest)
    assert invalid.failover is False
    assert invalid.param == "temperature"


# --- responses: request ----------------------------------------------------------------------


def test_responses_body_moves_system_to_instructions() -> None:
    body = responses.build_body(conversation(), model="gpt-4o", stream=False)
    assert body["instructions"] == "Be brief."
    assert body["store"] is True
    assert body["input"][:2] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    assert body["input"][2] == {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": IMAGE, "detail": "auto"},
        ],
    }
    assert not {"stream", "reasoning", "text", "previous_response_id", "max_output_tokens"} & set(body)


def test_responses_body_options() -> None:
    request = ChatRequest.from_prompt(
        "Continue",
        previous_response_id="resp_1",
        store=False,
        reasoning="low",
        max_output_tokens=50,
        temperature=0.0,
        response_format=JsonSchema(SCHEMA, name="score", strict=False),
    )
    body = responses.build_body(request, model="gpt-5", stream=True)
    assert body["previous_response_id"] == "resp_1"
    assert body["store"] is False
    assert body["reasoning"] == {"effort": "low"}
    assert body["max_output_tokens"] == 50
    assert body["temperature"] == 0.0
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "score", "schema": SCHEMA, "strict": False}
    }
    assert body["stream"] is True
    assert "instructions" not in body


def test_responses_body_needs_a_turn() -> None:
    with pytest.raises(InvalidRequest):
        responses.build_body(ChatRequest(messages=(Message("system", "x"),)), model="m", stream=False)


# --- responses: response ----------------------------------------------------------------------


def test_recorded_threaded_response_parses() -> None:
    result = responses.parse_response(recorded("v1-responses-threaded.json"), provider="lmstudio")
    assert result.content == "Bye."
    assert result.response_id == "resp_4d7ae3b4f0916642f93754f943be102acc2d2d4f05e96c7c"
    assert result.model == "google/gemma-3-1b"
    assert result.finish_reason == "stop"
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.reasoning_tokens) == (
        15,
        2,
        0,
    )


def test_reasoning_items_feed_reasoning_only() -> None:
    data = {
        "id": "resp_9",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "step 1"}],
            },
            {"id": "rs_2", "type": "reasoning", "summary": [{"type": "summary_text", "text": "; summary"}]},
            {"id": "msg_1", "type": "message", "content": [{"type": "output_text", "text": "Ans"}]},
            {"id": "fc_1", "type": "function_call", "arguments": "{}"},
        ],
        "usage": {"input_tokens": 3, "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 25}},
    }
    result = responses.parse_response(data, provider="openai", model="gpt-5")
    assert (result.content, result.reasoning) == ("Ans", "step 1; summary")
    assert result.finish_reason == "length"
    assert result.usage.reasoning_tokens == 25
    assert result.model == "gpt-5"


# --- responses: streaming ----------------------------------------------------------------------


def rs_event(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


def completed(text: str = "Hi there") -> dict[str, Any]:
    return {
        "id": "resp_7",
        "model": "gpt-4o",
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}],
        "usage": {"input_tokens": 4, "output_tokens": 2},
    }


def test_responses_stream_deltas_then_completed() -> None:
    stream = responses.ResponsesStream(CTX, model="gpt-4o")
    seen: list[Any] = []
    for event, data in [
        rs_event("response.created", response={"id": "resp_7", "output": []}),
        rs_event("response.reasoning_text.delta", item_id="rs_1", delta="ponder"),
        rs_event("response.reasoning_text.done", item_id="rs_1", text="ponder"),
        rs_event("response.output_text.delta", item_id="msg_1", delta="Hi"),
        rs_event("response.output_text.delta", item_id="msg_1", delta=" there"),
        rs_event("response.completed", response=completed()),
    ]:
        seen += stream.feed(event, data)
    result = stream.result()
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == result.content == "Hi there"
    assert [e.text for e in seen if isinstance(e, ReasoningDelta)] == ["ponder"]
    assert result.reasoning == "ponder"
    assert result.response_id == "resp_7"
    assert result.usage.output_tokens == 2


def test_reasoning_sent_whole_in_done_is_surfaced_once() -> None:
    stream = responses.ResponsesStream(CTX)
    events = stream.feed(
        "", {"type": "response.reasoning_text.done", "item_id": "rs_1", "text": "all at once"}
    )
    assert events == [ReasoningDelta("all at once")]


def test_terse_completed_event_is_filled_from_deltas() -> None:
    stream = responses.ResponsesStream(CTX)
    stream.feed("", {"type": "response.output_text.delta", "delta": "streamed"})
    stream.feed(
        "", {"type": "response.completed", "response": {"id": "r", "status": "completed", "output": []}}
    )
    assert stream.result().content == "streamed"


@pytest.mark.parametrize(
    ("event", "data", "kind"),
    [
        (
            "error",
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None},
            RateLimited,
        ),
        (
            "error",
            {"type": "error", "code": "context_length_exceeded", "message": "too long"},
            ContextOverflow,
        ),
        (
            "response.failed",
            {
                "type": "response.failed",
                "response": {"status": "failed", "error": {"code": "server_error", "message": "boom"}},
            },
            ServerError,
        ),
    ],
)
def test_responses_stream_failures_raise(event: str, data: dict[str, Any], kind: type[ProviderError]) -> None:
    with pytest.raises(kind):
        responses.ResponsesStream(CTX).feed(event, data)


def test_responses_stream_without_completion_is_a_bad_response() -> None:
    stream = responses.ResponsesStream(CTX)
    stream.feed("", {"type": "response.output_text.delta", "delta": "cut"})
    with pytest.raises(BadResponse):
        stream.result()


def test_missing_endpoint_names_the_base_url_fix() -> None:
    exc = chat.classify_error(404, err("Invalid URL (POST /chat/completions)"), CTX)
    assert isinstance(exc, BadResponse)
    assert "/v1" in (exc.remedy or "")
