"""``offload serve`` driven by the official ``anthropic`` and ``openai`` SDKs over loopback HTTP.

Behind the gateway: the LM Studio fake (local) and the Anthropic and OpenAI fakes (hosted),
which record every request they get.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.gateway_stack import ANTHROPIC_KEY, OPENAI_KEY, Stack, stack

LOCAL_PATHS = ("/api/v1/chat", "/v1/chat/completions")


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path) as s:
        yield s


def local_calls(s: Stack) -> int:
    return sum(1 for r in s.lmstudio.requests if r.path in LOCAL_PATHS)


def claude(s: Stack, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=s.url, api_key=ANTHROPIC_KEY, max_retries=0, **kw)  # type: ignore[arg-type]


def gpt(s: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{s.url}/v1", api_key=OPENAI_KEY, max_retries=0)


# --- Anthropic SDK ------------------------------------------------------------------------------


def test_a_haiku_request_is_answered_by_the_local_model(gw: Stack) -> None:
    raw = claude(gw).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=1000,
        messages=[{"role": "user", "content": "Title: fix the parser"}],
    )
    message = raw.parse()
    assert raw.headers["x-offload-route"] == "background/local"
    assert "fix the parser" in message.content[0].text
    assert local_calls(gw) == 1
    assert gw.anthropic.calls("/v1/messages") == []


def test_a_sonnet_request_passes_through_to_anthropic(gw: Stack) -> None:
    raw = claude(gw).messages.with_raw_response.create(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    )
    assert raw.headers["x-offload-route"] == "default/relay"
    assert raw.parse().content[0].text == "This is a fake answer to: hello there"
    assert local_calls(gw) == 0


def test_local_streaming_with_the_anthropic_sdk(gw: Stack) -> None:
    with claude(gw).messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=[{"role": "user", "content": "stream a title"}]
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert "stream a title" in text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_relayed_streaming_with_the_anthropic_sdk(gw: Stack) -> None:
    with claude(gw).messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, messages=[{"role": "user", "content": "relay me"}]
    ) as stream:
        text = stream.get_final_text()
    assert text == "This is a fake answer to: relay me"
    assert gw.anthropic.calls("/v1/messages")[0].body["stream"] is True


def test_a_tool_call_round_trip_through_the_relay(gw: Stack) -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    client = claude(gw)
    first = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    use = next(b for b in first.content if b.type == "tool_use")
    second = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        tools=[tool],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
    )
    assert first.stop_reason == "tool_use"
    assert isinstance(use.input, dict)
    assert second.content[0].type == "text"
    assert gw.anthropic.calls("/v1/messages")[1].body["messages"][2]["content"][0]["tool_use_id"] == use.id


def test_sdk_error_classes(gw: Stack) -> None:
    client = claude(gw)
    with pytest.raises(anthropic.NotFoundError):
        client.get("/v1/nowhere", cast_to=object)
    with pytest.raises(anthropic.BadRequestError, match="messages"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages="nope")  # type: ignore[arg-type]
    gw.anthropic.fail_next(429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.response.headers["retry-after"] == "7"
    gw.anthropic.fail_next(529)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client.messages.create(
            model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert overloaded.value.status_code == 529


def test_count_tokens_is_answered_locally_for_background_and_relayed_otherwise(gw: Stack) -> None:
    client = claude(gw)
    messages = [{"role": "user", "content": "count these words please"}]
    local = client.messages.count_tokens(model="claude-haiku-4-5", messages=messages)  # type: ignore[arg-type]
    hosted = client.messages.count_tokens(model="claude-sonnet-4-6", messages=messages)  # type: ignore[arg-type]
    assert local.input_tokens > 0
    assert hosted.input_tokens > 0
    assert len(gw.anthropic.calls("/v1/messages/count_tokens")) == 1


# --- OpenAI SDK ---------------------------------------------------------------------------------


def test_openai_chat_to_a_local_model_whole_and_streamed(gw: Stack) -> None:
    client = gpt(gw)
    whole = client.chat.completions.create(
        model="gpt-local",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "name the parser bug"},
        ],
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-local",
            messages=[{"role": "user", "content": "count to three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "parser bug" in (whole.choices[0].message.content or "")
    assert whole.usage is not None
    assert "count to three" in text
    assert chunks[-1].usage is not None
    assert gw.openai.requests == []


def test_openai_chat_passes_through_to_openai(gw: Stack) -> None:
    raw = gpt(gw).chat.completions.with_raw_response.create(
        model="gpt-5", messages=[{"role": "user", "content": "relay"}]
    )
    assert raw.headers["x-offload-route"] == "default/relay"
    assert "relay" in (raw.parse().choices[0].message.content or "")
    assert len(gw.openai.calls("/v1/chat/completions")) == 1


def test_responses_api_local_and_relayed(gw: Stack) -> None:
    client = gpt(gw)
    local = client.responses.create(model="gpt-local", input="summarize this", instructions="be brief")
    with client.responses.stream(model="gpt-local", input="stream please") as stream:
        streamed = stream.get_final_response()
    relayed = client.responses.create(model="gpt-5", input="hosted please")
    assert "summarize this" in local.output_text
    assert "stream please" in streamed.output_text
    assert streamed.usage is not None
    assert "hosted please" in relayed.output_text
    assert len(gw.openai.calls("/v1/responses")) == 1


def test_openai_sdk_error_classes(gw: Stack) -> None:
    client = gpt(gw)
    with pytest.raises(openai.BadRequestError, match="model"):
        client.chat.completions.create(model="", messages=[{"role": "user", "content": "x"}])
    gw.openai.fail_next("rate_limit")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])


# --- plain endpoints ----------------------------------------------------------------------------


def test_health_models_telemetry_and_metrics(gw: Stack) -> None:
    claude(gw).messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "x"}]
    )
    with httpx.Client(base_url=gw.url) as http:
        health = http.get("/health")
        models = http.get("/v1/models").json()
        telemetry = http.post("/api/event_logging/batch?x=1", content=b"not even json")
        metrics = http.get("/metrics").text
    sonnet = next(m for m in models["data"] if m["id"] == "claude-sonnet-4-6")
    assert health.status_code == 200
    assert sonnet["context_window"] == 200_000
    assert telemetry.status_code == 200
    assert (
        'offload_gateway_requests_total{route="local",protocol="anthropic",scenario="background"' in metrics
    )
    assert "offload_gateway_avoided_usd_total" in metrics
    assert "access-control-allow-origin" not in health.headers


def test_anthropic_model_list_shape(gw: Stack) -> None:
    page = claude(gw).models.list()
    assert "claude-haiku-4-5" in [m.id for m in page.data]


def test_every_request_is_one_ledger_row_priced_at_the_model_asked_for(gw: Stack) -> None:
    client = claude(gw)
    client.messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "a b c"}]
    )
    client.messages.create(
        model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "d e"}]
    )
    local, hosted = gw.rows(2)
    assert local["task"] == "gateway/background"
    assert local["client"] == "anthropic-sdk"
    assert local["scenario"] == "background"
    assert local["local"] == 1
    assert local["baseline"] == "anthropic/claude-haiku-4-5"
    assert local["avoided_nusd"] == local["input_tokens"] * 1000 + local["output_tokens"] * 5000
    assert hosted["task"] == "gateway/default"
    assert hosted["cost_nusd"] == hosted["input_tokens"] * 3000 + hosted["output_tokens"] * 15000
    assert hosted["output_tokens"] > 0


def test_the_body_limit_gives_413(tmp_path: Path) -> None:
    with stack(tmp_path, gateway={"bodyLimitMb": 1}) as s:
        big = json.dumps(
            {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [], "pad": "x" * 2_000_000}
        )
        with httpx.Client(base_url=s.url) as http:
            response = http.post("/v1/messages", content=big, headers={"anthropic-version": "2023-06-01"})
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "request_too_large"
        assert s.anthropic.requests == []


def test_stats_show_gateway_traffic_by_client(gw: Stack) -> None:
    from offload.cli.stats import stats_text
    from offload.ledger import Ledger
    from offload.ledger.html import render_html

    claude(gw).messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "a"}]
    )
    gpt(gw).chat.completions.create(model="gpt-local", messages=[{"role": "user", "content": "b"}])
    gw.rows(2)
    with Ledger.open_readonly(gw.ledger_path) as reader:
        summary = reader.summary()
    text = stats_text(summary)
    page = render_html(summary)
    assert 'id="gateway-clients"' in page
    assert sorted(b.key or "" for b in summary.by_client) == ["anthropic-sdk", "openai-sdk"]
    assert "Gateway by client" in text
    assert "gateway/background" in text
