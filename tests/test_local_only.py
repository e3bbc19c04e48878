"""Local-only as a guarantee: doctor contacts no hosted fake, the global setting is a floor,
offload's config section is strict, and "local" is decided on the real address, not its spelling.

End-to-end parts run the real ``offload`` entry point against loopback fakes that record requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.config import parse_config
from offload.errors import ConfigError
from offload.locality import is_hosted_domain, is_local_url, is_loopback_url
from offload.testing import AnthropicFake, LMStudioFake, OpenAIFake
from tests.e2e import offload, write_config

ENV = {"OPENAI_API_KEY": "sk-test-openai-0000", "ANTHROPIC_API_KEY": "sk-ant-test-0000"}


def hosted_config(lms: str, oai: str, claude: str, *, local_only: bool) -> str:
    return f"""{{
  agents: {{ defaults: {{ model: {{ primary: "lmstudio/auto",
                                  fallbacks: ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-6"] }} }} }},
  models: {{ providers: {{
    lmstudio: {{ baseUrl: "{lms}" }},
    openai: {{ baseUrl: "{oai}/v1", local: false }},
    anthropic: {{ baseUrl: "{claude}", local: false }},
  }} }},
  offload: {{ localOnly: {"true" if local_only else "false"}, embedded: {{ enabled: false }} }},
}}"""


@pytest.fixture
def servers() -> Iterator[tuple[str, OpenAIFake, AnthropicFake]]:
    with (
        LMStudioFake().serve() as lms,
        OpenAIFake(api_key=ENV["OPENAI_API_KEY"]) as oai,
        AnthropicFake(api_key=ENV["ANTHROPIC_API_KEY"]) as claude,
    ):
        yield lms.url, oai, claude


def test_doctor_under_local_only_contacts_no_hosted_provider_and_says_so(
    servers: tuple[str, OpenAIFake, AnthropicFake], offload_home: Path
) -> None:
    lms, oai, claude = servers
    cfg = write_config(offload_home, hosted_config(lms, oai.url, claude.url, local_only=True))
    run = offload("--config", str(cfg), "doctor", env=ENV)
    assert run.code == 0, run.out + run.err
    assert oai.requests == []
    assert claude.requests == []
    assert "local-only: on: hosted providers are not contacted" in run.out
    assert "- openai: hosted; not contacted (local-only)" in run.out
    assert "✓ path: calls go to lmstudio, on this machine" in run.out


def test_doctor_without_local_only_does_check_hosted_providers(
    servers: tuple[str, OpenAIFake, AnthropicFake], offload_home: Path
) -> None:
    """The control for the test above: the same config with local-only off reaches the fakes."""
    lms, oai, claude = servers
    cfg = write_config(offload_home, hosted_config(lms, oai.url, claude.url, local_only=False))
    run = offload("--config", str(cfg), "doctor", env=ENV)
    assert run.code == 0, run.out + run.err
    assert len(oai.requests) == 1
    assert len(claude.requests) == 1


def test_a_task_cannot_lift_global_local_only_and_config_check_says_so(offload_home: Path) -> None:
    cfg = write_config(offload_home, "{offload: {localOnly: true, tasks: {summarize: {localOnly: false}}}}")
    run = offload("--config", str(cfg), "config", "check")
    assert run.code == 2
    assert (
        "offload.tasks.summarize.localOnly: false cannot lift the global offload.localOnly: true" in run.err
    )
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    ("offload_block", "message"),
    [
        ("{localonly: true}", "offload.localonly: unknown setting (did you mean localOnly?)"),
        ("{embedded: {enable: false}}", "offload.embedded.enable: unknown setting (did you mean enabled?)"),
        (
            "{savings: {baseLine: 'x/y'}}",
            "offload.savings.baseLine: unknown setting (did you mean baseline?)",
        ),
        (
            "{ledger: {storetext: true}}",
            "offload.ledger.storetext: unknown setting (did you mean storeText?)",
        ),
    ],
)
def test_unknown_keys_in_offloads_section_are_errors_with_a_hint(offload_block: str, message: str) -> None:
    import json5

    with pytest.raises(ConfigError) as info:
        parse_config({"offload": json5.loads(offload_block)}, env={})
    assert message in str(info.value)


def test_adding_a_setting_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from offload import config_schema

    monkeypatch.setitem(
        config_schema.OFFLOAD_SECTIONS, "offload", (*config_schema.OFFLOAD_SECTIONS["offload"], "x")
    )
    assert parse_config({"offload": {"x": 1}}, env={}).settings.local_only is False


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://134744072/", False),  # 8.8.8.8 as one decimal number
        ("http://0x08080808/", False),  # 8.8.8.8 in hex
        ("http://0x8.0x8.0x8.0x8/", False),
        ("http://010.010.010.010/", False),  # octal 8.8.8.8
        ("http://[::ffff:8.8.8.8]/", False),
        ("http://gpubox:8000", False),  # dotless: may resolve anywhere
        ("http://api.openai.com.", False),
        ("http://2130706433:1234", True),  # 127.0.0.1
        ("http://0x7f000001/", True),
        ("http://127.1:1234", True),
        ("http://0177.0.0.1/", True),
        ("http://[::1]:1234", True),
        ("http://[::ffff:127.0.0.1]/", True),
        ("http://10.0.0.5/v1", True),
        ("http://192.168.1.2:1234", True),
        ("http://0.0.0.0:1234", True),
        ("http://LOCALHOST./v1", True),
        ("http://box.lan:8080", True),
        ("http://[bad", False),
        ("not a url", False),
    ],
)
def test_local_is_decided_on_the_real_address(url: str, local: bool) -> None:
    assert is_local_url(url) is local


def test_a_dotless_host_is_local_only_when_the_provider_says_so() -> None:
    raw = {"models": {"providers": {"gpu": {"baseUrl": "http://gpubox:8000/v1"}}}}
    assert parse_config(raw, env={}).providers["gpu"].local is False
    raw["models"]["providers"]["gpu"]["local"] = True
    assert parse_config(raw, env={}).providers["gpu"].local is True


def test_loopback_and_hosted_domain_helpers() -> None:
    assert is_loopback_url("http://0x7f.1/") is True
    assert is_loopback_url("http://10.0.0.1/") is False
    assert is_hosted_domain("https://eu.api.openai.com/v1") is True
    assert is_hosted_domain("https://notopenai.com/v1") is False


def test_config_check_warns_about_hosted_providers_that_look_local(offload_home: Path) -> None:
    cfg = write_config(
        offload_home,
        """{models: {providers: {
            openai: {baseUrl: "http://127.0.0.1:9/v1"},
            mine: {baseUrl: "https://api.anthropic.com", api: "anthropic-messages", local: true},
        }}}""",
    )
    run = offload("--config", str(cfg), "config", "check")
    assert run.code == 0, run.err
    assert "warning: models.providers.openai.baseUrl points at this machine (127.0.0.1)" in run.err
    assert "warning: models.providers.mine.local: true is set on a hosted API (api.anthropic.com)" in run.err


def test_doctor_repeats_the_warnings(offload_home: Path) -> None:
    cfg = write_config(
        offload_home,
        """{models: {providers: {openrouter: {baseUrl: "http://localhost:9/api/v1"}}},
            offload: {localOnly: true, embedded: {enabled: false}}}""",
    )
    run = offload("--config", str(cfg), "doctor", "--base-url", "http://127.0.0.1:9")
    assert "! config: models.providers.openrouter.baseUrl points at this machine (localhost)" in run.out


def test_a_hosted_provider_with_local_false_on_loopback_is_not_warned_about() -> None:
    raw = {"models": {"providers": {"anthropic": {"baseUrl": "http://127.0.0.1:9", "local": False}}}}
    assert parse_config(raw, env={}).warnings() == []
