"""The command-line shell: the click group, shared options, output helpers and the one error handler.

Commands stay thin: parse options, call the library, print text or ``--json``. Library errors
become one ``error: …`` line (plus the remedy) on stderr and the error's documented exit code,
here and nowhere else. Heavy modules are imported inside commands so ``offload --help`` is fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from offload import __version__
from offload.errors import OffloadError

if TYPE_CHECKING:
    from offload.config import Config

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = """\b
Exit codes:
  0  success
  1  other error (message on stderr)
  2  usage, config or input error
  3  server unreachable / engine unavailable
  4  authentication failed (token missing or rejected)
  5  model not found, or none fits the request
  6  context overflow (prompt larger than the model's context)
  7  timeout
  8  server error, rate limit or unreadable reply
  9  request rejected (invalid request, unknown previous_response_id)
  10 every candidate model failed (routing)
  11 local-only mode refused a hosted model
  12 quality gate failed
  13 batch finished with failed items
  130 interrupted (Ctrl-C)"""


class OffloadGroup(click.Group):
    """A click group that turns ``OffloadError`` into one clear line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; map library errors to messages and exit codes."""
        try:
            return super().invoke(ctx)
        except OffloadError as exc:
            fail(str(exc))
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted")
            ctx.exit(130)


@click.group(cls=OffloadGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="offload")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (JSON5, OpenClaw's shape; default: $OFFLOAD_CONFIG or the user config dir).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Offload LLM work to local models (LM Studio, llama.cpp, any OpenAI-compatible server)."""
    ctx.obj = {"config_path": config_path}


def current_config() -> Config:
    """The config for this invocation (loaded once, from ``--config`` or the default place)."""
    from offload.config import load_config

    ctx = click.get_current_context()
    root = ctx.find_root()
    root.obj = root.obj or {}
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj.get("config_path"))
    config: Config = root.obj["config"]
    return config


def lmstudio_address(base_url: str | None, api_token: str | None) -> tuple[str, str | None]:
    """LM Studio's URL and token: flag > config file > environment > default."""
    from offload.settings import lmstudio_token, lmstudio_url

    provider = current_config().providers.get("lmstudio")
    url = base_url or (provider.base_url if provider else None)
    token = api_token or (provider.api_key if provider else None)
    return lmstudio_url(url), lmstudio_token(token)


def server_options(fn: F) -> F:
    """Add ``--base-url``, ``--api-token`` (LM Studio address and token) and ``--timeout``."""
    fn = click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        metavar="SECONDS",
        help="Read timeout per request (default 600: first calls may load a model).",
    )(fn)
    fn = click.option(
        "--api-token",
        metavar="TOKEN",
        help="LM Studio API token (default: $LM_API_TOKEN or $LMSTUDIO_API_TOKEN; sent only when set).",
    )(fn)
    return click.option(
        "--base-url",
        metavar="URL",
        help="LM Studio server address (default: $LM_STUDIO_API_URL or http://127.0.0.1:1234).",
    )(fn)


def json_option(fn: F) -> F:
    """Add ``--json`` (machine-readable output on stdout)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a command, saying on stderr when a keep-warm load
    runs first ("loading model …"; ``offload load`` and streams show their own progress)."""
    import asyncio

    from offload import loading

    stop = loading.subscribe(lambda e: note(e.describe()) if e.how == "keep-warm" else None)
    try:
        return asyncio.run(coro)
    finally:
        stop()


def fail(message: str) -> None:
    """Print an error message on stderr."""
    click.echo(f"error: {message}", err=True)


def note(message: str) -> None:
    """Print a notice on stderr (never mixed into stdout answers)."""
    click.echo(message, err=True)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def stderr_is_tty() -> bool:
    """True when stderr is an interactive terminal (progress may redraw lines)."""
    return sys.stderr.isatty()
