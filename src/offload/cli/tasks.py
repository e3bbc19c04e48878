"""Task commands, one per CLI task of the table: summarize, extract, classify, rewrite, review,
brainstorm, translate, run NAME.

Each command is generated from its ``TaskDef`` (``offload.tasks.table``): its options are the
task's, plus the shared settings. It reads its input from TEXT, ``@FILE`` or stdin (``review``:
a PATH or stdin), runs the task through the router with its quality gate, prints the output
(``--json`` for everything), and says on stderr when a task escalated and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from offload.cli._app import cli, current_config, json_option, note, print_json, run, server_options
from offload.cli._taskopts import given, params, values
from offload.cli.ask import read_prompt
from offload.errors import InputError
from offload.tasks.table import TASKS, TaskDef, settings_on

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from offload.offloader import Offloader
    from offload.tasks.runner import TaskResult

F = TypeVar("F", bound=Callable[..., Any])


def task_options(fn: F) -> F:
    """The options every task command shares: the table's settings, ``--provider``, ``-v``."""
    fn = click.option("-v", "--verbose", is_flag=True, help="Say which model answered.")(fn)
    fn = click.option("--provider", metavar="ID", help="Use only this provider (e.g. embedded, lmstudio).")(
        fn
    )
    fn = params(settings_on("cli"))(fn)
    return json_option(server_options(fn))


def settings(opts: dict[str, Any]) -> dict[str, Any]:
    """The task settings among a command's options (``--provider`` pins the chain to one provider)."""
    chosen = {s.name: opts[s.name] for s in settings_on("cli") if opts.get(s.name) is not None}
    if opts.get("provider"):
        chosen["chain"] = (f"{opts['provider']}/{chosen.pop('model', 'auto')}",)
    return chosen


def execute(opts: dict[str, Any], work: Callable[[Offloader, dict[str, Any]], Awaitable[TaskResult]]) -> None:
    """Run a task with an Offloader built from the command's options, and print the result."""
    from offload.offloader import Offloader

    async def go() -> TaskResult:
        off = Offloader(
            current_config(),
            base_url=opts.get("base_url"),
            api_token=opts.get("api_token"),
            timeout=opts.get("timeout"),
            notify=note,
        )
        async with off:
            return await work(off, settings(opts))

    result = run(go())
    show(result, as_json=bool(opts.get("as_json")), verbose=bool(opts.get("verbose")))


def show(result: TaskResult, *, as_json: bool, verbose: bool) -> None:
    """Print a task result; escalations and remaining problems go to stderr."""
    for reason in result.escalations:
        note(f"offload: escalated {result.task}: {reason}")
    if result.problems:
        note(f"offload: warning: {result.model}'s answer has problems: {'; '.join(result.problems)}")
    if verbose:
        where = "local" if result.local else "hosted"
        note(f"answered by {result.model} ({where}){' after escalation' if result.escalated else ''}")
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(result.text)


def read_input(d: TaskDef, source: str | None) -> tuple[str, str | None]:
    """The task's input and the path it came from (``None``: an argument or stdin)."""
    if d.cli_input == "path" and source and source != "-":
        try:
            return Path(source).read_text(encoding="utf-8"), source
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {source}: {exc}") from exc
    return read_prompt(None if d.cli_input == "path" else source), None


def command(d: TaskDef) -> click.Command:
    """The ``offload <task>`` command of ``d``."""
    options = d.on("cli")

    def callback(source: str | None, **opts: Any) -> None:
        from offload import tasks

        chosen = values(options, opts)
        text, path = read_input(d, source)
        if d.infer is not None:
            ctx = click.get_current_context()
            left = {o.name for o in options if ctx.get_parameter_source(o.name) == ParameterSource.DEFAULT}
            chosen.update({k: v for k, v in d.infer(text, path).items() if k in left})
        execute(opts, lambda off, s: tasks.run_task(d, text, given(chosen), offloader=off, **s))

    fn = params(o for o in options if not o.argument)(task_options(callback))
    fn = click.argument("source", metavar=f"[{d.metavar}]", required=False)(fn)
    fn = params(o for o in options if o.argument)(fn)
    return cli.command(d.name, help=_help(d))(fn)


def _help(d: TaskDef) -> str:
    where = "a file or diff" if d.cli_input == "path" else "the text, or @FILE"
    return f"{d.description}\n\n{d.metavar} is {where}; without it, stdin is read."


COMMANDS = {name: command(d) for name, d in TASKS.items() if "cli" in d.surfaces}
"""The generated commands, by task name."""
