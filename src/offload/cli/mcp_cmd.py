"""``offload mcp``: serve offload's tasks as MCP tools (stdio or Streamable HTTP), or print how an
agent registers them (``--print-config claude|codex|openclaw``).

The MCP SDK is imported only when the server starts, so ``offload --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from offload.cli._app import cli, current_config, note, run
from offload.errors import ConfigError

TARGETS = ("claude", "codex", "openclaw")
KEY_VAR = "OFFLOAD_MCP_KEY"


@cli.command("mcp")
@click.option("--http", "http", is_flag=True, help="Serve Streamable HTTP at /mcp instead of stdio.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address for --http (loopback by default)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port for --http."
)
@click.option(
    "--key",
    envvar=KEY_VAR,
    metavar="KEY",
    help=f"Key clients must send (Authorization: Bearer KEY); required off loopback (or ${KEY_VAR}).",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    help="Directory the tools may read (default: the current directory).",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    metavar="N",
    help="Most bytes of files one tool call reads (default 2000000).",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Send a progress notification at least this often during a call (default 5).",
)
@click.option(
    "--print-config",
    "print_config",
    type=click.Choice(TARGETS),
    help="Print how to register this server with an agent, and exit.",
)
def mcp_cmd(
    http: bool,
    host: str,
    port: int,
    key: str | None,
    root: str | None,
    max_bytes: int | None,
    heartbeat: float | None,
    print_config: str | None,
) -> None:
    """Serve offload's tasks as MCP tools that read the files themselves (stdio by default)."""
    if print_config:
        click.echo(registration(print_config, http=http, host=host, port=port, key=bool(key), root=root))
        return
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        raise ConfigError(
            "offload mcp needs the MCP SDK, which is not installed", remedy="pip install 'offload[mcp]'"
        )
    from offload import mcpserver

    where = Path(root) if root else Path.cwd()
    if not http:
        note(f"offload mcp: serving on stdio; tools read files under {where.resolve()}")
    server = mcpserver.run(
        current_config(),
        where,
        http=http,
        host=host,
        port=port,
        key=key,
        max_bytes=max_bytes,
        heartbeat=heartbeat,
    )
    run(server)


def registration(target: str, *, http: bool, host: str, port: int, key: bool, root: str | None) -> str:
    """The command or config entry that registers this server with ``target`` (never the key itself)."""
    import json
    import shlex

    args = ["mcp", *(["--root", str(Path(root).resolve())] if root else [])]
    url = f"http://{host}:{port}/mcp"
    auth = f"Bearer ${{{KEY_VAR}}}"
    if target == "claude":
        if http:
            header = f" --header {shlex.quote('Authorization: ' + auth)}" if key else ""
            return f"claude mcp add --transport http offload {url}{header}"
        return "claude mcp add offload -- " + shlex.join(["offload", *args])
    if target == "codex":
        lines = ["[mcp_servers.offload]"]
        if http:
            lines.append(f"url = {json.dumps(url)}")
            if key:
                lines.append(f"bearer_token_env_var = {json.dumps(KEY_VAR)}")
        else:
            lines += ['command = "offload"', f"args = {json.dumps(args)}"]
        lines.append("tool_timeout_sec = 600")
        return "\n".join(lines)
    entry: dict[str, object] = (
        {"url": url, "transport": "streamable-http"} if http else {"command": "offload", "args": args}
    )
    if http and key:
        entry["headers"] = {"Authorization": auth}
    return f"openclaw mcp set offload {shlex.quote(json.dumps(entry))}"
