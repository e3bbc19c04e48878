"""Fuzzing the CLI with hypothesis: generated config files and argument lists never produce a
traceback, and every exit code is one ``offload --help`` documents.

The CLI runs in-process (click's runner: hundreds of runs in seconds) against a real LM Studio
fake on 127.0.0.1. Every provider a generated config could route to — LM Studio and the built-in
hosted ones — is pointed at the fake, generated strings contain no ``:`` or ``/`` (so no other
host can appear), and ``embedded`` is never named, so no call leaves the machine or starts an
inference engine. Example counts are tuned to keep this module to a few seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from offload.cli import cli
from offload.testing import LMStudioFake

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 130}
HOSTED = ("anthropic", "openai", "openrouter")
FUZZ = settings(
    max_examples=int(os.environ.get("OFFLOAD_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

safe_text = st.text(st.characters(blacklist_characters=":/", blacklist_categories=("Cs",)), max_size=10)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    safe_text,
    st.sampled_from(["lmstudio/auto", "x/m", "A", "B", "auto", "${NOPE}", "sk-ant-abcdef123456", "checks"]),
)
json_value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_text, inner, max_size=3),
    max_leaves=8,
)
BAD_URLS = [
    "ftp://h/v1",
    "http://127.0.0.1:99999/v1",
    "http:///v1",
    "http://[::1",
    "not a url",
    "http://0x7f.1:0",
]


@st.composite
def configs(draw: st.DrawFn) -> Any:
    """A config document: mostly the right shape, with wrong types and values sprinkled in."""
    model = st.fixed_dictionaries(
        {"id": st.sampled_from(["m", "auto", "google/gemma-3-1b"])},
        optional={
            "contextWindow": leaf,
            "maxTokens": leaf,
            "cost": st.dictionaries(st.sampled_from(["input", "output", "cacheRead"]), leaf, max_size=2),
        },
    )
    provider = st.fixed_dictionaries(
        {},
        optional={
            "baseUrl": st.sampled_from(["FAKE", "FAKE/v1", *BAD_URLS]) | leaf,
            "api": st.sampled_from(
                ["lmstudio", "openai-completions", "openai-responses", "anthropic-messages"]
            )
            | leaf,
            "apiKey": leaf,
            "apiKeyEnv": leaf | st.lists(leaf, max_size=2),
            "headers": st.dictionaries(st.sampled_from(["X-Auth", "X-Title"]), leaf, max_size=2) | leaf,
            "models": st.lists(model, max_size=2) | leaf,
            "local": leaf,
        },
    )
    chain = st.sampled_from(["lmstudio/auto", "x/m", "A", "openai/gpt-4o-mini"]) | st.fixed_dictionaries(
        {"primary": st.sampled_from(["lmstudio/auto", "x/m", "B"]) | leaf},
        optional={
            "fallbacks": st.lists(st.sampled_from(["anthropic/claude-sonnet-4-6", "A", "x/m"]), max_size=2)
        },
    )
    aliases = st.dictionaries(
        st.sampled_from(["x/m", "lmstudio/auto", "A", "B"]),
        st.fixed_dictionaries({"alias": st.sampled_from(["A", "B", "x/m"]) | leaf}),
        max_size=3,
    )
    offload_section = st.fixed_dictionaries(
        {"embedded": st.just({"enabled": False})},
        optional={
            "localOnly": leaf,
            "savings": st.fixed_dictionaries({"baseline": leaf}),
            "ledger": st.fixed_dictionaries({"storeText": leaf}),
            "tasks": st.dictionaries(
                st.sampled_from(["summarize", "extract"]),
                st.fixed_dictionaries({}, optional={"localOnly": leaf, "gate": leaf, "model": chain}),
                max_size=2,
            ),
            "localonly": leaf,
        },
    )
    return draw(
        st.fixed_dictionaries(
            {"offload": offload_section},
            optional={
                "models": st.fixed_dictionaries(
                    {},
                    optional={
                        "mode": st.sampled_from(["merge", "replace"]) | leaf,
                        "providers": st.dictionaries(
                            st.sampled_from(["lmstudio", "x", *HOSTED]), provider, max_size=3
                        ),
                    },
                ),
                "agents": st.fixed_dictionaries(
                    {
                        "defaults": st.fixed_dictionaries(
                            {}, optional={"model": chain | leaf, "models": aliases}
                        )
                    }
                ),
                "extra": json_value,
            },
        )
    )


def pin_to(doc: dict[str, Any], url: str) -> str:
    """The config text with every provider that could be reached pointed at ``url``."""
    models = doc.setdefault("models", {})
    providers = models.setdefault("providers", {}) if isinstance(models, dict) else None
    if isinstance(providers, dict):
        for pid in ("lmstudio", *HOSTED):
            entry = providers.get(pid)
            providers[pid] = {**(entry if isinstance(entry, dict) else {}), "baseUrl": url}
        for entry in providers.values():
            if isinstance(entry, dict) and isinstance(entry.get("baseUrl"), str):
                entry["baseUrl"] = entry["baseUrl"].replace("FAKE", url)
    return json.dumps(doc, allow_nan=True)


COMMANDS = [
    ["config", "check"],
    ["config", "show"],
    ["config", "show", "--json"],
    ["doctor"],
    ["ask"],
    ["stats"],
    ["log"],
    ["summarize"],
    ["extract"],
    ["classify"],
    ["translate"],
    ["models"],
    ["conversations"],
    ["batch", "summarize"],
    ["run"],
    ["review"],
    ["rewrite"],
    ["brainstorm"],
    ["load"],
    ["unload"],
]
TOKENS = [
    "--json", "-m", "lmstudio/auto", "x/m", "A", "--temperature", "nan", "-1", "0.5", "--timeout", "inf",
    "--max-output-tokens", "99999999999999999999", "-n", "--local-only", "--stream", "-c", "notes", "../x",
    "--schema", "missing.json", "--fields", "name, age int", "--labels", "a,b", "--since", "7d", "--until",
    "--html", "out/x.html", "hello", "", "@missing.txt", "@", "-", "--api-token", "sk-abc123456789",
    "--provider", "lmstudio", "--no-fallback", "--image", "missing.png", "--length", "bullets", "--to",
    "French", "-o", "out.jsonl", "--reasoning", "high", "--gate", "judge", "--outcome", "ok", "--help",
]  # fmt: skip


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    fake = LMStudioFake()
    with fake.serve() as server:
        yield server.url


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    """Run the CLI in-process from ``cwd`` (files a command writes land there)."""
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(cli, args, catch_exceptions=True)


def check(result: Result, args: list[str]) -> None:
    shown = f"offload {' '.join(args)!r}\n{result.output}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {shown}") from result.exception
    assert result.exit_code in DOCUMENTED, shown
    event(f"exit {result.exit_code}")
    assert "Traceback" not in result.output, shown
    assert "please report it" not in result.output, shown  # the last-resort handler: an unforeseen bug


@FUZZ
@given(doc=configs(), command=st.sampled_from(COMMANDS[:7]))
def test_generated_configs_never_crash(
    doc: dict[str, Any], command: list[str], fake_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_STUDIO_API_URL", fake_url)
    cfg = tmp_path / "config.json5"
    cfg.write_text(pin_to(doc, fake_url))
    args = ["--config", str(cfg), *command, *(["hi", "--no-fallback"] if command == ["ask"] else [])]
    check(invoke(args, tmp_path, monkeypatch), args)


@FUZZ
@given(command=st.sampled_from(COMMANDS), extra=st.lists(st.sampled_from(TOKENS) | safe_text, max_size=6))
def test_generated_argument_lists_never_crash(
    command: list[str], extra: list[str], fake_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_STUDIO_API_URL", fake_url)
    cfg = tmp_path / "config.json5"
    cfg.write_text(pin_to({"offload": {"embedded": {"enabled": False}}}, fake_url))
    args = ["--config", str(cfg), *command, *extra]
    check(invoke(args, tmp_path, monkeypatch), args)


def test_the_documented_set_matches_help() -> None:
    from offload.cli._app import EXIT_CODES

    listed = {int(line.split()[0]) for line in EXIT_CODES.splitlines()[2:]}
    assert listed == DOCUMENTED
