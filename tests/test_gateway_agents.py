"""Requests shaped like Claude Code's and Codex's (see shared/reference/agent-clients.md) through the gateway.

Background work is served locally; main-loop work reaches the hosted fake with the very bytes
and ``anthropic-*`` headers the client sent. Also: mid-stream failures, local-only, fallback,
thinking blocks Anthropic did not sign, and the gateway key.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from offload.gateway import running
from offload.testing import AnthropicFake, LMStudioFake
from tests.gateway_stack import ANTHROPIC_KEY, CLAUDE, OPENAI_KEY, Stack, gateway_config, stack

BETAS = "claude-code-20250219,adaptive-thinking-2026-01-28,context-management-2025-06-27,effort-2025-11-24"
ATTRIBUTION = "x-anthropic-billing-header: cc_version=2.1.150.a1b; cc_entrypoint=cli; cch=7f3e2;"
SESSION = "user_5d41402abc4b2a76_account_0f8fad5b_session_9b2c6c1e-0000-4a4a-8f8f-1234567890ab"


def claude_code_body(model: str, *, stream: bool = True, tools: int = 32) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "metadata": {"user_id": SESSION},
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "system": [
            {"type": "text", "text": ATTRIBUTION},
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": [
            {
                "name": f"Tool{i}",
                "description": f"tool number {i}",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
            for i in range(tools)
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Summarize the session so far",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            }
        ],
    }


def claude_code_headers(key: str = ANTHROPIC_KEY) -> dict[str, str]:
    return {
        "x-api-key": key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETAS,
        "x-app": "cli",
        "user-agent": "claude-cli/2.1.150 (external, cli)",
        "content-type": "application/json",
    }


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=60) as http:
        return http.post(path, content=body, headers=headers)


def sse_events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        name, data = "", None
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                payload = line[5:].strip()
                data = payload if payload == "[DONE]" else json.loads(payload)
        if data is not None:
            out.append((name, data))
    return out


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path) as s:
        yield s


# --- Claude Code --------------------------------------------------------------------------------


def test_claude_code_main_loop_reaches_anthropic_byte_for_byte(gw: Stack) -> None:
    raw = json.dumps(claude_code_body("claude-opus-4-6"), indent=1).encode()  # odd spacing on purpose
    response = post(gw.url, "/v1/messages?beta=true", raw, claude_code_headers())
    seen = gw.anthropic.calls("/v1/messages")[0]
    assert response.status_code == 200
    assert seen.raw == raw
    assert seen.query == {"beta": "true"}
    assert seen.headers["anthropic-beta"] == BETAS
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["user-agent"] == "claude-cli/2.1.150 (external, cli)"
    assert [e for e, _ in sse_events(response.text)][-1] == "message_stop"


def test_claude_code_background_request_is_served_locally_without_betas_or_attribution(gw: Stack) -> None:
    raw = json.dumps(claude_code_body("claude-haiku-4-5")).encode()
    response = post(gw.url, "/v1/messages?beta=true", raw, claude_code_headers())
    events = sse_events(response.text)
    chat = next(r for r in gw.lmstudio.requests if r.path == "/v1/chat/completions")
    sent = json.dumps(chat.body)
    assert response.headers["x-offload-route"] == "background/local"
    assert events[0][0] == "message_start"
    assert [e for e, _ in events][-1] == "message_stop"
    assert gw.anthropic.requests == []
    assert "x-anthropic-billing-header" not in sent
    assert "You are Claude Code" in sent
    assert "anthropic-beta" not in chat.headers
    assert chat.body["max_tokens"] == 4096
    assert len(chat.body["tools"]) == 32


def test_claude_code_row_records_client_and_scenario(gw: Stack) -> None:
    post(
        gw.url,
        "/v1/messages",
        json.dumps(claude_code_body("claude-haiku-4-5")).encode(),
        claude_code_headers(),
    )
    (row,) = gw.rows()
    assert row["client"] == "claude-code"
    assert row["scenario"] == "background"


def test_unsigned_thinking_is_dropped_before_anthropic_and_signed_thinking_kept(gw: Stack) -> None:
    body = claude_code_body("claude-opus-4-6", stream=False, tools=0)
    signed = {"type": "thinking", "thinking": "mine", "signature": "c2lnbmVk"}
    body["messages"] += [
        {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "local"}, {"type": "text", "text": "a"}],
        },
        {"role": "user", "content": "next"},
        {"role": "assistant", "content": [signed, {"type": "text", "text": "b"}]},
        {"role": "user", "content": "again"},
    ]
    response = post(gw.url, "/v1/messages", json.dumps(body).encode(), claude_code_headers())
    sent = gw.anthropic.calls("/v1/messages")[0].body["messages"]
    assert response.status_code == 200
    assert sent[1]["content"] == [{"type": "text", "text": "a"}]
    assert sent[3]["content"][0] == signed


def test_the_clients_own_key_is_forwarded_and_offloads_key_wins_when_set(tmp_path: Path) -> None:
    with stack(tmp_path, hosted_keys=True) as s:
        ok = post(
            s.url,
            "/v1/messages",
            json.dumps(claude_code_body("claude-opus-4-6", stream=False)).encode(),
            claude_code_headers(key="sk-ant-some-other-key"),
        )
        assert ok.status_code == 200  # the fake only accepts offload's configured key


def test_a_local_stream_that_dies_midway_ends_with_an_anthropic_error_event(tmp_path: Path) -> None:
    lms = LMStudioFake(token_delay=0.001)
    with stack(tmp_path, lmstudio=lms) as s:
        s.lmstudio.fail_next("crash")
        body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 400,
            "stream": True,
            "messages": [{"role": "user", "content": "write a long story about a parser " * 5}],
        }
        response = post(s.url, "/v1/messages", json.dumps(body).encode(), claude_code_headers())
        names = [e for e, _ in sse_events(response.text)]
        assert "content_block_delta" in names
        assert names[-1] == "error"
        assert "message_stop" not in names
        assert s.rows()[0]["outcome"] != "ok"


def test_a_local_openai_chat_stream_that_dies_ends_with_an_error_chunk(tmp_path: Path) -> None:
    with stack(tmp_path, lmstudio=LMStudioFake(token_delay=0.001)) as s:
        s.lmstudio.fail_next("crash")
        body = {
            "model": "gpt-local",
            "stream": True,
            "messages": [{"role": "user", "content": "write a long story about a parser " * 5}],
        }
        response = post(
            s.url, "/v1/chat/completions", json.dumps(body).encode(), {"authorization": "Bearer x"}
        )
        events = sse_events(response.text)
        assert "error" in events[-1][1]
        assert "[DONE]" not in response.text


def test_a_local_responses_stream_that_dies_ends_with_response_failed(tmp_path: Path) -> None:
    with stack(tmp_path, lmstudio=LMStudioFake(token_delay=0.001)) as s:
        s.lmstudio.fail_next("crash")
        body = {"model": "gpt-local", "stream": True, "input": "write a long story about a parser " * 5}
        response = post(s.url, "/v1/responses", json.dumps(body).encode(), {"authorization": "Bearer x"})
        names = [e for e, _ in sse_events(response.text)]
        assert names[-1] == "response.failed"
        assert "response.completed" not in names


def test_a_relayed_stream_error_event_reaches_the_client_unchanged(gw: Stack) -> None:
    gw.anthropic.fail_next("midstream:overloaded")
    body = claude_code_body("claude-opus-4-6")
    response = post(gw.url, "/v1/messages", json.dumps(body).encode(), claude_code_headers())
    assert [e for e, _ in sse_events(response.text)][-1] == "error"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_local_down_background_falls_back_to_anthropic(tmp_path: Path) -> None:
    with AnthropicFake(CLAUDE, api_key=ANTHROPIC_KEY) as claude:
        config = gateway_config(f"http://127.0.0.1:{closed_port()}", claude.url, "http://127.0.0.1:9")
        with running(config, ledger_path=tmp_path / "usage.sqlite3") as gw:
            client = anthropic.Anthropic(base_url=gw.url, api_key=ANTHROPIC_KEY, max_retries=0)
            raw = client.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "title"}]
            )
            assert raw.headers["x-offload-route"] == "background/relay"
            assert raw.headers["x-offload-fallback"].startswith("lmstudio/auto")
            assert len(claude.calls("/v1/messages")) == 1


def test_local_only_never_contacts_hosted_fakes(tmp_path: Path) -> None:
    with stack(tmp_path, local_only=True) as s:
        client = anthropic.Anthropic(base_url=s.url, api_key=ANTHROPIC_KEY, max_retries=0)
        local = client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "title"}]
        )
        with pytest.raises(anthropic.PermissionDeniedError, match="local-only"):
            client.messages.create(
                model="claude-opus-4-6", max_tokens=50, messages=[{"role": "user", "content": "x"}]
            )
        assert local.content[0].type == "text"
        assert s.anthropic.requests == []
        assert s.openai.requests == []


# --- Codex ----------------------------------------------------------------------------------------


def codex_body(*, custom_tool: bool = True) -> dict[str, Any]:
    tools: list[dict[str, Any]] = [
        {"type": "function", "name": "shell", "description": "run", "parameters": {"type": "object"}},
    ]
    if custom_tool:
        tools.append(
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "patch",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            }
        )
    return {
        "model": "gpt-5",
        "instructions": "You are Codex.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "compact it"}]}
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "9b2c6c1e",
    }


def codex_headers(subagent: str | None) -> dict[str, str]:
    headers = {
        "authorization": f"Bearer {OPENAI_KEY}",
        "session_id": "9b2c6c1e",
        "originator": "codex_cli_rs",
        "content-type": "application/json",
    }
    if subagent:
        headers["x-openai-subagent"] = subagent
    return headers


def test_codex_subagent_work_is_served_locally(gw: Stack) -> None:
    response = post(gw.url, "/v1/responses", json.dumps(codex_body()).encode(), codex_headers("compact"))
    names = [e for e, _ in sse_events(response.text)]
    assert response.headers["x-offload-route"] == "background/local"
    assert names[0] == "response.created"
    assert names[-1] == "response.completed"
    assert sse_events(response.text)[-1][1]["response"]["id"].startswith("resp_")
    assert gw.openai.requests == []
    assert gw.rows()[0]["client"] == "codex"


def test_codex_main_loop_passes_through_byte_for_byte(gw: Stack) -> None:
    raw = json.dumps(codex_body(custom_tool=False)).encode()
    response = post(gw.url, "/v1/responses", raw, codex_headers(None))
    seen = gw.openai.calls("/v1/responses")[0]
    assert response.headers["x-offload-route"] == "tools/relay"
    assert seen.raw == raw
    assert seen.headers["session_id"] == "9b2c6c1e"


# --- the gateway key ------------------------------------------------------------------------------


def test_with_a_key_requests_need_it_and_it_is_never_forwarded(tmp_path: Path) -> None:
    with stack(tmp_path, key="gw-secret", hosted_keys=True) as s:
        body = json.dumps(
            {"model": "claude-opus-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "x"}]}
        ).encode()
        refused = post(s.url, "/v1/messages", body, {"anthropic-version": "2023-06-01", "x-api-key": "wrong"})
        by_header = post(
            s.url, "/v1/messages", body, {"anthropic-version": "2023-06-01", "x-api-key": "gw-secret"}
        )
        by_bearer = post(
            s.url,
            "/v1/messages",
            body,
            {"anthropic-version": "2023-06-01", "authorization": "Bearer gw-secret"},
        )
        health = httpx.get(f"{s.url}/health")
        assert refused.status_code == 401
        assert refused.json()["error"]["type"] == "authentication_error"
        assert by_header.status_code == 200
        assert by_bearer.status_code == 200
        assert health.status_code == 200
        assert "authorization" not in s.anthropic.requests[-1].headers


def test_an_upstream_that_drops_mid_stream_ends_with_an_error_event(gw: Stack) -> None:
    gw.anthropic.fail_next("drop")
    body = claude_code_body("claude-opus-4-6", tools=0)
    response = post(gw.url, "/v1/messages", json.dumps(body).encode(), claude_code_headers())
    names = [e for e, _ in sse_events(response.text)]
    assert names[0] == "message_start"
    assert names[-1] == "error"
    assert "message_stop" not in names
    assert gw.rows()[0]["outcome"] == "unreachable"
