"""Pure codec tests for the Anthropic Messages protocol, on plain dicts in the documented shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offload.errors import (
    AuthError,
    BadResponse,
    BillingError,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ServerError,
)
from offload.protocols import anthropic_messages as wire
from offload.protocols.errors import ErrorContext
from offload.types import ChatRequest, JsonSchema, Message, ReasoningDelta, TextDelta

CTX = ErrorContext("anthropic", "https://api.anthropic.com", "claude-sonnet-4-6")
PNG = "iVBORw0KGgoAAAANSUhEUg=="
SCHEMA = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}


def request(**options: Any) -> ChatRequest:
    return ChatRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "Hi"),
            Message("assistant", "Hello."),
            Message(
                "user", "And this?", images=(f"data:image/png;base64,{PNG}", "https://example.com/cat.jpg")
            ),
        ),
        **options,
    )


# --- request ------------------------------------------------------------------------------------


def test_body_puts_system_apart_and_images_first() -> None:
    body = wire.build_body(request(), model="claude-sonnet-4-6", stream=False)
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == wire.DEFAULT_MAX_TOKENS == 4096
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0] == {"role": "user", "content": "Hi"}
    assert body["messages"][2]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "And this?"},
    ]
    assert not {"stream", "thinking", "tools", "tool_choice", "temperature", "top_p"} & set(body)


def test_body_sampling_options_and_stream() -> None:
    body = wire.build_body(request(temperature=0.3, top_p=0.8, max_output_tokens=100), model="m", stream=True)
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stream"]) == (0.3, 0.8, 100, True)


@pytest.mark.parametrize(
    ("level", "budget"), [("low", 1024), ("medium", 4096), ("high", 16384), ("on", 4096)]
)
def test_reasoning_turns_on_thinking_with_a_budget_on_top(level: Any, budget: int) -> None:
    body = wire.build_body(
        request(reasoning=level, max_output_tokens=500, temperature=0.2), model="m", stream=False
    )
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 500 + budget
    assert "temperature" not in body  # Anthropic rejects temperature != 1 with thinking


def test_reasoning_off_sends_no_thinking() -> None:
    assert "thinking" not in wire.build_body(request(reasoning="off"), model="m", stream=False)


def test_json_schema_becomes_a_forced_tool_and_drops_thinking() -> None:
    body = wire.build_body(
        request(response_format=JsonSchema(SCHEMA, name="my score"), reasoning="high"),
        model="m",
        stream=False,
    )
    assert body["tools"] == [
        {"name": "my_score", "description": body["tools"][0]["description"], "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "my_score"}
    assert "thinking" not in body
    assert body["max_tokens"] == 4096


def test_body_needs_a_turn() -> None:
    with pytest.raises(InvalidRequest):
        wire.build_body(ChatRequest(messages=(Message("system", "only"),)), model="m", stream=False)


# --- response -----------------------------------------------------------------------------------


def message(content: list[dict[str, Any]], stop: str | None = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 20, **usage},
    }


def test_text_and_thinking_are_kept_apart() -> None:
    data = message(
        [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
            {"type": "text", "text": "Paris"},
            {"type": "text", "text": "."},
        ],
        cache_read_input_tokens=5,
        cache_creation_input_tokens=1,
    )
    result = wire.parse_response(data, provider="anthropic")
    assert (result.content, result.reasoning) == ("Paris.", "Let me think.")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (16, 20)
    assert result.finish_reason == "stop"
    assert result.model == "claude-sonnet-4-6"
    assert result.response_id is None


def test_forced_tool_input_becomes_json_content() -> None:
    data = message(
        [{"type": "tool_use", "id": "toolu_1", "name": "output", "input": {"score": 3}}], stop="tool_use"
    )
    result = wire.parse_response(data, provider="anthropic", tool="output")
    assert json.loads(result.content) == {"score": 3}
    assert result.finish_reason == "stop"


def test_unforced_tool_use_is_not_content() -> None:
    data = message(
        [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}], stop="tool_use"
    )
    result = wire.parse_response(data, provider="anthropic", tool="output")
    assert result.content == ""
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "refusal"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_stop_reasons_map(stop: str, finish: str) -> None:
    assert (
        wire.parse_response(message([{"type": "text", "text": "x"}], stop=stop), provider="a").finish_reason
        == finish
    )


@pytest.mark.parametrize(
    "data", [{"type": "error", "error": {"type": "api_error"}}, "oops", {"content": "text"}]
)
def test_unreadable_messages_are_bad_responses(data: Any) -> None:
    with pytest.raises(BadResponse):
        wire.parse_response(data, provider="a")


# --- streaming ---------------------------------------------------------------------------------


def ev(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    return kind, {"type": kind, **fields}


def start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev("content_block_start", index=index, content_block=block)


def delta(index: int, **d: Any) -> tuple[str, dict[str, Any]]:
    return ev("content_block_delta", index=index, delta=d)


def run(stream: wire.MessagesStream, events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out: list[Any] = []
    for name, data in events:
        out += stream.feed(name, data)
    return out


HEAD = [
    ev("message_start", message={**message([], stop=None), "usage": {"input_tokens": 25, "output_tokens": 1}})
]
TAIL = [
    ev(
        "message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None}, usage={"output_tokens": 15}
    ),
    ev("message_stop"),
]


def test_documented_text_stream() -> None:
    stream = wire.MessagesStream(CTX)
    seen = run(
        stream,
        [
            *HEAD,
            start(0, {"type": "text", "text": ""}),
            ev("ping"),
            delta(0, type="text_delta", text="Hello"),
            delta(0, type="text_delta", text="!"),
            ev("content_block_stop", index=0),
            *TAIL,
        ],
    )
    result = stream.result()
    assert seen == [TextDelta("Hello"), TextDelta("!")]
    assert result.content == "Hello!"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (25, 15)
    assert result.finish_reason == "stop"
    assert result.model == "claude-sonnet-4-6"


def test_thinking_stream() -> None:
    stream = wire.MessagesStream(CTX)
    seen = run(
        stream,
        [
            *HEAD,
            start(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, type="thinking_delta", thinking="Step 1."),
            delta(0, type="signature_delta", signature="EqQB"),
            ev("content_block_stop", index=0),
            start(1, {"type": "text", "text": ""}),
            delta(1, type="text_delta", text="42"),
            ev("content_block_stop", index=1),
            *TAIL,
        ],
    )
    assert seen == [ReasoningDelta("Step 1."), TextDelta("42")]
    assert (stream.result().content, stream.result().reasoning) == ("42", "Step 1.")


def test_forced_tool_stream_deltas_join_to_the_content() -> None:
    stream = wire.MessagesStream(CTX, tool="output")
    seen = run(
        stream,
        [
            *HEAD,
            start(0, {"type": "tool_use", "id": "toolu_1", "name": "output", "input": {}}),
            delta(0, type="input_json_delta", partial_json=""),
            delta(0, type="input_json_delta", partial_json='{"score": '),
            delta(0, type="input_json_delta", partial_json="3}"),
            ev("content_block_stop", index=0),
            ev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9}),
            ev("message_stop"),
        ],
    )
    result = stream.result()
    assert "".join(e.text for e in seen) == result.content == '{"score": 3}'
    assert result.finish_reason == "stop"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"type": "overloaded_error", "message": "Overloaded"}, ServerError),
        ({"type": "api_error", "message": "Internal server error"}, ServerError),
        ({"type": "rate_limit_error", "message": "slow down"}, RateLimited),
        (
            {
                "type": "invalid_request_error",
                "message": "prompt is too long: 300000 tokens > 200000 maximum",
            },
            ContextOverflow,
        ),
    ],
)
def test_error_events_raise_the_mapped_error(error: dict[str, Any], kind: type[ProviderError]) -> None:
    stream = wire.MessagesStream(CTX)
    run(stream, [*HEAD, start(0, {"type": "text", "text": ""})])
    with pytest.raises(kind) as caught:
        stream.feed("error", {"type": "error", "error": error})
    assert type(caught.value) is kind


def test_overloaded_event_has_the_529_status() -> None:
    with pytest.raises(ServerError) as caught:
        wire.MessagesStream(CTX).feed(
            "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
    assert caught.value.status == 529
    assert caught.value.retryable


def test_stream_without_message_stop_is_a_bad_response() -> None:
    stream = wire.MessagesStream(CTX)
    run(stream, [*HEAD, start(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text="cut")])
    with pytest.raises(BadResponse):
        stream.result()


# --- models ---------------------------------------------------------------------------------


def test_models_page() -> None:
    data = {
        "data": [
            {
                "type": "model",
                "id": "claude-sonnet-4-6",
                "display_name": "Claude Sonnet 4.6",
                "created_at": "2026-01-01T00:00:00Z",
            },
            {
                "type": "model",
                "id": "claude-haiku-4-5",
                "display_name": "Claude Haiku 4.5",
                "max_input_tokens": 200000,
            },
        ],
        "has_more": True,
        "first_id": "claude-sonnet-4-6",
        "last_id": "claude-haiku-4-5",
    }
    models = wire.parse_models(data, provider="anthropic")
    assert [(m.key, m.display_name) for m in models] == [
        ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
        ("claude-haiku-4-5", "Claude Haiku 4.5"),
    ]
    assert models[1].max_context_length == 200000
    assert wire.next_page(data) == "claude-haiku-4-5"
    assert wire.next_page({**data, "has_more": False}) is None
    with pytest.raises(BadResponse):
        wire.parse_models({"models": []}, provider="anthropic")


# --- error mapping ----------------------------------------------------------------------------


def err(type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error, "request_id": "req_011"}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            400,
            err("invalid_request_error", "messages.0.role: Input should be 'user' or 'assistant'"),
            InvalidRequest,
        ),
        (
            400,
            err("invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"),
            ContextOverflow,
        ),
        (
            400,
            err(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000",
            ),
            ContextOverflow,
        ),
        (
            413,
            err("request_too_large", "Request exceeds the maximum allowed number of bytes."),
            ContextOverflow,
        ),
        (401, err("authentication_error", "invalid x-api-key"), AuthError),
        (
            403,
            err("permission_error", "Your API key does not have permission to use the specified resource."),
            AuthError,
        ),
        (402, err("billing_error", "Payment required"), BillingError),
        (
            400,
            err("invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
            BillingError,
        ),
        (429, err("rate_limit_error", "spend limit reached", "enforced_spend_limit_reached"), BillingError),
        (404, err("not_found_error", "model: claude-nope"), ModelNotFound),
        (
            429,
            err("rate_limit_error", "Number of requests has exceeded your per-minute rate limit"),
            RateLimited,
        ),
        (500, err("api_error", "Internal server error"), ServerError),
        (529, err("overloaded_error", "Overloaded"), ServerError),
        (404, err("not_found_error", "Not Found"), BadResponse),
    ],
)
def test_error_bodies_map_to_the_right_class(status: int, body: Any, kind: type[ProviderError]) -> None:
    exc = wire.classify_error(status, body, CTX, retry_after=4.0)
    assert type(exc) is kind
    assert (exc.provider, exc.status) == ("anthropic", status)


def test_rate_limit_keeps_retry_after_and_bad_request_does_not_fail_over() -> None:
    limited = wire.classify_error(429, err("rate_limit_error", "slow"), CTX, retry_after=4.0)
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 4.0
    bad = wire.classify_error(400, err("invalid_request_error", "max_tokens: Field required"), CTX)
    assert isinstance(bad, InvalidRequest)
    assert bad.failover is False
