"""The gateway's pure parts: config validation, scenario order, relay helpers, codecs, CLI checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from offload.cli import cli
from offload.config import parse_config
from offload.errors import ConfigError, InputError
from offload.gateway.passthrough import UsageSniffer, prepare_body, strip_unsigned_thinking, upstream_url
from offload.gateway.scenarios import Routes, facts
from offload.gateway.server import check_bind
from offload.protocols import anthropic_server, openai_chat_server, responses_server
from offload.protocols.incoming import flatten_tools
from offload.starter import LAYOUTS, starter
from offload.types import ToolCall


def config(gateway: dict[str, Any] | None = None, **offload: Any) -> Any:
    raw: dict[str, Any] = {"offload": {"embedded": {"enabled": False}, **offload}}
    if gateway is not None:
        raw["offload"]["gateway"] = gateway
    return parse_config(raw, env={})


# --- config -------------------------------------------------------------------------------------


def test_unknown_gateway_keys_and_scenarios_are_errors_with_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        config({"scenario": {}, "scenarios": {"backgrund": "passthrough"}, "longContextThreshold": -1})
    text = str(caught.value)
    assert "offload.gateway.scenario: unknown setting (did you mean scenarios?)" in text
    assert "offload.gateway.scenarios.backgrund: unknown scenario" in text
    assert "offload.gateway.longContextThreshold: expected a positive integer, got -1" in text


def test_a_bad_chain_ref_fails_at_start_naming_its_key() -> None:
    raw = {
        "models": {
            "mode": "replace",
            "providers": {"anthropic": {"baseUrl": "https://x", "api": "anthropic-messages"}},
        },
        "offload": {
            "gateway": {"models": {"my-model": {"primary": "passthrough", "fallbacks": ["nowhere"]}}}
        },
    }
    with pytest.raises(ConfigError, match=r'offload\.gateway\.models\["my-model"\]\[1\]: unknown model'):
        Routes(parse_config(raw, env={}))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_starter_layout_has_a_valid_gateway_block(layout: str) -> None:
    import json5

    parsed = parse_config(json5.loads(starter(layout)), env={})
    assert "claude-haiku-4-5" in parsed.settings.gateway.models
    Routes(parsed)  # every ref resolves


# --- scenarios ----------------------------------------------------------------------------------


def scenario_of(
    body: dict[str, Any], *, protocol: Any = "anthropic", subagent: bool = False, size: int = 100
) -> str:
    return Routes(config()).scenario(protocol, facts(protocol, body), size, subagent)


def test_scenarios_in_order() -> None:
    tools = [{"name": "t"}]
    assert scenario_of({"model": "claude-haiku-4-5"}, size=10**7) == "longContext"
    assert scenario_of({"model": "claude-haiku-4-5", "tools": tools}) == "background"
    assert (
        scenario_of({"model": "gpt-5", "tools": tools}, protocol="responses", subagent=True) == "background"
    )
    assert (
        scenario_of({"model": "claude-opus-4-6", "tools": tools, "thinking": {"type": "adaptive"}}) == "tools"
    )
    assert scenario_of({"model": "claude-opus-4-6", "thinking": {"type": "adaptive"}}) == "think"
    assert scenario_of({"model": "claude-opus-4-6"}) == "default"
    assert scenario_of({"model": "haiku-like"}, protocol="chat") == "default"


def test_default_steps_background_local_then_hosted_and_unknown_models_pass_through() -> None:
    routes = Routes(config())
    background = routes.steps("anthropic", "background", "claude-haiku-4-5")
    unknown = routes.steps("anthropic", "default", "claude-future-9")
    openai = routes.steps("chat", "default", "gpt-5")
    assert [s.name for s in background] == ["lmstudio/auto", "anthropic/claude-haiku-4-5"]
    assert [s.relay for s in background] == [False, True]
    assert [s.name for s in unknown] == ["anthropic/claude-future-9"]
    assert [s.name for s in openai] == ["openai/gpt-5"]


def test_local_only_drops_hosted_steps() -> None:
    routes = Routes(config(localOnly=True))
    assert [s.name for s in routes.steps("anthropic", "background", "claude-haiku-4-5")] == ["lmstudio/auto"]
    assert routes.steps("anthropic", "default", "claude-opus-4-6") == ()


# --- relay helpers ------------------------------------------------------------------------------


def test_upstream_url_keeps_one_v1_and_the_query() -> None:
    assert upstream_url("https://api.anthropic.com", "/v1/messages", "beta=true") == (
        "https://api.anthropic.com/v1/messages?beta=true"
    )
    assert (
        upstream_url("https://api.openai.com/v1/", "/v1/responses", "")
        == "https://api.openai.com/v1/responses"
    )


def test_bodies_are_untouched_unless_the_model_changes() -> None:
    routes = Routes(config())
    (step,) = routes.steps("anthropic", "default", "claude-opus-4-6")
    raw = b'{"model":  "claude-opus-4-6", "messages": []}'
    assert prepare_body(raw, json.loads(raw), step, "anthropic", "claude-opus-4-6") is raw


def test_only_unsigned_thinking_blocks_are_removed() -> None:
    messages = [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "y", "signature": ""}]},
    ]
    cleaned = strip_unsigned_thinking(messages)
    assert cleaned is not None
    assert cleaned[0] == messages[0]
    assert cleaned[1]["content"] == [{"type": "text", "text": ""}]
    assert strip_unsigned_thinking(messages[:1]) is None


def test_usage_is_read_from_split_anthropic_stream_chunks() -> None:
    sniffer = UsageSniffer(stream=True)
    stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,'
        b'"output_tokens":1}}}\n\nevent: message_delta\n'
        b'data: {"type":"message_delta","usage":{"output_tokens":40}}\n\n'
    )
    for i in range(0, len(stream), 7):
        sniffer.feed(stream[i : i + 7])
    assert sniffer.input_tokens == 12
    assert sniffer.output_tokens == 40


# --- codecs -------------------------------------------------------------------------------------


def test_anthropic_read_drops_attribution_thinking_and_keeps_images_and_tool_history() -> None:
    incoming = anthropic_server.read(
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 32000,
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cch=1;\nKeep me"}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                        },
                        {"type": "text", "text": "look"},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm"},
                        {"type": "tool_use", "id": "t1", "name": "Read", "input": {"p": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "file text"}],
                },
            ],
        }
    )
    system, first, second, third = incoming.request.messages
    flat = flatten_tools(incoming.request).messages
    assert system.content == "Keep me"
    assert first.images == ("data:image/png;base64,AAA",)
    assert "hmm" not in second.content
    assert second.tool_calls == (ToolCall("t1", "Read", '{"p": 1}'),)
    assert third.role == "tool"
    assert third.tool_call_id == "t1"
    assert third.content == "file text"
    assert 'Read with {"p": 1}' in flat[2].content
    assert "file text" in flat[3].content


def test_codec_errors_name_the_field() -> None:
    with pytest.raises(InputError, match=r"messages\[0\]\.role"):
        anthropic_server.read({"model": "m", "messages": [{"role": "tool", "content": "x"}]})
    with pytest.raises(InputError, match="max_completion_tokens"):
        openai_chat_server.read({"model": "m", "messages": [], "max_completion_tokens": "lots"})
    with pytest.raises(InputError, match="input"):
        responses_server.read({"model": "m", "input": 5})


def test_responses_read_turns_custom_tool_calls_into_function_calls() -> None:
    incoming = responses_server.read(
        {
            "model": "gpt-5",
            "input": [
                {
                    "type": "custom_tool_call",
                    "name": "apply_patch",
                    "input": "*** Begin Patch",
                    "call_id": "c",
                },
                {"type": "custom_tool_call_output", "call_id": "c", "output": "Done"},
                {"type": "reasoning", "summary": []},
            ],
        }
    )
    call, result = incoming.request.messages
    assert call.tool_calls == (ToolCall("c", "apply_patch", '{"input": "*** Begin Patch"}'),)
    assert result.role == "tool"
    assert result.content == "Done"


# --- command line -------------------------------------------------------------------------------


def test_a_non_loopback_bind_without_a_key_is_refused() -> None:
    with pytest.raises(InputError, match="without a key"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "k")
    check_bind("::1", None)


def test_serve_refuses_a_public_bind_with_exit_code_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OFFLOAD_GATEWAY_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "without a key" in result.output


def test_print_env_for_each_client() -> None:
    runner = CliRunner()
    claude = runner.invoke(cli, ["serve", "--print-env", "claude", "--port", "5000"]).output
    codex = runner.invoke(cli, ["serve", "--print-env", "codex"]).output
    claw = runner.invoke(cli, ["serve", "--print-env", "openclaw"]).output
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:5000" in claude
    assert "ANTHROPIC_DEFAULT_HAIKU_MODEL=" in claude
    assert "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1" in claude
    assert 'wire_api = "responses"' in codex
    provider = json.loads(claw.split("\n", 1)[1])["models"]["providers"]["offload"]
    assert all(m["contextWindow"] >= 16_000 for m in provider["models"])
    assert provider["models"]


def test_serve_reads_its_own_config_flag(tmp_path: Path) -> None:
    path = tmp_path / "gw.json5"
    path.write_text('{ offload: { gateway: { models: { "claude-haiku-4-5-fast": "lmstudio/auto" } } } }')
    out = CliRunner().invoke(cli, ["serve", "--config", str(path), "--print-env", "claude"]).output
    assert "ANTHROPIC_DEFAULT_HAIKU_MODEL=claude-haiku-4-5-fast" in out
