"""offload's tools on the official MCP SDK (``MCPServer``), served over stdio or Streamable HTTP.

``build`` turns each ``ToolDef`` (name, description, input JSON Schema, handler) into an SDK
tool whose published schema is exactly ours; arguments are checked against it with
``jsonschema`` before the handler runs. A handler's result goes back as structured content
and as text; a failure (``OffloadError``, a refused path, bad arguments, even an unexpected
exception) goes back as a tool error (``isError``) and the server keeps serving. Long calls
send progress notifications (``progress.reporting``).

``serve_http`` adds the gateway's rule for the network: loopback by default, and a key
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) required to bind any other address.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from offload import __version__
from offload.errors import InputError, OffloadError
from offload.mcpserver import results
from offload.mcpserver.progress import HEARTBEAT, reporting

LOG = logging.getLogger("offload.mcp")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
Handler = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]
INSTRUCTIONS = (
    "offload runs work on local models instead of a paid API. Give files as 'paths' (relative to the "
    "server's root) rather than pasting their text: offload reads them itself, so you never pay to read "
    "them. Results say which model served them and what was saved. Use it for summaries, extraction, "
    "classification, rewriting, first-pass review and brainstorming; keep final decisions yourself."
)


@dataclass(frozen=True)
class ToolDef:
    """One tool: what it is called, what it takes, and the handler that does the work."""

    name: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    output_schema: dict[str, Any] | None = None
    task_result: bool = False
    """True for task tools: their text is the output plus a served-by/savings line."""
    read_only: bool = True


class _Arguments(ArgModelBase):
    """Passes every argument through; our own JSON Schema validates them."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def build(tools: list[ToolDef], *, name: str = "offload", heartbeat: float = HEARTBEAT) -> MCPServer[Any]:
    """An ``MCPServer`` serving ``tools`` (progress at least every ``heartbeat`` seconds)."""
    return MCPServer(
        name,
        version=__version__,
        instructions=INSTRUCTIONS,
        tools=[_sdk_tool(t, heartbeat) for t in tools],
        log_level="WARNING",
    )


def _sdk_tool(defn: ToolDef, heartbeat: float) -> Tool:
    validator = Draft202012Validator(defn.input_schema)

    async def call(ctx: Context[Any, Any], **args: Any) -> CallToolResult:
        problems = sorted(validator.iter_errors(args), key=lambda e: list(e.absolute_path))
        if problems:
            said = "; ".join(f"{_where(e)}: {e.message}" for e in problems[:5])
            return error_result(InputError(f"invalid arguments for {defn.name}: {said}"))

        async def send(step: float, message: str) -> None:
            await ctx.report_progress(step, None, message)

        try:
            async with reporting(send, f"{defn.name}: started", heartbeat=heartbeat):
                payload = await defn.handler(args)
        except OffloadError as exc:
            return error_result(exc)
        except Exception as exc:  # a tool error, never a crashed server
            LOG.exception("tool %s failed unexpectedly", defn.name)
            return error_result(OffloadError(f"{defn.name} failed unexpectedly: {type(exc).__name__}: {exc}"))
        text = results.render(payload) if defn.task_result else str(payload.pop("text", "")) or _json(payload)
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload)

    return Tool(
        fn=call,
        name=defn.name,
        title=None,
        description=defn.description,
        parameters=defn.input_schema,
        fn_metadata=FuncMetadata(arg_model=_Arguments, output_schema=defn.output_schema),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(read_only_hint=defn.read_only, open_world_hint=False),
    )


def _where(error: ValidationError) -> str:
    return ".".join(map(str, error.absolute_path)) or "arguments"


def error_result(exc: OffloadError) -> CallToolResult:
    """A tool error: the message (and remedy) as text, the error kind as structured content."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"error: {exc}")],
        structured_content={"error": {"kind": exc.kind, "message": exc.message, "remedy": exc.remedy}},
        is_error=True,
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# --- HTTP ------------------------------------------------------------------------------------


def check_bind(host: str, key: str | None) -> None:
    """Loopback by default; any other address needs a key."""
    if host not in LOOPBACK and not key:
        raise InputError(
            f"refusing to serve MCP on {host} without a key: anyone who can reach it could use your models",
            remedy="add --key KEY (or set OFFLOAD_MCP_KEY), or serve on 127.0.0.1",
        )


class KeyCheck:
    """ASGI middleware: HTTP requests must carry the key (``Bearer`` or ``X-API-Key``)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(dict(scope.get("headers") or [])):
            body = json.dumps({"error": "missing or wrong key (send Authorization: Bearer KEY)"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _allowed(self, headers: dict[bytes, bytes]) -> bool:
        auth = headers.get(b"authorization", b"")
        given = auth[7:].strip() if auth[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        return hmac.compare_digest(given, self.key)


async def serve_http(server: MCPServer[Any], host: str, port: int, key: str | None) -> None:
    """Serve Streamable HTTP at ``/mcp`` until cancelled; says the address on stderr once bound."""
    import asyncio

    import uvicorn

    check_bind(host, key)
    app: ASGIApp = server.streamable_http_app(host=host)
    if key:
        app = KeyCheck(app, key)
    web = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(web.serve())
    while not web.started and not task.done():
        await asyncio.sleep(0.05)
    if web.started:
        bound = web.servers[0].sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"offload mcp: serving Streamable HTTP at http://{shown}:{bound}/mcp", file=sys.stderr, flush=True
        )
    await task
