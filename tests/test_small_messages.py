"""Small wrong messages from issue 12: doctor without the embedded extra, and results naming a
model by what the server reports instead of its configured id."""

from __future__ import annotations

from pathlib import Path

import pytest

from offload.config import parse_config
from offload.testing import LMStudioFake
from tests.e2e import offload, write_config


async def test_doctor_says_how_to_install_the_embedded_engine_when_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from offload.cli import doctor
    from offload.providers.embedded import engine

    monkeypatch.setattr(engine, "default_model_path", lambda: None)
    config = parse_config({}, env={})
    check = await doctor.provider_check(config.providers["embedded"], config)
    assert check.status == "fail"
    assert "no model 'none'" not in check.detail
    assert check.fix == "pip install 'offload[embedded]'"


def test_results_name_the_configured_model_not_what_the_server_reports(offload_home: Path) -> None:
    fake = LMStudioFake()  # one loaded LLM answers any name on /v1 and reports its own id
    with fake.serve() as server:
        cfg = write_config(
            offload_home,
            f"""{{agents: {{defaults: {{model: "llama/smollm2"}}}},
               models: {{mode: "replace", providers: {{llama: {{baseUrl: "{server.url}/v1",
                api: "openai-completions", models: [{{id: "smollm2"}}]}}}}}},
               offload: {{embedded: {{enabled: false}}}}}}""",
        )
        text = "The library reopens on Monday after the roof repairs that began in March."
        run = offload("--config", str(cfg), "summarize", "--json", text)
        asked = offload("--config", str(cfg), "ask", "--json", "hi")
        log = offload("--config", str(cfg), "log", "--json")
    assert run.code == 0, run.err
    assert run.json()["model"] == "llama/smollm2"
    assert asked.json()["model"] == "smollm2"
    assert log.code == 0, log.err
    assert {row["model"] for row in log.json()["calls"]} == {"smollm2"}
