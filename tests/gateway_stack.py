"""Shared setup for the gateway tests: the fakes, a config pointing at them, a running gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offload.config import Config, parse_config
from offload.gateway import running
from offload.gateway.server import Running
from offload.ledger import Ledger
from offload.testing import AnthropicFake, LMStudioFake, OpenAIFake

ANTHROPIC_KEY = "sk-ant-test-key"
OPENAI_KEY = "sk-openai-test-key"
CLAUDE = ["claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"]
GPT = ["gpt-5", "gpt-5-mini"]


def gateway_config(
    lmstudio_url: str,
    anthropic_url: str,
    openai_url: str,
    *,
    gateway: dict[str, Any] | None = None,
    local_only: bool = False,
    hosted_keys: bool = False,
) -> Config:
    """Providers aimed at the fakes (hosted ones marked hosted), the gateway block as given."""
    anthropic: dict[str, Any] = {"baseUrl": anthropic_url, "api": "anthropic-messages", "local": False}
    openai: dict[str, Any] = {"baseUrl": f"{openai_url}/v1", "api": "openai-completions", "local": False}
    if hosted_keys:
        anthropic["apiKey"] = ANTHROPIC_KEY
        openai["apiKey"] = OPENAI_KEY
    raw = {
        "models": {
            "providers": {
                "lmstudio": {"baseUrl": lmstudio_url, "api": "lmstudio"},
                "anthropic": anthropic,
                "openai": openai,
            }
        },
        "offload": {
            "embedded": {"enabled": False},
            "localOnly": local_only,
            "gateway": gateway
            or {
                "models": {"gpt-local": {"primary": "lmstudio/auto"}},
                "scenarios": {"background": {"primary": "lmstudio/auto", "fallbacks": ["passthrough"]}},
            },
        },
    }
    return parse_config(raw, env={})


@dataclass
class Stack:
    """The fakes and a gateway in front of them."""

    lmstudio: LMStudioFake
    lmstudio_url: str
    anthropic: AnthropicFake
    openai: OpenAIFake
    gateway: Running
    ledger_path: Path

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return self.gateway.url

    def rows(self, expected: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every ledger row, oldest first, once at least ``expected`` are written (or time is up).

        A streamed answer's last bytes reach the client just before its handler queues the row,
        so this waits on the row count rather than on the response.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.gateway.ledger is not None:
                self.gateway.ledger.flush()
            with Ledger.open_readonly(self.ledger_path) as reader:
                cursor = reader._conn.execute("SELECT * FROM calls ORDER BY id")
                names = [d[0] for d in cursor.description]
                rows = [dict(zip(names, r, strict=True)) for r in cursor]
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.02)


@contextmanager
def stack(
    tmp_path: Path, *, key: str | None = None, lmstudio: LMStudioFake | None = None, **options: Any
) -> Iterator[Stack]:
    """Start the LM Studio, Anthropic and OpenAI fakes and a gateway configured for them."""
    lms = lmstudio or LMStudioFake()
    with (
        lms.serve() as server,
        AnthropicFake(CLAUDE, api_key=ANTHROPIC_KEY) as claude,
        OpenAIFake(GPT, api_key=OPENAI_KEY) as gpt,
    ):
        config = gateway_config(server.url, claude.url, gpt.url, **options)
        path = tmp_path / "usage.sqlite3"
        with running(config, key=key, ledger_path=path) as gw:
            yield Stack(lms, server.url, claude, gpt, gw, path)
