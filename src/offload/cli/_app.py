"""The command-line shell: the click group, shared options, output helpers and the one error handler.

Commands stay thin: parse options, call the library, print text or ``--json``. Library errors
become one ``error: …`` line (plus the remedy) on stderr and the error's documented exit code,
here and nowhere else. Heavy modules are imported inside commands so ``offload --help`` is fast.
"""

from __future__ import annotations

import contextlib
import json
import os
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
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except BrokenPipeError:
            quiet_broken_pipe()
            ctx.exit(0)
        except Exception as exc:
            if os.environ.get("OFFLOAD_DEBUG"):
                raise
            fail(unexpected(exc))
            ctx.exit(1)


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
    from offload import redact
    from offload.settings import lmstudio_token, lmstudio_url

    provider = current_config().providers.get("lmstudio")
    url = base_url or (provider.base_url if provider else None)
    token = api_token or (provider.api_key if provider else None)
    redact.register(token)
    redact.register_url(url)
    return lmstudio_url(url), lmstudio_token(token)


def server_options(fn: F) -> F:
    """Add ``--base-url``, ``--api-token`` (LM Studio address and token) and ``--timeout``."""
    fn = click.option(
        "--timeout",
        type=FiniteFloatRange(min=0.1),
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


def unexpected(exc: BaseException) -> str:
    """One line for an exception no command turned into an ``OffloadError``."""
    import sqlite3

    if isinstance(exc, BrokenPipeError):
        return "the output pipe was closed"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}\n  → check free space and permissions there"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the usage ledger cannot be used ({exc})\n  → see `offload stats` for how to recover"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to process"
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    return (
        f"unexpected {type(exc).__name__}{': ' + detail if detail else ''}\n"
        "  → please report it; run with OFFLOAD_DEBUG=1 to see the traceback"
    )


def quiet_broken_pipe() -> None:
    """The reader of stdout went away (``| head``): stop writing without a second error at exit."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


class FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that also refuses ``nan`` and ``inf``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert, then reject values that are not finite numbers."""
        import math

        number = super().convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a command, saying on stderr when a keep-warm load
    runs first ("loading model …"; ``offload load`` and streams show their own progress)."""
    import asyncio

    from offload import loading

    def say(event: loading.LoadEvent) -> None:
        if event.note:
            note(event.note)
        elif event.how == "keep-warm":
            note(event.describe())

    stop = loading.subscribe(say)
    try:
        return asyncio.run(coro)
    finally:
        stop()


def fail(message: str) -> None:
    """Print an error message on stderr (secrets masked)."""
    from offload import redact

    click.echo(f"error: {redact.text(message)}", err=True)


def note(message: str) -> None:
    """Print a notice on stderr (never mixed into stdout answers; secrets masked)."""
    from offload import redact

    click.echo(redact.text(message), err=True)


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
