"""Task commands: summarize, extract, classify, rewrite, review, brainstorm, translate, run NAME.

Each reads its input from TEXT, ``@FILE`` or stdin, runs the library task through the
router with its quality gate, prints the output (``--json`` for everything), and says on
stderr when a task escalated and why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from offload.cli._app import cli, current_config, json_option, note, print_json, run, server_options
from offload.cli.ask import read_prompt
from offload.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from offload.offloader import Offloader
    from offload.tasks.runner import TaskResult

F = TypeVar("F", bound=Callable[..., Any])


def task_options(fn: F) -> F:
    """The options every task command shares."""
    for option in reversed(
        [
            click.option(
                "-m", "--model", metavar="REF", help="Model, alias or provider/model to start the chain."
            ),
            click.option(
                "--provider", metavar="ID", help="Use only this provider (e.g. embedded, lmstudio)."
            ),
            click.option(
                "--local-only/--allow-hosted", default=None, help="Never contact a hosted provider."
            ),
            click.option(
                "--gate",
                type=click.Choice(["off", "checks", "judge"]),
                help="Quality gate (default: checks).",
            ),
            click.option(
                "--on-fail",
                type=click.Choice(["escalate", "fail", "warn"]),
                help="When the gate fails (default: escalate to the next model).",
            ),
            click.option("--judge", metavar="REF", help="Model that scores answers for --gate judge."),
            click.option("-v", "--verbose", is_flag=True, help="Say which model answered."),
        ]
    ):
        fn = option(fn)
    return json_option(server_options(fn))


def settings(opts: dict[str, Any]) -> dict[str, Any]:
    """The task settings among a command's options (``--provider`` pins the chain to one provider)."""
    keys = ("model", "local_only", "gate", "on_fail", "judge")
    chosen = {k: opts[k] for k in keys if opts.get(k) is not None}
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


def text_arg(fn: F) -> F:
    """The TEXT argument (TEXT, @FILE, or stdin)."""
    return click.argument("text", required=False)(fn)


@cli.command("summarize")
@text_arg
@click.option(
    "-l",
    "--length",
    default="paragraph",
    show_default=True,
    help="sentence, paragraph, bullets, or a word budget (a number).",
)
@click.option("--focus", help="What the summary should concentrate on.")
@task_options
def summarize_cmd(text: str | None, length: str, focus: str | None, **opts: Any) -> None:
    """Summarize text of any length (long inputs are split, never truncated)."""
    from offload import tasks

    size: str | int = int(length) if length.isdigit() else length
    source = read_prompt(text)
    execute(opts, lambda off, s: tasks.summarize(source, size, focus=focus, offloader=off, **s))


@cli.command("extract")
@text_arg
@click.option(
    "--schema", "schema_path", type=click.Path(exists=True, dir_okay=False), help="JSON Schema file."
)
@click.option("--fields", help="Field list instead of a schema, e.g. 'name, age int, tags list'.")
@task_options
def extract_cmd(text: str | None, schema_path: str | None, fields: str | None, **opts: Any) -> None:
    """Extract structured data as JSON that validates against a schema."""
    from offload import tasks
    from offload.config import parse_json5

    schema = (
        parse_json5(Path(schema_path).read_text(encoding="utf-8"), Path(schema_path)) if schema_path else None
    )
    source = read_prompt(text)
    execute(opts, lambda off, s: tasks.extract(source, schema=schema, fields=fields, offloader=off, **s))


def read_labels(labels: str | None, labels_file: str | None) -> list[str]:
    """Labels from ``--labels a,b`` or a file with one per line."""
    if labels_file:
        return [ln.strip() for ln in Path(labels_file).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if labels:
        return [x.strip() for x in labels.split(",") if x.strip()]
    raise click.UsageError("give the labels with --labels a,b,c or --labels-file FILE")


@cli.command("classify")
@text_arg
@click.option("--labels", help="Comma-separated labels.")
@click.option(
    "--labels-file", type=click.Path(exists=True, dir_okay=False), help="A file with one label per line."
)
@click.option("--multi", is_flag=True, help="Allow several labels.")
@click.option("--confidence", is_flag=True, help="Ask the model how sure it is (0-1).")
@click.option("--instructions", help="Extra guidance on how to decide.")
@task_options
def classify_cmd(
    text: str | None,
    labels: str | None,
    labels_file: str | None,
    multi: bool,
    confidence: bool,
    instructions: str | None,
    **opts: Any,
) -> None:
    """Classify text into one (or several) of the given labels."""
    from offload import tasks

    chosen = read_labels(labels, labels_file)
    source = read_prompt(text)
    execute(
        opts,
        lambda off, s: tasks.classify(
            source, chosen, multi=multi, confidence=confidence, instructions=instructions, offloader=off, **s
        ),
    )


@cli.command("rewrite")
@text_arg
@click.option("--how", "instruction", required=True, help="How to rewrite: tone, audience, length…")
@task_options
def rewrite_cmd(text: str | None, instruction: str, **opts: Any) -> None:
    """Rewrite text as instructed."""
    from offload import tasks

    source = read_prompt(text)
    execute(opts, lambda off, s: tasks.rewrite(source, instruction, offloader=off, **s))


@cli.command("review")
@click.argument("path", required=False)
@click.option("--focus", help="What to look for (security, performance…).")
@task_options
def review_cmd(path: str | None, focus: str | None, **opts: Any) -> None:
    """First-pass review of a file or diff (PATH, or stdin: git diff | offload review)."""
    from offload import tasks

    if path and path != "-":
        try:
            source = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from exc
        kind = "diff" if path.endswith((".diff", ".patch")) else "file"
    else:
        source = read_prompt(None)
        kind = "diff" if source.startswith(("diff --git", "--- ")) else "text"
    execute(opts, lambda off, s: tasks.review(source, focus=focus, kind=kind, offloader=off, **s))


@cli.command("brainstorm")
@click.argument("topic", required=False)
@click.option(
    "-n", "--count", type=click.IntRange(1, 50), default=5, show_default=True, help="How many ideas."
)
@task_options
def brainstorm_cmd(topic: str | None, count: int, **opts: Any) -> None:
    """Distinct ideas on a topic (near-duplicates removed)."""
    from offload import tasks

    source = read_prompt(topic)
    execute(opts, lambda off, s: tasks.brainstorm(source, count, offloader=off, **s))


@cli.command("translate")
@text_arg
@click.option("--to", "target", required=True, help="Target language (e.g. German, ja).")
@click.option("--from", "source_language", help="Source language, if the model should not guess.")
@task_options
def translate_cmd(text: str | None, target: str, source_language: str | None, **opts: Any) -> None:
    """Translate text into another language (checked to be in that language)."""
    from offload import tasks

    source = read_prompt(text)
    execute(
        opts,
        lambda off, s: tasks.translate(source, target, source_language=source_language, offloader=off, **s),
    )


@cli.command("run")
@click.argument("name")
@text_arg
@click.option(
    "--var", "variables", multiple=True, metavar="KEY=VALUE", help="Template variable (repeatable)."
)
@task_options
def run_cmd(name: str, text: str | None, variables: tuple[str, ...], **opts: Any) -> None:
    """Run a user-defined task from <config dir>/tasks/NAME.json5."""
    from offload import tasks

    pairs: dict[str, str] = {}
    for item in variables:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--var expects KEY=VALUE, got {item!r}")
        pairs[key] = value
    source = read_prompt(text)
    execute(opts, lambda off, s: tasks.run_template(name, source, pairs, offloader=off, **s))
