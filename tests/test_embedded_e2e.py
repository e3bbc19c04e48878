"""Real inference end to end: the CLI with no LM Studio, and the LM Studio fake speaking model text.

These run SmolLM2-135M through llama.cpp (marked ``inference``): what is asserted is text a
model wrote, so the assertions are about shape and validity, not exact words.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import jsonschema
import pytest

from offload import AsyncLMStudio
from offload.testing import LMStudioFake, embedded_responder
from offload.types import ChatRequest, JsonSchema, StreamEnd, TextDelta
from tests.e2e import offload, write_config

pytestmark = pytest.mark.inference
PARAGRAPH = (Path(__file__).parent.parent / "examples" / "local-models.txt").read_text()


def down_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_ask_with_no_lmstudio_uses_the_embedded_engine_and_says_so_once() -> None:
    url = down_url()
    run = offload(
        "ask",
        "--max-output-tokens",
        "40",
        "--temperature",
        "0",
        "--json",
        f"Summarize in one sentence: {PARAGRAPH}",
        env={"LM_STUDIO_API_URL": url},
    )
    assert run.code == 0, run.err
    data = run.json()
    assert data["candidate"] == "embedded/auto"
    assert data["model"] == "smollm2-135m-instruct"
    assert data["content"].strip()
    assert data["stats"]["output_tokens"] > 0
    notices = [line for line in run.err.splitlines() if "embedded engine" in line]
    assert notices == [
        f"offload: LM Studio is not running at {url} — using the embedded engine "
        "(start LM Studio, or set LM_STUDIO_API_URL, to use your own models)"
    ]


def test_disabling_the_embedded_engine_in_config(offload_home: Path) -> None:
    write_config(offload_home, "{offload: {embedded: {enabled: false}}}")
    run = offload("ask", "hi", env={"LM_STUDIO_API_URL": down_url()})
    assert run.code == 3
    assert "not reachable" in run.err


def test_summarize_and_extract_on_the_embedded_engine() -> None:
    summary = offload(
        "summarize",
        "--provider",
        "embedded",
        "--length",
        "sentence",
        "--on-fail",
        "warn",
        "--json",
        input=PARAGRAPH,
    )
    assert summary.code == 0, summary.err
    data = summary.json()
    assert data["model"] == "embedded/smollm2-135m-instruct"
    assert data["local"] is True
    assert 0 < len(data["text"].split()) < len(PARAGRAPH.split())
    extracted = offload(
        "extract",
        "--provider",
        "embedded",
        "--fields",
        "name, age int",
        "--json",
        "Maria Lopez is 34 years old and lives in Lisbon.",
    )
    assert extracted.code == 0, extracted.err
    output = extracted.json()["output"]
    schema = {
        "type": "object",
        "properties": {"name": {"type": ["string", "null"]}, "age": {"type": ["integer", "null"]}},
        "required": ["name", "age"],
    }
    jsonschema.validate(output, schema)


def test_stream_on_the_embedded_engine() -> None:
    run = offload(
        "ask", "--provider", "embedded", "--stream", "--max-output-tokens", "30", "Name three colors."
    )
    assert run.code == 0, run.err
    assert run.out.strip()


async def test_lmstudio_fake_speaking_real_model_text(tmp_path: Path) -> None:
    fake = LMStudioFake(responder=embedded_responder(max_output_tokens=40))
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    with fake.serve() as server:
        async with AsyncLMStudio(server.url, state_dir=tmp_path) as lms:
            result = await lms.chat("Write one sentence about the sea.", model="google/gemma-3-1b")
            events = [e async for e in lms.stream_chat("Name a fruit.", model="google/gemma-3-1b")]
            request = ChatRequest.from_prompt(
                "Extract name and age: Ann is 31 years old.",
                model="google/gemma-3-1b",
                max_output_tokens=40,
                response_format=JsonSchema(schema),
            )
            structured = await lms.chat(request)
    assert result.content.strip()
    assert result.response_id
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert len(deltas) > 1
    assert "".join(deltas).strip() == end.result.content
    jsonschema.validate(json.loads(structured.content), schema)  # via /v1/chat/completions + grammar
    assert [r.path for r in fake.requests if r.method == "POST"][-1] == "/v1/chat/completions"
