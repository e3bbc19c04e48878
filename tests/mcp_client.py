"""Helpers for MCP end-to-end tests: start ``offload mcp`` for real and connect the official client.

``connect("stdio", root)`` spawns ``offload mcp --root ROOT`` as the SDK's stdio client does;
``connect("http", root)`` starts ``offload mcp --http --port 0`` and connects over Streamable
HTTP to the address it prints. Both yield an initialized ``ClientSession``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.client import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

SERVER = [sys.executable, "-m", "offload", "mcp"]
URL = re.compile(r"serving Streamable HTTP at (\S+)")
CALL_TIMEOUT = 240.0


@asynccontextmanager
async def connect(
    kind: str, root: Path, *args: str, log: Path | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized client session to a fresh ``offload mcp`` serving ``root``."""
    log = log or root.parent / f"mcp-{kind}.log"
    with log.open("a") as errlog:
        if kind == "stdio":
            params = StdioServerParameters(
                command=SERVER[0], args=[*SERVER[1:], "--root", str(root), *args], env=dict(os.environ)
            )
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                yield s
            return
        proc = subprocess.Popen(
            [*SERVER, "--http", "--port", "0", "--root", str(root), *args], stderr=errlog, stdout=errlog
        )
        try:
            url = await _address(log, proc)
            async with _http(url, headers) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                yield s
        finally:
            proc.terminate()
            proc.wait(timeout=60)


@asynccontextmanager
async def _http(url: str, headers: dict[str, str] | None) -> AsyncIterator[Any]:
    if not headers:
        async with streamable_http_client(url) as streams:
            yield streams
        return
    import httpx2

    async with (
        httpx2.AsyncClient(headers=headers, timeout=CALL_TIMEOUT) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


async def _address(log: Path, proc: subprocess.Popen[bytes]) -> str:
    """The URL the HTTP server printed once bound (fails if it exits first)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = URL.search(log.read_text())
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"offload mcp --http exited with {proc.returncode}: {log.read_text()}")
        await anyio.sleep(0.1)
    raise AssertionError(f"offload mcp --http did not start: {log.read_text()}")


class Progress:
    """A progress callback that keeps every notification."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.seen]


async def call(
    session: ClientSession, tool: str, args: dict[str, Any], progress: Progress | None = None
) -> CallToolResult:
    """Call ``tool``; fails the test if the result is not a ``CallToolResult``."""
    result = await session.call_tool(
        tool, args, read_timeout_seconds=CALL_TIMEOUT, progress_callback=progress
    )
    assert isinstance(result, CallToolResult)
    return result


def text_of(result: CallToolResult) -> str:
    """The text content of a result."""
    return "\n".join(getattr(c, "text", "") for c in result.content)


def tool_names(listed: Sequence[Any]) -> list[str]:
    """Names of listed tools."""
    return [t.name for t in listed]
