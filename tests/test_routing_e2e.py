"""``offload ask`` routed by OpenClaw config files over real HTTP: LM Studio fake + hosted fakes.

The seed guide's layouts: LM Studio primary with an Anthropic safety net, the reverse, and
local-only. The Anthropic fake records every request, which is how "never contacted" is proven.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.testing import AnthropicFake, LMStudioFake, OpenAIFake
from tests.e2e import offload, write_config

CLAUDE = ["claude-sonnet-4-5", "claude-opus-4-5"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_config(
    lmstudio_url: str,
    anthropic_url: str,
    *,
    primary: str,
    fallbacks: list[str],
    local_only: bool = False,
    api: str = "openai-responses",
) -> str:
    """The seed guide's config block, pointed at the fakes (comments and all)."""
    fallbacks_text = ", ".join(f'"{f}"' for f in fallbacks)
    return f"""{{
  // hosted primary or local primary, as in the guide
  agents: {{
    defaults: {{
      model: {{ primary: "{primary}", fallbacks: [{fallbacks_text}] }},
      models: {{
        "anthropic/claude-sonnet-4-5": {{ alias: "Sonnet" }},
        "lmstudio/google/gemma-3-1b": {{ alias: "Local" }},
      }},
    }},
  }},
  models: {{
    mode: "merge",
    providers: {{
      lmstudio: {{
        baseUrl: "{lmstudio_url}/v1",
        apiKey: "lmstudio",
        api: "{api}",
        models: [{{ id: "google/gemma-3-1b", name: "Gemma 3 1B", reasoning: false, input: ["text"],
                   cost: {{ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }},
                   contextWindow: 8192, maxTokens: 4096 }}],
      }},
      anthropic: {{
        baseUrl: "{anthropic_url}",
        apiKey: "${{TEST_ANTHROPIC_KEY}}",
        api: "anthropic-messages",
        local: false,   // a loopback fake standing in for the hosted API
        models: [{{ id: "claude-sonnet-4-5", name: "Sonnet", contextWindow: 200000, maxTokens: 8192,
                   cost: {{ input: 3, output: 15 }} }},
                 {{ id: "claude-opus-4-5", name: "Opus", contextWindow: 200000, maxTokens: 8192 }}],
      }},
    }},
  }},
  offload: {{ localOnly: {"true" if local_only else "false"} }},
}}"""


@pytest.fixture
def fakes() -> Iterator[tuple[LMStudioFake, str, AnthropicFake]]:
    lms = LMStudioFake()
    with lms.serve() as server, AnthropicFake(CLAUDE, api_key="sk-ant-test") as claude:
        yield lms, server.url, claude


ENV = {"TEST_ANTHROPIC_KEY": "sk-ant-test"}


def test_local_first_answers_locally_and_never_calls_hosted(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    lms, url, claude = fakes
    lms.script("Local answer.")
    cfg = write_config(
        offload_home,
        seed_config(
            url, claude.url, primary="lmstudio/google/gemma-3-1b", fallbacks=["anthropic/claude-sonnet-4-5"]
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", "--json", env=ENV)
    assert run.code == 0, run.err
    data = run.json()
    assert data["content"] == "Local answer."
    assert data["candidate"] == "lmstudio/google/gemma-3-1b"
    assert data["local"] is True
    assert not data["failed_over"]
    assert [r.path for r in lms.requests] == ["/v1/responses"]  # api: openai-responses, as in the guide
    assert claude.requests == []


def test_local_first_fails_over_visibly_when_lmstudio_is_down(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, _, claude = fakes
    claude.script("Hosted answer.")
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(
        offload_home,
        seed_config(
            down, claude.url, primary="lmstudio/google/gemma-3-1b", fallbacks=["anthropic/claude-sonnet-4-5"]
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", "--json", env=ENV)
    assert run.code == 0, run.err
    assert run.json()["content"] == "Hosted answer."
    assert run.json()["failed_over"] is True
    notice = [ln for ln in run.err.splitlines() if ln.startswith("offload:")]
    assert len(notice) == 1
    assert (
        f"lmstudio/google/gemma-3-1b failed (unreachable: lmstudio is not reachable at {down}/v1" in notice[0]
    )
    assert notice[0].endswith("→ trying anthropic/claude-sonnet-4-5")
    sent = claude.calls("/v1/messages")
    assert len(sent) == 1
    assert sent[0].body["model"] == "claude-sonnet-4-5"
    assert sent[0].headers["x-api-key"] != "sk-ant-test"  # recorded redacted, never in clear


def test_hosted_first_falls_back_to_local(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    lms, url, claude = fakes
    lms.script("Local rescue.")
    claude.fail_next("overloaded", count=5)
    cfg = write_config(
        offload_home,
        seed_config(
            url,
            claude.url,
            primary="anthropic/claude-sonnet-4-5",
            fallbacks=["lmstudio/google/gemma-3-1b", "anthropic/claude-opus-4-5"],
            api="lmstudio",
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", "--json", env=ENV)
    assert run.code == 0, run.err
    data = run.json()
    assert data["content"] == "Local rescue."
    assert data["candidate"] == "lmstudio/google/gemma-3-1b"
    assert [a["outcome"] for a in data["attempts"]] == ["failed", "ok"]
    assert "server_error 529" in data["attempts"][0]["error"]
    assert len(claude.calls("/v1/messages")) == 3  # the primary got its bounded retries first


def test_all_candidates_failing_lists_each(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, _, claude = fakes
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(
        offload_home,
        seed_config(
            down, claude.url, primary="lmstudio/google/gemma-3-1b", fallbacks=["anthropic/claude-sonnet-4-5"]
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", env={"TEST_ANTHROPIC_KEY": "sk-ant-wrong"})
    assert run.code == 10
    first = next(line for line in run.err.splitlines() if line.startswith("error:"))
    assert first.startswith("error: all 2 candidates failed: lmstudio/google/gemma-3-1b unreachable")
    assert "anthropic/claude-sonnet-4-5 auth 401" in first


def test_local_only_never_leaves_the_machine(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, _, claude = fakes
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(
        offload_home,
        seed_config(
            down,
            claude.url,
            primary="lmstudio/google/gemma-3-1b",
            fallbacks=["anthropic/claude-sonnet-4-5"],
            local_only=True,
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", env=ENV)
    assert run.code == 11  # only the refused hosted candidate was left
    assert "local-only mode refused hosted candidate(s): anthropic/claude-sonnet-4-5" in run.err
    assert "not reachable" in run.err
    flag = offload("--config", str(cfg), "ask", "hi", "--model", "Sonnet", "--no-fallback", env=ENV)
    assert flag.code == 11
    assert "local-only mode refused hosted candidate(s): anthropic/claude-sonnet-4-5" in flag.err
    assert claude.requests == []


def test_local_only_flag_overrides_config(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, _, claude = fakes
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(
        offload_home,
        seed_config(
            down, claude.url, primary="anthropic/claude-sonnet-4-5", fallbacks=["lmstudio/google/gemma-3-1b"]
        ),
    )
    run = offload("--config", str(cfg), "ask", "hi", "--local-only", env=ENV)
    assert run.code == 11
    assert "refused hosted candidate(s): anthropic/claude-sonnet-4-5" in run.err
    assert claude.requests == []


def test_aliases_and_openai_compatible_local_servers(offload_home: Path) -> None:
    with OpenAIFake(["my-local-model"]) as vllm:
        vllm.script("From vLLM.")
        cfg = write_config(
            offload_home,
            f"""{{
          agents: {{ defaults: {{ model: "Local",
                                  models: {{ "local/my-local-model": {{ alias: "Local" }} }} }} }},
          models: {{ mode: "merge", providers: {{ local: {{ baseUrl: "{vllm.base_url}", apiKey: "sk-local",
            api: "openai-completions", models: [{{ id: "my-local-model", contextWindow: 120000 }}] }} }} }},
        }}""",
        )
        run = offload("--config", str(cfg), "ask", "hi", "--stream")
    assert run.code == 0, run.err
    assert run.out == "From vLLM.\n"
    body = vllm.calls("/v1/chat/completions")[0].body
    assert body["model"] == "my-local-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_streaming_through_anthropic(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, url, claude = fakes
    claude.script("Streamed from Claude.")
    cfg = write_config(
        offload_home, seed_config(url, claude.url, primary="anthropic/claude-sonnet-4-5", fallbacks=[])
    )
    run = offload("--config", str(cfg), "ask", "hi", "--stream", env=ENV)
    assert run.code == 0, run.err
    assert run.out == "Streamed from Claude.\n"


def test_context_precheck_fails_before_any_call(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    lms, url, claude = fakes
    cfg = write_config(
        offload_home,
        seed_config(
            url,
            claude.url,
            primary="lmstudio/google/gemma-3-1b",
            fallbacks=["anthropic/claude-sonnet-4-5"],
            local_only=True,
        ),
    )
    run = offload("--config", str(cfg), "ask", env=ENV, input="word " * 40000)
    assert run.code == 6
    assert "fits no candidate: lmstudio/google/gemma-3-1b context window 8192" in run.err
    assert "local-only refused anthropic/claude-sonnet-4-5" in run.err
    assert lms.requests == []
    assert claude.requests == []


def test_config_commands(fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path) -> None:
    _, url, claude = fakes
    cfg = write_config(
        offload_home / "seed",
        seed_config(
            url, claude.url, primary="lmstudio/google/gemma-3-1b", fallbacks=["anthropic/claude-sonnet-4-5"]
        ),
    )
    check = offload("--config", str(cfg), "config", "check", env=ENV)
    assert check.code == 0
    assert "lmstudio/google/gemma-3-1b → anthropic/claude-sonnet-4-5" in check.out
    shown = offload("--config", str(cfg), "config", "show", "--json", env=ENV)
    assert "sk-ant-test" not in shown.out
    assert shown.json()["models"]["providers"]["anthropic"]["apiKey"] == "***"
    missing = offload("--config", str(cfg), "config", "check")
    assert missing.code == 2
    assert "environment variable TEST_ANTHROPIC_KEY is not set" in missing.err
    bad = write_config(
        offload_home / "bad",
        '{models: {providers: {lmstudio: {baseUrl: "x", models: '
        '[{id: "a"}, {id: "b"}, {id: "c", contextWindow: "big"}]}}}}',
    )
    run = offload("--config", str(bad), "config", "check")
    assert run.code == 2
    assert (
        'models.providers.lmstudio.models[2].contextWindow: expected a positive integer, got "big"' in run.err
    )
    init = offload("config", "init", "--layout", "local-only")
    assert init.code == 0
    assert (offload_home / "config.json5").exists()
    assert offload("config", "init").code == 2  # exists: no overwrite without --force


def test_local_only_with_the_local_server_down_names_the_refused_hosted_model(
    fakes: tuple[LMStudioFake, str, AnthropicFake], offload_home: Path
) -> None:
    _, _, claude = fakes
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(
        offload_home, seed_config(down, claude.url, primary="lmstudio/google/gemma-3-1b", fallbacks=[])
    )
    run = offload(
        "--config", str(cfg), "ask", "--local-only", "-m", "anthropic/claude-sonnet-4-6", "hi", env=ENV
    )
    assert run.code == 11
    final = next(line for line in run.err.splitlines() if "local-only mode refused" in line)
    assert "local-only mode refused hosted candidate(s): anthropic/claude-sonnet-4-6" in final
    assert "lmstudio/google/gemma-3-1b unreachable" in final
    assert "Traceback" not in run.err
    assert claude.requests == []
