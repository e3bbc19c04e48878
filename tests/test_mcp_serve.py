"""``offload mcp`` around the tools: the HTTP key and bind rules, ``--print-config``, the startup
budget (the SDK is imported only by the command), and one summary on the real embedded engine."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.e2e import offload
from tests.mcp_client import call, connect, text_of

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def test_binding_off_loopback_needs_a_key(tmp_path: Path) -> None:
    run = offload("mcp", "--http", "--host", "0.0.0.0", "--port", "0", "--root", str(tmp_path))
    assert run.code == 2
    assert "without a key" in run.err
    assert "--key" in run.err


async def test_a_key_is_required_when_set(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    async with connect(
        "http", root, "--key", "s3cret", headers={"Authorization": "Bearer s3cret"}
    ) as session:
        listed = await session.list_tools()
        log = (tmp_path / "mcp-http.log").read_text()
        url = log.split("serving Streamable HTTP at ")[1].split()[0]
        headers = {"Accept": "application/json, text/event-stream"}
        missing = httpx.post(url, json=INIT, headers=headers, timeout=30)
        wrong = httpx.post(url, json=INIT, headers={**headers, "Authorization": "Bearer nope"}, timeout=30)
        by_header = httpx.post(url, json=INIT, headers={**headers, "X-API-Key": "s3cret"}, timeout=30)
    assert len(listed.tools) > 10
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert by_header.status_code == 200
    assert "s3cret" not in log


def test_print_config_for_claude() -> None:
    assert offload("mcp", "--print-config", "claude").out.strip() == "claude mcp add offload -- offload mcp"
    http = offload("mcp", "--print-config", "claude", "--http", "--port", "9000", "--key", "k").out.strip()
    assert shlex.split(http) == [
        "claude",
        "mcp",
        "add",
        "--transport",
        "http",
        "offload",
        "http://127.0.0.1:9000/mcp",
        "--header",
        "Authorization: Bearer ${OFFLOAD_MCP_KEY}",
    ]


def test_print_config_for_codex_is_toml() -> None:
    entry = tomllib.loads(offload("mcp", "--print-config", "codex").out)["mcp_servers"]["offload"]
    assert entry["command"] == "offload"
    assert entry["args"] == ["mcp"]
    http = tomllib.loads(offload("mcp", "--print-config", "codex", "--http", "--key", "k").out)
    assert http["mcp_servers"]["offload"]["url"] == "http://127.0.0.1:8765/mcp"
    assert http["mcp_servers"]["offload"]["bearer_token_env_var"] == "OFFLOAD_MCP_KEY"


def test_print_config_for_openclaw(tmp_path: Path) -> None:
    words = shlex.split(offload("mcp", "--print-config", "openclaw", "--root", str(tmp_path)).out)
    assert words[:4] == ["openclaw", "mcp", "set", "offload"]
    assert json.loads(words[4]) == {"command": "offload", "args": ["mcp", "--root", str(tmp_path.resolve())]}


def test_the_key_never_appears_in_printed_config() -> None:
    for target in ("claude", "codex", "openclaw"):
        assert "k3y" not in offload("mcp", "--print-config", target, "--http", "--key", "k3y").out


@pytest.mark.parametrize("args", [["--help"], ["mcp", "--help"], ["skill", "--help"]])
def test_help_does_not_import_the_mcp_sdk(args: list[str]) -> None:
    code = (
        "import sys; from offload.cli import cli\n"
        f"try: cli.main({args!r}, prog_name='offload')\n"
        "except SystemExit: pass\n"
        "print([m for m in ('mcp', 'uvicorn', 'starlette', 'offload.mcpserver') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _down_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.inference
async def test_summarize_a_file_on_the_embedded_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_STUDIO_API_URL", _down_url())  # no LM Studio: the embedded engine answers
    root = tmp_path / "work"
    root.mkdir()
    example = Path(__file__).parent.parent / "examples" / "local-models.txt"
    (root / "doc.txt").write_text(example.read_text())
    async with connect("stdio", root) as session:
        result = await call(session, "summarize", {"paths": ["doc.txt"], "length": "sentence", "gate": "off"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data is not None
    assert data["served_by"].startswith("embedded/")
    assert data["local"] is True
    assert data["text"].strip()
    assert data["tokens"]["output"] > 0
