"""The gateway in front of the embedded llama.cpp engine (real inference, marked ``inference``).

What is asserted is text a model wrote, so only its shape: non-empty, usage counted, one row.
"""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest

from offload.config import parse_config
from offload.gateway import running
from offload.ledger import Ledger

pytestmark = pytest.mark.inference


def test_background_work_on_the_embedded_engine(tmp_path: Path) -> None:
    config = parse_config(
        {
            "models": {
                "mode": "replace",
                "providers": {"embedded": {"baseUrl": "in-process", "api": "embedded"}},
            },
            "offload": {
                "gateway": {"scenarios": {"background": "embedded/auto", "default": "embedded/auto"}}
            },
        },
        env={},
    )
    path = tmp_path / "usage.sqlite3"
    with running(config, ledger_path=path) as gw:
        claude = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=300)
        message = claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=30,
            messages=[{"role": "user", "content": "Give a short title for: fixing a parser bug"}],
        )
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "Say hello."}]
        ) as stream:
            streamed = stream.get_final_text()
        chat = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0, timeout=300)
        completion = chat.chat.completions.create(
            model="any-name", max_tokens=20, messages=[{"role": "user", "content": "Say hi."}]
        )
    with Ledger.open_readonly(path) as reader:
        rows = reader.recent(10)
    assert message.content[0].type == "text"
    assert message.content[0].text.strip()
    assert message.usage.output_tokens > 0
    assert streamed.strip()
    assert (completion.choices[0].message.content or "").strip()
    assert len(rows) == 3
    assert {r.provider for r in rows} == {"embedded"}
