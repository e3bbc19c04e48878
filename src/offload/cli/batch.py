"""``offload batch TASK INPUT -o OUTPUT``: one task over a JSONL/CSV file or a directory, resumable.

Subcommands are generated from the task table (``offload.tasks.table``): every batch task
(summarize, extract, classify, rewrite, review, brainstorm, translate, ``run NAME``, and ``ask``,
a raw prompt template) with the table's options. Options shared by
all say where items come from, where results go, and how hard to push the servers. The run
itself is ``offload.batching``; this module parses options and hands the run to
``offload.cli._batch_screen``, which draws progress on stderr, prints the summary and turns
the outcome into an exit code: 0 all done, 13 some items failed, 130 interrupted (the same
command resumes), or the error's own code when the servers or account stopped the run. Only
click is imported at module level (``offload --help`` stays fast).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from offload.cli._app import cli
from offload.cli._taskopts import given, params, values
from offload.tasks.table import TASKS, TaskDef, settings_on

F = TypeVar("F", bound=Callable[..., Any])


@cli.group("batch")
def batch_group() -> None:
    """Run a task over many items: INPUT is JSONL, CSV/TSV or a directory; OUTPUT is JSONL.

    \b
      offload batch summarize items.jsonl -o out.jsonl --length sentence
      offload batch translate docs/ -o de.jsonl --to German
      offload batch ask rows.csv -o out.jsonl --prompt "Title for: {text}"

    Each output line holds the item's id, output, model, tokens and error (null when it
    succeeded). Rerunning the same command skips ids already in OUTPUT, so an interrupted or
    killed run resumes where it stopped. OUTPUT must be a new or empty file or an earlier run's
    output (anything else is refused, untouched); -o - streams the lines to stdout with no
    resume. Exit code 13 when some items failed.
    """


def batch_options(fn: F) -> F:
    """The options every ``offload batch`` subcommand shares."""
    options = [
        click.argument("input_path", metavar="INPUT"),
        click.option(
            "-o",
            "--output",
            required=True,
            type=click.Path(dir_okay=False, allow_dash=True),
            help="JSONL file of results: new, empty, or an earlier run's (resumed); '-' streams to stdout "
            "(no resume).",
        ),
        click.option(
            "--id-field", metavar="NAME", help="Field holding each item's id (default: id, else line)."
        ),
        click.option(
            "--text-field", default="text", show_default=True, metavar="NAME", help="Field holding the text."
        ),
        click.option(
            "--format",
            "input_format",
            type=click.Choice(["jsonl", "csv", "tsv", "dir"]),
            help="Input format (default: from the path).",
        ),
        click.option(
            "-c",
            "--concurrency",
            type=click.IntRange(min=1),
            help="Requests in flight per server (default: the server's slot count, else probed).",
        ),
        click.option(
            "--base-url",
            "base_urls",
            multiple=True,
            metavar="URL",
            help="Server address; repeat for several servers (default: the config's baseUrl(s)).",
        ),
        click.option("--api-token", metavar="TOKEN", help="LM Studio API token."),
        click.option(
            "--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS", help="Read timeout per request."
        ),
        click.option(
            "--no-cache", is_flag=True, help="Recompute every item (results still refresh the cache)."
        ),
        click.option(
            "--retry-failed", is_flag=True, help="Run again the items whose line in OUTPUT has an error."
        ),
        click.option("-q", "--quiet", is_flag=True, help="No progress, notices or summary on stderr."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return params(settings_on("batch"))(fn)


def execute(task: str, task_options: dict[str, Any], opts: dict[str, Any]) -> None:
    """Run the batch with progress and summary; exit with the batch's code."""
    from offload.batching.engine import BatchSpec
    from offload.cli._app import run

    settings = {s.name: opts[s.name] for s in settings_on("batch") if opts.get(s.name) is not None}
    spec = BatchSpec(
        task=task,
        items=opts["input_path"],
        output=opts["output"],
        options=given(task_options),
        settings=settings,
        id_field=opts.get("id_field"),
        text_field=opts.get("text_field") or "text",
        input_format=opts.get("input_format"),
        concurrency=opts.get("concurrency"),
        base_urls=tuple(opts.get("base_urls") or ()),
        cache=not opts.get("no_cache"),
        retry_failed=bool(opts.get("retry_failed")),
        api_token=opts.get("api_token"),
        timeout=opts.get("timeout"),
    )
    from offload.cli._batch_screen import Screen

    screen = Screen(quiet=bool(opts.get("quiet")))
    code = run(screen.drive(spec))
    if code:
        click.get_current_context().exit(code)


def command(d: TaskDef) -> click.Command:
    """The ``offload batch <task>`` command of ``d`` (``run NAME`` names a user template)."""
    options = d.on("batch")

    def callback(**opts: Any) -> None:
        chosen = values(options, opts)
        if d.resolve is None:
            execute(d.name, chosen, opts)
            return
        name = str(chosen.pop("name"))
        if name in TASKS:
            raise click.UsageError(f"{name} is a built-in task: use offload batch {name}")
        execute(name, chosen, opts)

    fn = params((o for o in options if not o.argument), per_item=True)(batch_options(callback))
    fn = params(o for o in options if o.argument)(fn)
    return batch_group.command(d.name, help=f"{d.description}\n\nRuns on every item of INPUT.")(fn)


COMMANDS = {name: command(d) for name, d in TASKS.items() if "batch" in d.surfaces}
"""The generated commands, by task name."""
