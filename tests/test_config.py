"""The config: OpenClaw's JSON5 shape, env expansion, path-precise errors, merge, refs, chains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offload.config import ModelRef, load_config, parse_config, parse_json5
from offload.errors import ConfigError

# The seed guide's "hosted primary, local fallback" layout, as an OpenClaw user has it.
HOSTED_FIRST = """
{
  agents: {
    defaults: {
      model: {
        primary: "anthropic/claude-sonnet-4-5",
        fallbacks: ["lmstudio/minimax-m2.1-gs32", "anthropic/claude-opus-4-5"]
      },
      models: {
        "anthropic/claude-sonnet-4-5": { alias: "Sonnet" },
        "lmstudio/minimax-m2.1-gs32": { alias: "MiniMax Local" },
        "anthropic/claude-opus-4-5": { alias: "Opus" }
      }
    }
  },
  models: {
    mode: "merge",
    providers: {
      lmstudio: {
        baseUrl: "http://127.0.0.1:1234/v1",
        apiKey: "lmstudio",
        api: "openai-responses",
        models: [
          {
            id: "minimax-m2.1-gs32",
            name: "MiniMax M2.1 GS32",
            reasoning: false,
            input: ["text"],
            cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
            contextWindow: 196608,
            maxTokens: 8192
          }
        ]
      }
    }
  },
  channels: { whatsapp: { enabled: true } },  // OpenClaw keys offload does not use
}
"""


def test_openclaw_file_is_valid_input_as_is(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_text(HOSTED_FIRST)
    cfg = load_config(path, env={})
    assert cfg.default.primary == "anthropic/claude-sonnet-4-5"
    assert cfg.chain() == [
        ModelRef("anthropic", "claude-sonnet-4-5"),
        ModelRef("lmstudio", "minimax-m2.1-gs32"),
        ModelRef("anthropic", "claude-opus-4-5"),
    ]
    lms = cfg.providers["lmstudio"]
    assert lms.api == "openai-responses"
    assert lms.local
    assert lms.base_url == "http://127.0.0.1:1234/v1"
    assert lms.model("minimax-m2.1-gs32").context_window == 196608  # type: ignore[union-attr]
    assert not cfg.providers["anthropic"].local
    # merge keeps the built-ins under the user's providers
    assert {"embedded", "openai", "openrouter"} <= set(cfg.providers)
    assert cfg.providers["anthropic"].model("claude-sonnet-4-5").cost.output == 15  # type: ignore[union-attr]


def test_aliases_resolve_case_insensitively() -> None:
    cfg = parse_config(parse_json5(HOSTED_FIRST), env={})
    assert cfg.resolve("minimax local") == ModelRef("lmstudio", "minimax-m2.1-gs32")
    assert cfg.resolve("OPUS") == ModelRef("anthropic", "claude-opus-4-5")
    assert cfg.chain("Opus") == [
        ModelRef("anthropic", "claude-opus-4-5"),
        ModelRef("lmstudio", "minimax-m2.1-gs32"),
        ModelRef("anthropic", "claude-sonnet-4-5"),
    ]
    assert cfg.chain("Opus", fallbacks=False) == [ModelRef("anthropic", "claude-opus-4-5")]


def test_refs_split_on_the_first_slash_and_fall_back_to_lmstudio_keys() -> None:
    cfg = parse_config({}, env={})
    assert cfg.resolve("openrouter/moonshotai/kimi-k2") == ModelRef("openrouter", "moonshotai/kimi-k2")
    assert cfg.resolve("google/gemma-3-1b") == ModelRef("lmstudio", "google/gemma-3-1b")
    assert cfg.resolve("claude-haiku-4-5") == ModelRef("anthropic", "claude-haiku-4-5")  # unique declared id


def test_default_chain_is_local_first_with_embedded_safety_net() -> None:
    cfg = parse_config({}, env={})
    assert cfg.chain() == [ModelRef("lmstudio", "auto"), ModelRef("embedded", "auto")]
    off = parse_config({"offload": {"embedded": {"enabled": False}}}, env={})
    assert off.chain() == [ModelRef("lmstudio", "auto")]


def test_plain_string_model_and_offload_only_file() -> None:
    cfg = parse_config({"agents": {"defaults": {"model": "lmstudio/qwen/qwen3-4b-2507"}}}, env={})
    assert cfg.chain() == [ModelRef("lmstudio", "qwen/qwen3-4b-2507")]
    only = parse_config(
        {"offload": {"localOnly": True, "savings": {"baseline": "anthropic/claude-sonnet-4-5"}}}, env={}
    )
    assert only.settings.local_only
    assert only.settings.savings_baseline == "anthropic/claude-sonnet-4-5"


def test_env_placeholders_expand_and_missing_ones_are_named() -> None:
    raw = {
        "models": {
            "providers": {"local": {"baseUrl": "http://${HOST}:8000/v1", "apiKey": "${KEY}", "models": []}}
        }
    }
    cfg = parse_config(raw, env={"HOST": "10.0.0.5", "KEY": "sk-local"})
    local = cfg.providers["local"]
    assert local.base_url == "http://10.0.0.5:8000/v1"
    assert local.api_key == "sk-local"
    assert local.api == "openai-completions"
    assert local.local  # OpenClaw's default api; private address
    with pytest.raises(
        ConfigError, match=r"models.providers.local.apiKey: environment variable KEY is not set"
    ):
        parse_config(raw, env={"HOST": "h"})
    literal = parse_config({"offload": {"savings": {"baseline": "$${NOT_EXPANDED}"}}}, env={})
    assert literal.settings.savings_baseline == "${NOT_EXPANDED}"


def test_api_key_may_name_an_env_var_and_builtins_read_their_vars() -> None:
    raw = {
        "models": {
            "providers": {"openrouter": {"baseUrl": "https://openrouter.ai/api/v1", "apiKey": "OR_KEY"}}
        }
    }
    cfg = parse_config(raw, env={"OR_KEY": "sk-or-1", "ANTHROPIC_API_KEY": "sk-ant-1"})
    assert cfg.providers["openrouter"].api_key == "sk-or-1"
    assert cfg.providers["anthropic"].api_key == "sk-ant-1"
    assert cfg.providers["anthropic"].api_key_source == "env ANTHROPIC_API_KEY"
    assert parse_config({}, env={}).providers["anthropic"].api_key is None


def test_errors_are_path_precise_and_all_reported_at_once() -> None:
    raw = {
        "models": {
            "mode": "mix",
            "providers": {
                "lmstudio": {
                    "baseUrl": "http://127.0.0.1:1234",
                    "models": [{"id": "a"}, {"id": "b"}, {"id": "c", "contextWindow": "big"}],
                },
                "bad": {"models": []},
            },
        },
        "offload": {"localOnyl": True, "tasks": {"extract": {"gate": "maybe"}}},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    text = str(info.value)
    assert 'models.providers.lmstudio.models[2].contextWindow: expected a positive integer, got "big"' in text
    assert 'models.mode: expected "merge" or "replace", got "mix"' in text
    assert "models.providers.bad.baseUrl: expected a non-empty string, got null" in text
    assert "offload.localOnyl: unknown setting (did you mean localOnly?)" in text
    assert 'offload.tasks.extract.gate: expected one of "off", "checks", "judge", got "maybe"' in text


def test_json5_syntax_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.json5"
    path.write_text("{\n  models: {,}\n}")
    with pytest.raises(ConfigError, match=r"c.json5: invalid JSON5: line 2"):
        load_config(path, env={})


def test_missing_explicit_file_is_an_error_but_default_location_is_optional(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.json5", env={})
    cfg = load_config(env={"OFFLOAD_HOME": str(tmp_path)})
    assert cfg.source is None
    assert "lmstudio" in cfg.providers
    (tmp_path / "config.json5").write_text("{offload: {localOnly: true}}")
    assert load_config(env={"OFFLOAD_HOME": str(tmp_path)}).settings.local_only


def test_replace_mode_drops_builtins() -> None:
    raw = {"models": {"mode": "replace", "providers": {"gpu": {"baseUrl": "http://192.168.1.9:8000/v1"}}}}
    cfg = parse_config(raw, env={})
    assert set(cfg.providers) == {"gpu"}


def test_show_redacts_secrets() -> None:
    raw = {
        "models": {
            "providers": {
                "lmstudio": {
                    "baseUrl": "http://127.0.0.1:1234",
                    "apiKey": "sk-lm-Abc12345:x",
                    "headers": {"X-Api-Key": "hdr-secret"},
                }
            }
        }
    }
    cfg = parse_config(raw, env={"ANTHROPIC_API_KEY": "sk-ant-secret"})
    text = json.dumps(cfg.show())
    for secret in ("sk-lm-Abc12345", "hdr-secret", "sk-ant-secret"):
        assert secret not in text
    assert cfg.show()["models"]["providers"]["anthropic"]["apiKeySource"] == "env ANTHROPIC_API_KEY"


def test_task_chains_override_the_default() -> None:
    raw = {
        "offload": {
            "tasks": {
                "extract": {
                    "model": {
                        "primary": "lmstudio/qwen/qwen3-4b-2507",
                        "fallbacks": ["anthropic/claude-haiku-4-5"],
                    },
                    "localOnly": False,
                    "gate": "checks",
                }
            }
        }
    }
    cfg = parse_config(raw, env={})
    assert cfg.chain(task="extract") == [
        ModelRef("lmstudio", "qwen/qwen3-4b-2507"),
        ModelRef("anthropic", "claude-haiku-4-5"),
    ]
    assert cfg.task("extract").gate == "checks"
    assert cfg.chain(task="summarize") == cfg.chain()
