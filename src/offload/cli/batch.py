"""``offload batch TASK INPUT -o OUTPUT``: one task over a JSONL/CSV file or a directory, resumable.

Subcommands mirror the task commands (summarize, extract, classify, rewrite, review,
brainstorm, translate, ``run NAME``) plus ``ask`` (a raw prompt template). Options shared by
all say where items come from, where results go, and how hard to push the servers. The run
itself is ``offload.batching``; this module parses options and hands the run to
``offload.cli._batch_screen``, which draws progress on stderr, prints the summary and turns
the outcome into an exit code: 0 all done, 13 some items failed, 130 interrupted (the same
command resumes), or the error's own code when the servers or account stopped the run. Only
click is imported at module level (``offload --help`` stays fast).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from offload.cli._app import cli

F = TypeVar("F", bound=Callable[..., Any])
FIELDS_HELP = "String options may use {field} placeholders filled from each item."


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
            "--follow-symlinks",
            is_flag=True,
            help="With a directory INPUT, also read symbolic links that lead out of it.",
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
        click.option(
            "-m", "--model", metavar="REF", help="Model, alias or provider/model to start the chain."
        ),
        click.option("--local-only/--allow-hosted", default=None, help="Never contact a hosted provider."),
        click.option(
            "--gate", type=click.Choice(["off", "checks", "judge"]), help="Quality gate (default: checks)."
        ),
        click.option(
            "--on-fail",
            type=click.Choice(["escalate", "fail", "warn"]),
            help="When the gate fails (default: escalate to the next model).",
        ),
        click.option("--judge", metavar="REF", help="Model that scores answers for --gate judge."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def execute(task: str, task_options: dict[str, Any], opts: dict[str, Any]) -> None:
    """Run the batch with progress and summary; exit with the batch's code."""
    from offload.batching.engine import BatchSpec
    from offload.cli._app import run

    settings = {
        k: opts[k] for k in ("model", "local_only", "gate", "on_fail", "judge") if opts.get(k) is not None
    }
    spec = BatchSpec(
        task=task,
        items=opts["input_path"],
        output=opts["output"],
        options={k: v for k, v in task_options.items() if v is not None},
        settings=settings,
        id_field=opts.get("id_field"),
        text_field=opts.get("text_field") or "text",
        input_format=opts.get("input_format"),
        concurrency=opts.get("concurrency"),
        base_urls=tuple(opts.get("base_urls") or ()),
        cache=not opts.get("no_cache"),
        retry_failed=bool(opts.get("retry_failed")),
        follow_symlinks=bool(opts.get("follow_symlinks")),
        api_token=opts.get("api_token"),
        timeout=opts.get("timeout"),
    )
    from offload.cli._batch_screen import Screen

    screen = Screen(quiet=bool(opts.get("quiet")))
    code = run(screen.drive(spec))
    if code:
        click.get_current_context().exit(code)


def read_schema(path: str | None) -> Any:
    """A JSON Schema file (JSON5 accepted), or ``None``."""
    if not path:
        return None
    from offload.config import parse_json5

    return parse_json5(Path(path).read_text(encoding="utf-8"), Path(path))


@batch_group.command("summarize")
@click.option(
    "-l", "--length", default="paragraph", show_default=True, help="sentence, paragraph, bullets or N."
)
@click.option("--focus", help="What the summaries should concentrate on. " + FIELDS_HELP)
@batch_options
def summarize_cmd(length: str, focus: str | None, **opts: Any) -> None:
    """Summarize every item (long items are split, never cut)."""
    execute("summarize", {"length": length, "focus": focus}, opts)


@batch_group.command("extract")
@click.option(
    "--schema", "schema_path", type=click.Path(exists=True, dir_okay=False), help="JSON Schema file."
)
@click.option("--fields", help="Field list instead of a schema, e.g. 'name, age int, tags list'.")
@batch_options
def extract_cmd(schema_path: str | None, fields: str | None, **opts: Any) -> None:
    """Extract schema-valid JSON from every item."""
    execute("extract", {"schema": read_schema(schema_path), "fields": fields}, opts)


@batch_group.command("classify")
@click.option("--labels", help="Comma-separated labels.")
@click.option("--labels-file", type=click.Path(exists=True, dir_okay=False), help="One label per line.")
@click.option("--multi", is_flag=True, help="Allow several labels.")
@click.option("--confidence", is_flag=True, help="Ask the model how sure it is (0-1).")
@click.option("--instructions", help="Extra guidance on how to decide. " + FIELDS_HELP)
@batch_options
def classify_cmd(
    labels: str | None,
    labels_file: str | None,
    multi: bool,
    confidence: bool,
    instructions: str | None,
    **opts: Any,
) -> None:
    """Classify every item with the given labels."""
    from offload.cli.tasks import read_labels

    chosen = read_labels(labels, labels_file)
    execute(
        "classify",
        {"labels": chosen, "multi": multi, "confidence": confidence, "instructions": instructions},
        opts,
    )


@batch_group.command("rewrite")
@click.option("--how", "instruction", required=True, help="How to rewrite. " + FIELDS_HELP)
@batch_options
def rewrite_cmd(instruction: str, **opts: Any) -> None:
    """Rewrite every item as instructed."""
    execute("rewrite", {"instruction": instruction}, opts)


@batch_group.command("review")
@click.option("--focus", help="What to look for. " + FIELDS_HELP)
@click.option("--kind", default="code", show_default=True, help="What the items are (code, diff, text…).")
@batch_options
def review_cmd(focus: str | None, kind: str, **opts: Any) -> None:
    """First-pass review of every item (files, diffs)."""
    execute("review", {"focus": focus, "kind": kind}, opts)


@batch_group.command("brainstorm")
@click.option(
    "-n", "--count", type=click.IntRange(1, 50), default=5, show_default=True, help="Ideas per item."
)
@batch_options
def brainstorm_cmd(count: int, **opts: Any) -> None:
    """Ideas for every item's topic."""
    execute("brainstorm", {"count": count}, opts)


@batch_group.command("translate")
@click.option("--to", "target", required=True, help="Target language. " + FIELDS_HELP)
@click.option("--from", "source_language", help="Source language, if the model should not guess.")
@batch_options
def translate_cmd(target: str, source_language: str | None, **opts: Any) -> None:
    """Translate every item."""
    execute("translate", {"target": target, "source_language": source_language}, opts)


@batch_group.command("run")
@click.argument("name")
@click.option(
    "--var", "variables", multiple=True, metavar="KEY=VALUE", help="Template variable (repeatable)."
)
@batch_options
def run_cmd(name: str, variables: tuple[str, ...], **opts: Any) -> None:
    """The user task NAME on every item; fields fill its variables.

    NAME is a template in <config dir>/tasks/NAME.json5.
    """
    from offload.batching.jobs import BUILTIN

    if name in BUILTIN or name == "ask":
        raise click.UsageError(f"{name} is a built-in task: use offload batch {name}")
    pairs: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--var expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    execute(name, {"variables": pairs}, opts)


@batch_group.command("ask")
@click.option(
    "-p",
    "--prompt",
    default="{text}",
    show_default=True,
    help="Prompt template: {text}, {id} and any field of the item.",
)
@click.option("-s", "--system", help="System prompt. " + FIELDS_HELP)
@click.option("--max-output-tokens", type=click.IntRange(min=1), help="Cap on each answer's length.")
@click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature.")
@click.option(
    "--schema", "schema_path", type=click.Path(exists=True, dir_okay=False), help="Answer as this JSON."
)
@batch_options
def ask_cmd(
    prompt: str,
    system: str | None,
    max_output_tokens: int | None,
    temperature: float | None,
    schema_path: str | None,
    **opts: Any,
) -> None:
    """A raw prompt template for every item: {text}, {id}, any field."""
    execute(
        "ask",
        {
            "prompt": prompt,
            "system": system,
            "max_output_tokens": max_output_tokens,
            "temperature": temperature,
            "schema": read_schema(schema_path),
        },
        opts,
    )
