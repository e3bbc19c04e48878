"""Per-model provider settings passed through to the server: OpenRouter routing preferences and
LM Studio keep-warm (idle TTL) — real HTTP against the package's fakes."""

from __future__ import annotations

from pathlib import Path

from offload.testing import LMStudioFake, OpenAIFake
from tests.e2e import offload, write_config


def openrouter_config(url: str) -> str:
    return f"""{{
      agents: {{ defaults: {{
        model: "openrouter/meta-llama/llama-3.1-8b-instruct",
        models: {{ "openrouter/qwen/qwen3-32b": {{ params: {{ provider: {{ only: ["nebius"] }} }} }} }},
      }} }},
      models: {{ mode: "replace", providers: {{ openrouter: {{
        baseUrl: "{url}", apiKey: "sk-or-test", api: "openai-completions",
        models: [
          {{ id: "meta-llama/llama-3.1-8b-instruct",
             params: {{ provider: {{ order: ["DeepInfra", "Together"], allow_fallbacks: false,
                                     data_collection: "deny" }} }} }},
          {{ id: "qwen/qwen3-32b" }},
          {{ id: "openai/gpt-4o-mini" }},
        ] }} }} }},
      offload: {{ embedded: {{ enabled: false }} }},
    }}"""


def test_openrouter_provider_preferences_reach_the_request_body(offload_home: Path) -> None:
    models = ["meta-llama/llama-3.1-8b-instruct", "qwen/qwen3-32b", "openai/gpt-4o-mini"]
    with OpenAIFake(models) as router:
        cfg = write_config(offload_home, openrouter_config(router.base_url))
        pinned = offload("--config", str(cfg), "ask", "hi")
        from_agents = offload("--config", str(cfg), "ask", "-m", "openrouter/qwen/qwen3-32b", "hi")
        plain = offload("--config", str(cfg), "ask", "-m", "openrouter/openai/gpt-4o-mini", "hi")
        bodies = [c.body for c in router.calls("/v1/chat/completions")]
    assert pinned.code == 0, pinned.err
    assert from_agents.code == 0, from_agents.err
    assert plain.code == 0, plain.err
    assert bodies[0]["provider"] == {
        "order": ["DeepInfra", "Together"],
        "allow_fallbacks": False,
        "data_collection": "deny",
    }
    assert bodies[1]["provider"] == {"only": ["nebius"]}
    assert "provider" not in bodies[2]


def test_bad_provider_preferences_are_a_config_error_naming_the_key(offload_home: Path) -> None:
    cfg = write_config(
        offload_home,
        '{models: {providers: {openrouter: {models: [{id: "x/y",'
        ' params: {provider: {order: "DeepInfra"}}}]}}}}',
    )
    run = offload("--config", str(cfg), "config", "check")
    assert run.code == 2
    assert (
        "models.providers.openrouter.models[0].params.provider.order: expected a list of strings" in run.err
    )


def test_keep_warm_loads_the_model_with_lm_studios_idle_ttl_before_a_call(offload_home: Path) -> None:
    fake = LMStudioFake()
    with fake.serve() as server:
        cfg = write_config(
            offload_home,
            f'{{models: {{providers: {{lmstudio: {{baseUrl: "{server.url}"}}}}}},'
            " offload: {keepWarm: 600, embedded: {enabled: false}}}",
        )
        run = offload("--config", str(cfg), "ask", "-m", "lmstudio/qwen/qwen3-4b-2507", "hi")
        assert run.code == 0, run.err
        assert "loading model qwen/qwen3-4b-2507 on lmstudio…" in run.err
        assert fake.instance_ttl("qwen/qwen3-4b-2507") == 600
        paths = [r.path for r in fake.requests if r.method == "POST"]
    assert paths == ["/v1/chat/completions", "/api/v1/chat"]
