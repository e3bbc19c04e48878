"""End to end over real loopback HTTP: our hosted-API providers against the fakes, and the fakes'
fidelity checked with the official ``openai`` and ``anthropic`` SDK clients.

Each fake runs once per module (real uvicorn on 127.0.0.1); every test starts from a reset fake.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import openai
import pytest

from offload.errors import (
    AuthError,
    BadResponse,
    BillingError,
    ConfigError,
    ContextOverflow,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    RateLimited,
    ResponseNotFound,
    ServerError,
    Timeout,
    Unreachable,
)
from offload.http import Timeouts
from offload.providers import anthropic as anthropic_provider
from offload.providers.anthropic import AnthropicProvider
from offload.providers.base import Provider
from offload.providers.openai_compat import OpenAIProvider
from offload.testing.anthropic_fake import AnthropicFake
from offload.testing.openai_fake import OpenAIFake
from offload.types import (
    ChatRequest,
    ChatResult,
    JsonSchema,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    TextDelta,
)
from tests.loopback import answering, serving

OPENAI_KEY = "sk-test-openai-0123456789"
ANTHROPIC_KEY = "sk-ant-test-0123456789"
CLAUDE = "claude-sonnet-4-6"
SCHEMA = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "label": {"type": "string", "enum": ["good", "bad"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    },
    "required": ["score", "label", "tags"],
    "additionalProperties": False,
}
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
APIS = ["openai-completions", "openai-responses"]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_server() -> Iterator[OpenAIFake]:
    with OpenAIFake(
        ("gpt-4o-mini", "gpt-4o", "tiny-ctx"), api_key=OPENAI_KEY, context_windows={"tiny-ctx": 40}
    ) as fake:
        yield fake


@pytest.fixture
def oai(openai_server: OpenAIFake) -> Iterator[OpenAIFake]:
    openai_server.reset()
    yield openai_server
    openai_server.reset()


@pytest.fixture(scope="module")
def anthropic_server() -> Iterator[AnthropicFake]:
    models = (CLAUDE, "claude-haiku-4-5", "claude-opus-4-5", "claude-tiny")
    with AnthropicFake(models, api_key=ANTHROPIC_KEY, context_windows={"claude-tiny": 30}) as fake:
        yield fake


@pytest.fixture
def ant(anthropic_server: AnthropicFake) -> Iterator[AnthropicFake]:
    anthropic_server.reset()
    yield anthropic_server
    anthropic_server.reset()


@pytest.fixture(params=APIS)
async def gpt(request: pytest.FixtureRequest, oai: OpenAIFake) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(oai.base_url, api_key=OPENAI_KEY, api=request.param)
    yield provider
    await provider.aclose()


@pytest.fixture(params=["", "/v1"])
async def claude(request: pytest.FixtureRequest, ant: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(ant.url + request.param, api_key=ANTHROPIC_KEY)
    yield provider
    await provider.aclose()


def ask(
    text: str = "What is the capital of France?", model: str = "gpt-4o-mini", **options: Any
) -> ChatRequest:
    return ChatRequest.from_prompt(text, system="Answer briefly.", model=model, **options)


async def collect(events: AsyncIterator[StreamEvent]) -> tuple[list[StreamEvent], ChatResult]:
    seen = [e async for e in events]
    assert isinstance(seen[-1], StreamEnd)
    assert sum(isinstance(e, StreamEnd) for e in seen) == 1
    return seen, seen[-1].result


async def drain(events: AsyncIterator[StreamEvent], into: list[StreamEvent]) -> None:
    async for event in events:
        into.append(event)


def joined(events: list[StreamEvent], kind: type[TextDelta | ReasoningDelta] = TextDelta) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


async def outcome(
    provider: OpenAIProvider | AnthropicProvider, request: ChatRequest, stream: bool
) -> ChatResult:
    if stream:
        return (await collect(provider.stream_chat(request)))[1]
    return await provider.chat(request)


# --- OpenAI provider against the fake ----------------------------------------------------------------


async def test_openai_chat_round_trip(gpt: OpenAIProvider, oai: OpenAIFake) -> None:
    result = await gpt.chat(ask())
    assert result.content == "This is a fake answer to: What is the capital of France?"
    assert result.model == "gpt-4o-mini"
    assert result.provider == "openai"
    assert result.finish_reason == "stop"
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    [sent] = oai.requests
    assert sent.path == ("/v1/chat/completions" if gpt.api == "openai-completions" else "/v1/responses")
    assert sent.headers["authorization"] == "***"
    assert OPENAI_KEY not in repr(oai.requests)
    assert sent.body["model"] == "gpt-4o-mini"
    assert (result.response_id or "").startswith("resp_") == (gpt.api == "openai-responses")


async def test_openai_stream_deltas_join_to_the_final_content(gpt: OpenAIProvider, oai: OpenAIFake) -> None:
    seen, result = await collect(gpt.stream_chat(ask("Tell me a short story about a lighthouse keeper")))
    assert sum(isinstance(e, TextDelta) for e in seen) > 3
    assert (
        joined(seen)
        == result.content
        == "This is a fake answer to: Tell me a short story about a lighthouse keeper"
    )
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    assert result.timings.total_seconds is not None
    body = oai.requests[-1].body
    assert body["stream"] is True
    if gpt.api == "openai-completions":
        assert body["stream_options"] == {"include_usage": True}


async def test_openai_scripted_replies_come_in_order(gpt: OpenAIProvider, oai: OpenAIFake) -> None:
    oai.script("first", "second")
    assert (await gpt.chat(ask())).content == "first"
    assert (await outcome(gpt, ask(), stream=True)).content == "second"
    assert (await gpt.chat(ask())).content.startswith("This is a fake answer")


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_json_schema_answer_is_valid(gpt: OpenAIProvider, stream: bool) -> None:
    result = await outcome(gpt, ask("Rate this", response_format=JsonSchema(SCHEMA, name="rating")), stream)
    jsonschema.validate(json.loads(result.content), SCHEMA)


async def test_openai_request_shapes_reach_the_server(gpt: OpenAIProvider, oai: OpenAIFake) -> None:
    request = ask("Describe", images=(PNG,), temperature=0.1, max_output_tokens=300, reasoning="low")
    await gpt.chat(request)
    body = oai.requests[-1].body
    assert body["temperature"] == 0.1
    if gpt.api == "openai-completions":
        assert body["max_tokens"] == 300
        assert body["reasoning_effort"] == "low"
        assert body["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": PNG}}
    else:
        assert body["max_output_tokens"] == 300
        assert body["reasoning"] == {"effort": "low"}
        assert body["instructions"] == "Answer briefly."
        assert body["input"][0]["content"][1]["type"] == "input_image"


async def test_openai_max_tokens_cut_is_a_length_finish(gpt: OpenAIProvider) -> None:
    result = await gpt.chat(ask(max_output_tokens=2))
    assert result.finish_reason == "length"
    assert result.content == "This is "


async def test_openai_models(gpt: OpenAIProvider) -> None:
    assert [m.key for m in await gpt.models()] == ["gpt-4o-mini", "gpt-4o", "tiny-ctx"]


OPENAI_FAULTS: list[tuple[int | str, type[ProviderError]]] = [
    (401, AuthError),
    (403, AuthError),
    (402, BillingError),
    ("insufficient_quota", BillingError),
    (404, ModelNotFound),
    ("context_length_exceeded", ContextOverflow),
    (413, ContextOverflow),
    (400, InvalidRequest),
    (429, RateLimited),
    (500, ServerError),
    (503, ServerError),
    ("drop", Unreachable),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "kind"), OPENAI_FAULTS)
async def test_openai_faults_map_to_error_classes(
    gpt: OpenAIProvider, oai: OpenAIFake, fault: int | str, kind: type[ProviderError], stream: bool
) -> None:
    oai.fail_next(fault, retry_after=7)
    with pytest.raises(kind) as caught:
        await outcome(gpt, ask(), stream)
    assert type(caught.value) is kind
    assert caught.value.provider == "openai"
    assert caught.value.address == oai.base_url
    if kind is RateLimited:
        assert caught.value.retry_after == 7  # type: ignore[attr-defined]
    assert len(oai.requests) == 1  # providers never retry
    assert (await gpt.chat(ask())).content  # the fault was used up


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("midstream:rate_limit", RateLimited),
        ("midstream:500", ServerError),
        ("midstream:context_length_exceeded", ContextOverflow),
    ],
)
async def test_openai_in_stream_errors_raise_after_some_text(
    gpt: OpenAIProvider, oai: OpenAIFake, fault: str, kind: type[ProviderError]
) -> None:
    oai.fail_next(fault)
    seen: list[StreamEvent] = []
    with pytest.raises(kind):
        await drain(gpt.stream_chat(ask()), seen)
    assert joined(seen)  # text had arrived before the error
    assert not any(isinstance(e, StreamEnd) for e in seen)


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_slow_server_times_out(oai: OpenAIFake, stream: bool) -> None:
    provider = OpenAIProvider(oai.base_url, api_key=OPENAI_KEY, timeout=Timeouts(0.3, 0.3))
    oai.fail_next("slow:2")
    try:
        with pytest.raises(Timeout):
            await outcome(provider, ask(), stream)
    finally:
        await provider.aclose()


@pytest.mark.parametrize("api", APIS)
async def test_openai_real_overflow_wrong_key_unknown_model(oai: OpenAIFake, api: str) -> None:
    good = OpenAIProvider(oai.base_url, api_key=OPENAI_KEY, api=api)
    bad = OpenAIProvider(oai.base_url, api_key="sk-wrong-key-000", api=api)
    anonymous = OpenAIProvider(oai.base_url, api=api)
    try:
        with pytest.raises(ContextOverflow):
            await good.chat(ask("word " * 200, model="tiny-ctx"))
        with pytest.raises(ModelNotFound):
            await good.chat(ask(model="gpt-9"))
        with pytest.raises(AuthError):
            await bad.chat(ask())
        with pytest.raises(AuthError):
            await anonymous.models()
        assert "authorization" not in oai.requests[-1].headers
    finally:
        for p in (good, bad, anonymous):
            await p.aclose()


async def test_openai_provider_refuses_before_contacting_the_server(
    gpt: OpenAIProvider, oai: OpenAIFake
) -> None:
    with pytest.raises(InvalidRequest):
        await gpt.chat(ChatRequest.from_prompt("no model chosen"))
    assert oai.requests == []


async def test_responses_threads_continue_and_unknown_ids_fail(oai: OpenAIFake) -> None:
    provider = OpenAIProvider(oai.base_url, api_key=OPENAI_KEY, api="openai-responses")
    try:
        first = await provider.chat(ask("Remember the number 7"))
        second = await provider.chat(ask("Which number?", previous_response_id=first.response_id))
        assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens - 1
        assert oai.requests[-1].body["previous_response_id"] == first.response_id
        with pytest.raises(ResponseNotFound):
            await provider.chat(ask("again", previous_response_id="resp_unknown"))
        unstored = await provider.chat(ask("forget me", store=False))
        with pytest.raises(ResponseNotFound):
            await provider.chat(ask("and?", previous_response_id=unstored.response_id))
    finally:
        await provider.aclose()


@pytest.mark.parametrize("api", APIS)
async def test_visible_reasoning_is_kept_apart(api: str) -> None:
    with OpenAIFake(reasoning_field="reasoning_content") as fake:
        provider = OpenAIProvider(fake.base_url, api=api)
        try:
            whole = await provider.chat(ask("Why is the sky blue?", reasoning="high"))
            seen, streamed = await collect(
                provider.stream_chat(ask("Why is the sky blue?", reasoning="high"))
            )
        finally:
            await provider.aclose()
    for result in (whole, streamed):
        assert result.reasoning.startswith("The user asks: Why is the sky blue?")
        assert result.reasoning not in result.content
        assert result.usage.reasoning_tokens > 0
    assert joined(seen, ReasoningDelta) == streamed.reasoning
    assert joined(seen) == streamed.content


async def test_wrong_base_urls_are_told_apart_from_unknown_models(
    oai: OpenAIFake, ant: AnthropicFake
) -> None:
    no_v1 = OpenAIProvider(oai.url, api_key=OPENAI_KEY)
    extra = AnthropicProvider(ant.url + "/api", api_key=ANTHROPIC_KEY)
    try:
        with pytest.raises(BadResponse) as caught:
            await no_v1.chat(ask())
        assert "/v1" in (caught.value.remedy or "")
        assert caught.value.status == 404
        with pytest.raises(BadResponse):
            await extra.chat(ask(model=CLAUDE))
    finally:
        await no_v1.aclose()
        await extra.aclose()


async def test_providers_meet_the_contract_and_know_where_they_are(oai: OpenAIFake) -> None:
    providers = [
        OpenAIProvider(oai.base_url),
        OpenAIProvider("https://api.openai.com/v1", api="openai-responses", name="gpt"),
        AnthropicProvider(),
        AnthropicProvider("http://10.0.0.5:1234/v1", name="lms-anthropic"),
    ]
    try:
        assert all(isinstance(p, Provider) for p in providers)
        assert [p.local for p in providers] == [True, False, False, True]
        assert [p.address for p in providers] == [
            oai.base_url,
            "https://api.openai.com/v1",
            "https://api.anthropic.com",
            "http://10.0.0.5:1234",
        ]
        assert OpenAIProvider("https://api.openai.com/v1", local=True).local is True
        with pytest.raises(ConfigError):
            OpenAIProvider(oai.base_url, api="anthropic-messages")
    finally:
        for p in providers:
            await p.aclose()


async def test_unreadable_answers_are_bad_responses_located_at_the_server() -> None:
    async with serving(answering(200, b"<html>captive portal</html>", "text/html")) as url:
        provider = OpenAIProvider(url + "/v1", name="portal")
        try:
            with pytest.raises(BadResponse) as caught:
                await provider.chat(ask())
        finally:
            await provider.aclose()
    assert (caught.value.provider, caught.value.address, caught.value.model) == (
        "portal",
        url + "/v1",
        "gpt-4o-mini",
    )


async def test_a_stream_answered_with_plain_json_still_ends_with_the_result() -> None:
    whole = {"choices": [{"message": {"content": "whole answer"}, "finish_reason": "stop"}], "model": "m"}
    async with serving(answering(200, json.dumps(whole).encode(), "application/json")) as url:
        provider = OpenAIProvider(url + "/v1")
        try:
            seen, result = await collect(provider.stream_chat(ask()))
        finally:
            await provider.aclose()
    assert seen[0] == TextDelta("whole answer")
    assert result.content == "whole answer"


# --- Anthropic provider against the fake ---------------------------------------------------------------


async def test_anthropic_chat_round_trip(claude: AnthropicProvider, ant: AnthropicFake) -> None:
    result = await claude.chat(ask(model=CLAUDE, temperature=0.5))
    assert result.content == "This is a fake answer to: What is the capital of France?"
    assert (result.model, result.provider, result.finish_reason) == (CLAUDE, "anthropic", "stop")
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    [sent] = ant.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "***"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["system"] == "Answer briefly."
    assert sent.body["max_tokens"] == 4096
    assert sent.body["temperature"] == 0.5
    assert claude.address == ant.url


async def test_anthropic_stream_deltas_join_to_the_final_content(claude: AnthropicProvider) -> None:
    seen, result = await collect(
        claude.stream_chat(ask("Tell me a short story about a lighthouse keeper", model=CLAUDE))
    )
    assert sum(isinstance(e, TextDelta) for e in seen) > 3
    assert joined(seen) == result.content
    assert result.content.startswith("This is a fake answer to: Tell me")
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_thinking(claude: AnthropicProvider, ant: AnthropicFake, stream: bool) -> None:
    result = await outcome(claude, ask(model=CLAUDE, reasoning="low", max_output_tokens=500), stream)
    assert result.reasoning.startswith("The user asks:")
    assert result.reasoning not in result.content
    assert result.content
    body = ant.requests[-1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 1524


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_structured_output_via_forced_tool(
    claude: AnthropicProvider, ant: AnthropicFake, stream: bool
) -> None:
    result = await outcome(
        claude, ask("Rate this", model=CLAUDE, response_format=JsonSchema(SCHEMA, name="rating")), stream
    )
    jsonschema.validate(json.loads(result.content), SCHEMA)
    assert result.finish_reason == "stop"
    assert ant.requests[-1].body["tool_choice"] == {"type": "tool", "name": "rating"}
    ant.script('{"score": 2, "label": "bad", "tags": ["x", "y"]}')
    scripted = await outcome(claude, ask("Rate", model=CLAUDE, response_format=JsonSchema(SCHEMA)), stream)
    assert json.loads(scripted.content) == {"score": 2, "label": "bad", "tags": ["x", "y"]}


async def test_anthropic_models_follow_pages(
    claude: AnthropicProvider, ant: AnthropicFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anthropic_provider, "MODEL_PAGE_SIZE", 3)
    models = await claude.models()
    assert [m.key for m in models] == [CLAUDE, "claude-haiku-4-5", "claude-opus-4-5", "claude-tiny"]
    assert models[0].display_name == "Claude Sonnet 4.6"
    assert [r.query.get("after_id") for r in ant.requests] == [None, "claude-opus-4-5"]


ANTHROPIC_FAULTS: list[tuple[int | str, type[ProviderError]]] = [
    (400, InvalidRequest),
    (401, AuthError),
    (402, BillingError),
    (403, AuthError),
    (404, ModelNotFound),
    (413, ContextOverflow),
    ("context_length_exceeded", ContextOverflow),
    (429, RateLimited),
    ("spend_limit", BillingError),
    (500, ServerError),
    (529, ServerError),
    ("drop", Unreachable),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "kind"), ANTHROPIC_FAULTS)
async def test_anthropic_faults_map_to_error_classes(
    claude: AnthropicProvider, ant: AnthropicFake, fault: int | str, kind: type[ProviderError], stream: bool
) -> None:
    ant.fail_next(fault, retry_after=9)
    with pytest.raises(kind) as caught:
        await outcome(claude, ask(model=CLAUDE), stream)
    assert type(caught.value) is kind
    assert caught.value.provider == "anthropic"
    if kind is RateLimited:
        assert caught.value.retry_after == 9  # type: ignore[attr-defined]
    assert len(ant.requests) == 1
    assert (await claude.chat(ask(model=CLAUDE))).content


@pytest.mark.parametrize(
    ("fault", "kind"), [("midstream:overloaded", ServerError), ("midstream:rate_limit", RateLimited)]
)
async def test_anthropic_error_events_raise_after_some_text(
    claude: AnthropicProvider, ant: AnthropicFake, fault: str, kind: type[ProviderError]
) -> None:
    ant.fail_next(fault)
    seen: list[StreamEvent] = []
    with pytest.raises(kind):
        await drain(claude.stream_chat(ask(model=CLAUDE)), seen)
    assert joined(seen)


async def test_anthropic_real_overflow_wrong_key_and_timeout(ant: AnthropicFake) -> None:
    good = AnthropicProvider(ant.url, api_key=ANTHROPIC_KEY, timeout=Timeouts(0.3, 0.3))
    bad = AnthropicProvider(ant.url, api_key="sk-ant-wrong")
    try:
        with pytest.raises(ContextOverflow):
            await good.chat(ask("word " * 100, model="claude-tiny"))
        with pytest.raises(ModelNotFound):
            await good.chat(ask(model="claude-nope"))
        with pytest.raises(AuthError):
            await bad.chat(ask(model=CLAUDE))
        ant.fail_next("slow:2")
        with pytest.raises(Timeout):
            await good.chat(ask(model=CLAUDE))
    finally:
        await good.aclose()
        await bad.aclose()


# --- fidelity: the official openai SDK against OpenAIFake -------------------------------------------


@pytest.fixture
def openai_sdk(oai: OpenAIFake) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=oai.base_url, api_key=OPENAI_KEY, max_retries=0)
    yield client
    client.close()


def test_sdk_chat_completion(openai_sdk: openai.OpenAI) -> None:
    completion = openai_sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
    )
    assert completion.choices[0].message.content == "This is a fake answer to: Hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    assert completion.model == "gpt-4o"


def test_sdk_chat_stream_with_usage(openai_sdk: openai.OpenAI) -> None:
    stream = openai_sdk.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Count to three please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "This is a fake answer to: Count to three please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_sdk_structured_output(openai_sdk: openai.OpenAI) -> None:
    completion = openai_sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Rate"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "rating", "schema": SCHEMA, "strict": True},
        },
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), SCHEMA)


def test_sdk_responses_create_and_stream(openai_sdk: openai.OpenAI) -> None:
    response = openai_sdk.responses.create(model="gpt-4o", input="Hello", instructions="Be brief.")
    assert response.output_text == "This is a fake answer to: Hello"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    follow = openai_sdk.responses.create(model="gpt-4o", input="And?", previous_response_id=response.id)
    assert follow.previous_response_id == response.id
    with openai_sdk.responses.stream(model="gpt-4o", input="Stream me a line") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "This is a fake answer to: Stream me a line"
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        ("insufficient_quota", openai.RateLimitError, "insufficient_quota"),
        ("context_length_exceeded", openai.BadRequestError, "context_length_exceeded"),
        (404, openai.NotFoundError, "model_not_found"),
        (500, openai.InternalServerError, None),
        (503, openai.InternalServerError, None),
    ],
)
def test_sdk_error_classes(
    openai_sdk: openai.OpenAI,
    oai: OpenAIFake,
    fault: int | str,
    error: type[openai.APIStatusError],
    code: str | None,
) -> None:
    oai.fail_next(fault)
    with pytest.raises(error) as caught:
        openai_sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == code
    assert isinstance(caught.value.body, dict)
    assert set(caught.value.body) == {
        "message",
        "type",
        "param",
        "code",
    }


def test_sdk_auth_connection_and_models(oai: OpenAIFake, openai_sdk: openai.OpenAI) -> None:
    wrong = openai.OpenAI(base_url=oai.base_url, api_key="sk-wrong-key-0000", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.models.list()
        assert caught.value.code == "invalid_api_key"
    finally:
        wrong.close()
    oai.fail_next("drop")
    with pytest.raises(openai.APIConnectionError):
        openai_sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert [m.id for m in openai_sdk.models.list()] == ["gpt-4o-mini", "gpt-4o", "tiny-ctx"]


def test_sdk_sees_in_stream_errors(openai_sdk: openai.OpenAI, oai: OpenAIFake) -> None:
    oai.fail_next("midstream:server_error")
    stream = openai_sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x y z"}], stream=True
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        list(stream)


# --- fidelity: the official anthropic SDK against AnthropicFake ----------------------------------------


@pytest.fixture
def anthropic_sdk(ant: AnthropicFake) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=ant.url, api_key=ANTHROPIC_KEY, max_retries=0)
    yield client
    client.close()


def test_anthropic_sdk_create(anthropic_sdk: anthropic.Anthropic) -> None:
    message = anthropic_sdk.messages.create(
        model=CLAUDE, max_tokens=256, system="Be brief.", messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "This is a fake answer to: Hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0


def test_anthropic_sdk_stream_with_thinking(anthropic_sdk: anthropic.Anthropic) -> None:
    with anthropic_sdk.messages.stream(
        model=CLAUDE,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think about the sea"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking.startswith("The user asks")  # type: ignore[union-attr]
    assert final.content[0].signature  # type: ignore[union-attr]
    assert text == final.content[1].text == "This is a fake answer to: Think about the sea"  # type: ignore[union-attr]


def test_anthropic_sdk_forced_tool(anthropic_sdk: anthropic.Anthropic) -> None:
    message = anthropic_sdk.messages.create(
        model=CLAUDE,
        max_tokens=256,
        tools=[{"name": "rating", "description": "Rate it", "input_schema": SCHEMA}],
        tool_choice={"type": "tool", "name": "rating"},
        messages=[{"role": "user", "content": "Rate"}],
    )
    [block] = message.content
    assert block.type == "tool_use"
    assert block.name == "rating"
    jsonschema.validate(block.input, SCHEMA)
    assert message.stop_reason == "tool_use"


def test_anthropic_sdk_rejects_thinking_with_forced_tool(anthropic_sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="Thinking may not be enabled"):
        anthropic_sdk.messages.create(
            model=CLAUDE,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 1024},
            tools=[{"name": "rating", "input_schema": SCHEMA}],
            tool_choice={"type": "tool", "name": "rating"},
            messages=[{"role": "user", "content": "Rate"}],
        )


@pytest.mark.parametrize(
    ("fault", "error", "kind"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
    ],
)
def test_anthropic_sdk_error_classes(
    anthropic_sdk: anthropic.Anthropic,
    ant: AnthropicFake,
    fault: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    ant.fail_next(fault)
    with pytest.raises(error) as caught:
        anthropic_sdk.messages.create(
            model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == fault
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert caught.value.request_id  # the request-id header


def test_anthropic_sdk_auth_models_and_stream_errors(
    ant: AnthropicFake, anthropic_sdk: anthropic.Anthropic
) -> None:
    wrong = anthropic.Anthropic(base_url=ant.url, api_key="sk-ant-wrong", max_retries=0)
    try:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            wrong.messages.create(model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "x"}])
        assert caught.value.body == {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": caught.value.body["request_id"],  # type: ignore[index]
        }
    finally:
        wrong.close()
    assert [m.id for m in anthropic_sdk.models.list()] == [
        CLAUDE,
        "claude-haiku-4-5",
        "claude-opus-4-5",
        "claude-tiny",
    ]
    ant.fail_next("midstream:overloaded")
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        anthropic_sdk.messages.stream(
            model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "a b c d"}]
        ) as stream,
    ):
        list(stream.text_stream)


def test_anthropic_fake_checks_the_version_header(ant: AnthropicFake) -> None:
    response = httpx.post(
        ant.url + "/v1/messages",
        headers={"x-api-key": ANTHROPIC_KEY},
        json={"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
