"""``offload mcp``: offload's tasks as MCP tools that read the files themselves.

``files`` confines and reads the paths a call names, ``fence`` marks inputs as untrusted
data, ``service`` does each tool's work (no MCP types), ``results`` shapes what a call
returns, ``progress`` sends notifications during long calls, ``batches`` keeps background
batch jobs, ``catalog`` lists the tools (schemas from the task table), and ``server`` puts
them on the official SDK's ``MCPServer`` over stdio or Streamable HTTP. This package is
imported only by ``offload mcp`` (the SDK is heavy); it is not named ``mcp`` so it can never
shadow the SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offload.config import Config


async def run(
    config: Config,
    root: Path,
    *,
    http: bool = False,
    host: str = "127.0.0.1",
    port: int = 8765,
    key: str | None = None,
    max_bytes: int | None = None,
    heartbeat: float | None = None,
) -> None:
    """Serve offload's tools until the client disconnects (stdio) or the process is stopped (HTTP)."""
    from offload.mcpserver.catalog import tools
    from offload.mcpserver.files import DEFAULT_MAX_BYTES, Root
    from offload.mcpserver.progress import HEARTBEAT
    from offload.mcpserver.server import build, check_bind, serve_http
    from offload.mcpserver.service import Service
    from offload.tasks.templates import available

    if http:
        check_bind(host, key)
    service = Service(config, Root(root, max_bytes=max_bytes or DEFAULT_MAX_BYTES))
    try:
        server = build(tools(service, available()), heartbeat=heartbeat or HEARTBEAT)
        if http:
            await serve_http(server, host, port, key)
        else:
            await server.run_stdio_async()
    finally:
        await service.aclose()
