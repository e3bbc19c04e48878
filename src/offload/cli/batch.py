"""``offload batch TASK INPUT -o OUTPUT``: one task over a JSONL/CSV file or a directory, resumable.

Subcommands mirror the task commands (summarize, extract, classify, rewrite, review,
brainstorm, translate, ``run NAME``) plus ``ask`` (a raw prompt template). Options shared by
all say where items come from, where results go, and how hard to push the servers. The run
itself is ``offload.batching``; this module parses options, draws progress on stderr, prints
the summary, and turns the outcome into an exit code: 0 all done, 13 some items failed,
130 interrupted (the same command resumes), or the error's own code when the servers or
account stopped the run. Only click is imported at module level (``offload --help`` stays fast).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from offload.cli._app import cli, current_config, note

if TYPE_CHECKING:
    from offload.batching.engine import Batch
    from offload.batching.progress import ProgressBar
    from offload.batching.rows import ItemResult

F = TypeVar("F", bound=Callable[..., Any])
SHOWN_FAILURES = 10
SHOWN_PROBLEMS = 20
EXIT_FAILED = 13
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
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
    killed run resumes where it stopped. Exit code 13 when some items failed.
    """


def batch_options(fn: F) -> F:
    """The options every ``offload batch`` subcommand shares."""
    options = [
        click.argument("input_path", metavar="INPUT"),
        click.option(
            "-o", "--output", required=True, type=click.Path(dir_okay=False), help="JSONL file of results."
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
        api_token=opts.get("api_token"),
        timeout=opts.get("timeout"),
    )
    screen = Screen(quiet=bool(opts.get("quiet")))
    code = run(screen.drive(spec))
    if code:
        click.get_current_context().exit(code)


class Screen:
    """Drives one batch from the command line: signals, progress, failures, summary, exit code."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: ProgressBar | None = None
        self.failures = 0
        self.signal: int | None = None

    def say(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.note(message)
        else:
            note(message)

    async def drive(self, spec: Any) -> int:
        import asyncio
        import signal

        from offload.batching.engine import Batch
        from offload.errors import OffloadError

        batch = Batch(spec, config=current_config(), notify=self.say, on_ready=self.ready)
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self.stop, batch, sig)
        error: OffloadError | None = None
        try:
            async for result in batch:
                self.item(result)
        except OffloadError as exc:
            if batch.aborted is not exc:
                raise
            error = exc
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if self.bar is not None:
                await self.bar.stop()
        return self.finish(batch, error)

    def stop(self, batch: Batch, sig: int) -> None:
        """First signal: stop cleanly; a second one exits at once (the output is always consistent)."""
        import os
        import signal

        if self.signal is not None:
            os._exit(EXIT_TERMINATED if sig == signal.SIGTERM else EXIT_INTERRUPTED)
        self.signal = sig
        self.say("offload: stopping — items in flight are cancelled and will run on resume")
        batch.interrupt()

    def ready(self, batch: Batch) -> None:
        from offload.batching.progress import ProgressBar

        for problem in batch.problems[:SHOWN_PROBLEMS]:
            self.say(f"offload: input {problem}")
        if len(batch.problems) > SHOWN_PROBLEMS:
            self.say(f"offload: … and {len(batch.problems) - SHOWN_PROBLEMS} more unreadable input lines")
        for line in server_lines(batch):
            self.say(f"offload: server {line}")
        if not self.quiet:
            self.bar = ProgressBar(batch.tally)
            self.bar.start()

    def item(self, result: ItemResult) -> None:
        if result.ok:
            return
        self.failures += 1
        error = result.row.get("error") or {}
        if self.failures <= SHOWN_FAILURES:
            self.say(f"offload: item {result.id} failed: {error.get('kind')}: {error.get('message')}")
        elif self.failures == SHOWN_FAILURES + 1:
            self.say("offload: further failures are not shown (their lines in OUTPUT carry the error)")

    def finish(self, batch: Batch, error: Any) -> int:
        import signal

        from offload.batching.progress import summary_lines

        interrupted = batch.interrupted
        stopped = None
        if interrupted:
            stopped = "interrupted — run the same command again to resume"
        elif error is not None:
            stopped = f"{error.kind}: {error.message} — run the same command again to resume"
        if not self.quiet:
            if batch.tally.remaining == 0 and not batch.tally.done and batch.tally.total:
                note(f"offload: every item is already in {batch.spec.output}; nothing to do")
            for line in summary_lines(
                batch.tally,
                task=batch.spec.task,
                output=str(batch.spec.output) if batch.spec.output else None,
                servers=server_lines(batch),
                problems=[str(p) for p in batch.problems],
                stopped=stopped,
            ):
                note(line)
        elif stopped:
            note(f"offload: {stopped}")
        if interrupted:
            return EXIT_TERMINATED if self.signal == signal.SIGTERM else EXIT_INTERRUPTED
        if error is not None:
            if error.remedy and not self.quiet:
                note(f"  → {error.remedy}")
            return int(error.exit_code)
        return EXIT_FAILED if batch.tally.all_failed else 0


def server_lines(batch: Batch) -> list[str]:
    """One line per server: address, slots and where the count came from, items served, health."""
    fleet = batch.fleet
    if fleet is None:
        return []
    lines = []
    for pid, ep in fleet.endpoints():
        if fleet.sets[pid] is not fleet.primary and not (ep.served or ep.failed):
            continue  # an unused fallback
        model = fleet.pinned.get(pid)
        state = ""
        if ep.excluded:
            state = f"  set aside: {ep.excluded}"
        elif ep.downs:
            state = f"  down: {ep.last_error}"
        where = f"{pid} {ep.url}" + (f" ({model})" if model else "")
        lines.append(f"{where}  {ep.limit} slot(s) [{ep.source}]  served {ep.served}{state}")
    return lines


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
