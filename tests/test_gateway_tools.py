"""Tool calls through translation to a local model, in each client protocol, with the official SDKs.

The LM Studio fake answers a forced ``tool_choice`` with a schema-valid call on its OpenAI route
(streamed as pieces: ``index`` and ``id`` first, then argument fragments).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway_stack import ANTHROPIC_KEY, OPENAI_KEY, Stack, stack

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path) as s:
        yield s


def local_chats(s: Stack) -> list[Any]:
    return [r for r in s.lmstudio.requests if r.path == "/v1/chat/completions"]


def test_anthropic_tool_round_trip_on_the_local_model(gw: Stack) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=ANTHROPIC_KEY, max_retries=0)
    tool = {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER}
    first = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Paris"}],
    )
    use = next(b for b in first.content if b.type == "tool_use")
    second = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        tools=[tool],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "weather in Paris"},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},  # type: ignore[misc]
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
        ],
    )
    sent = local_chats(gw)[1].body["messages"]
    assert first.stop_reason == "tool_use"
    assert use.name == "get_weather"
    assert isinstance(use.input, dict)
    assert isinstance(use.input["city"], str)
    assert sent[1]["tool_calls"][0]["id"] == use.id
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_call_id": use.id}
    assert second.content[0].type == "text"
    assert gw.anthropic.requests == []


def test_anthropic_streamed_tool_arguments_arrive_whole(gw: Stack) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=ANTHROPIC_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=300,
        tools=[{"name": "get_weather", "input_schema": WEATHER}],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather in Oslo"}],
    ) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use"
    assert isinstance(use.input, dict)
    assert "city" in use.input


def test_openai_chat_streamed_tool_call_carries_index_and_id(gw: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=OPENAI_KEY, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-local",
            messages=[{"role": "user", "content": "weather in Rome"}],
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
    )
    pieces = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first = pieces[0][0]
    arguments = "".join(p[0].function.arguments or "" for p in pieces if p[0].function)
    assert first.index == 0
    assert first.id
    assert first.function is not None
    assert first.function.name == "get_weather"
    assert "city" in json.loads(arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_openai_chat_whole_tool_call(gw: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=OPENAI_KEY, max_retries=0)
    done = client.chat.completions.create(
        model="gpt-local",
        messages=[{"role": "user", "content": "weather in Rome"}],
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}],
        tool_choice="required",
    )
    call = (done.choices[0].message.tool_calls or [])[0]
    assert done.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]


def test_responses_function_call_with_the_openai_sdk(gw: Stack) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=OPENAI_KEY, max_retries=0)
    response = client.responses.create(
        model="gpt-local",
        input="weather in Lima",
        tools=[{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    call = next(item for item in response.output if item.type == "function_call")
    assert call.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.arguments)  # type: ignore[union-attr]


def test_codex_custom_tool_goes_out_as_a_function_and_comes_back_custom(gw: Stack) -> None:
    body = {
        "model": "gpt-local",
        "instructions": "You are Codex.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix it"}]}],
        "tools": [
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            }
        ],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
        "stream": True,
    }
    with httpx.Client(base_url=gw.url, timeout=60) as http:
        text = http.post("/v1/responses", json=body, headers={"authorization": "Bearer x"}).text
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    done = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    sent_tool = local_chats(gw)[0].body["tools"][0]
    assert sent_tool["type"] == "function"
    assert sent_tool["function"]["name"] == "apply_patch"
    assert done["type"] == "custom_tool_call"
    assert isinstance(done["input"], str)
    assert events[-1]["type"] == "response.completed"
