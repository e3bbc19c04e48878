"""``offload serve``: run the gateway, or print what to set to point an agent at it (``--print-env``).

aiohttp and the gateway package are imported inside the command so ``offload --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from offload.cli._app import cli, current_config, note, run

if TYPE_CHECKING:
    from offload.config import Config

DEFAULT_HAIKU = "claude-haiku-4-5"


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=4141, show_default=True, help="Port.")
@click.option(
    "--key",
    envvar="OFFLOAD_GATEWAY_KEY",
    metavar="KEY",
    help="Key clients must send (x-api-key or bearer); required off loopback. Default: $OFFLOAD_GATEWAY_KEY.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    help="Config file for the gateway (same as `offload --config PATH serve`).",
)
@click.option(
    "--print-env",
    type=click.Choice(["claude", "codex", "openclaw"]),
    help="Print the settings that point Claude Code, Codex or OpenClaw at this gateway, then exit.",
)
def serve_cmd(host: str, port: int, key: str | None, config_file: str | None, print_env: str | None) -> None:
    """Serve Anthropic and OpenAI APIs locally: background work on local models, the rest passed through.

    \b
    Endpoints: POST /v1/messages, /v1/chat/completions, /v1/responses; GET /v1/models, /health,
    /metrics. Routing: offload.gateway in the config (see `offload config init`).
    """
    if config_file:
        from offload.config import load_config

        config = load_config(config_file)
    else:
        config = current_config()
    shown = f"[{host}]" if ":" in host else host
    if print_env:
        click.echo(env_text(print_env, f"http://{shown}:{port}", config, key))
        return
    run(_serve(config, host, port, key))


async def _serve(config: Config, host: str, port: int, key: str | None) -> None:
    import asyncio
    import signal

    from offload.gateway.server import start_gateway

    handle = await start_gateway(config, host=host, port=port, key=key)
    click.echo(f"offload gateway listening on {handle.url}", err=False)
    note(f'  Claude Code: eval "$(offload serve --print-env claude --port {port})"   stop: Ctrl-C')
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await handle.close()
        note("offload gateway stopped")


def _haiku_name(config: Config) -> str:
    return next((n for n in config.settings.gateway.models if "haiku" in n), DEFAULT_HAIKU)


def env_text(client: str, url: str, config: Config, key: str | None) -> str:
    """What to set for ``client`` to use the gateway at ``url``."""
    if client == "claude":
        haiku = _haiku_name(config)
        lines = [
            f"export ANTHROPIC_BASE_URL={url}",
            f"export ANTHROPIC_DEFAULT_HAIKU_MODEL={haiku}",
            f"export ANTHROPIC_SMALL_FAST_MODEL={haiku}",
            "export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
            "export API_TIMEOUT_MS=600000",
        ]
        if key:
            lines.append('export ANTHROPIC_API_KEY="$OFFLOAD_GATEWAY_KEY"   # offload holds the real key')
        return "\n".join(lines)
    if client == "codex":
        lines = [
            "# ~/.codex/config.toml",
            'model_provider = "offload"',
            "",
            "[model_providers.offload]",
            'name = "offload"',
            f'base_url = "{url}/v1"',
            'wire_api = "responses"',
        ]
        lines.append('env_key = "OFFLOAD_GATEWAY_KEY"' if key else 'env_key = "OPENAI_API_KEY"')
        return "\n".join(lines)
    from offload.gateway.models import model_list

    windows = model_list(config).windows
    models = [
        {"id": name, "name": name, "contextWindow": window}
        for name, window in windows.items()
        if window is not None and window >= 16_000
    ]
    provider = {
        "baseUrl": f"{url}/v1",
        "apiKey": "${OFFLOAD_GATEWAY_KEY}" if key else "offload",
        "api": "openai-completions",
        "models": models,
    }
    return "// openclaw.json: models.providers.offload\n" + json.dumps(
        {"models": {"providers": {"offload": provider}}}, indent=2
    )
