"""``offload calibrate TASK SAMPLES``: which models can take a task, at what quality and saving.

Parses options, runs ``offload.calibrate``, prints the table and the recommendation (or
``--json``), writes the HTML report (``-o``) and, with ``--apply``, the recommended chain into
the config file. Heavy modules are imported inside the command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from offload.cli._app import cli, current_config, json_option, note, print_json, run, table
from offload.cli._taskopts import given, params, values
from offload.errors import InputError
from offload.tasks.table import TASKS, TaskDef

if TYPE_CHECKING:
    from offload.calibrate.run import Calibration

F = TypeVar("F", bound=Callable[..., Any])

CALIBRATED = ("summarize", "extract", "classify", "rewrite", "review", "brainstorm", "translate")
"""Tasks calibrate can score (classify and extract by their own measures, the rest by a judge)."""


@cli.group("calibrate")
def calibrate_group() -> None:
    """Measure on your own SAMPLES which models can take a task, and write the routing.

    \b
      offload calibrate classify tickets.jsonl --local embedded/auto --reference anthropic/claude-haiku-4-5
      offload calibrate summarize notes/ --local lmstudio/auto -o calibrate.html --apply

    SAMPLES is JSONL, CSV or a directory, optionally with an expected output per item
    (--expected-field); the task's own options are as for `offload batch TASK`. Each model runs
    through the batch engine, so an interrupted run resumes and reuses answers. The
    recommendation is the cheapest chain whose quality clears --min-quality at the lower bound
    of its 95% interval.
    """


def calibrate_options(fn: F) -> F:
    """The options every ``offload calibrate`` subcommand shares."""
    options = [
        click.argument("samples", metavar="SAMPLES"),
        click.option("--local", "local", multiple=True, metavar="REF", help="Local candidate; repeat."),
        click.option("--reference", metavar="REF", help="Yardstick model (default: the chain's hosted one)."),
        click.option("--judge", metavar="REF", help="Compares free-text answers (default: the reference)."),
        click.option("--min-quality", type=click.FloatRange(0, 1), default=0.9, show_default=True),
        click.option("--expected-field", default="expected", show_default=True, metavar="NAME"),
        click.option("--id-field", metavar="NAME", help="Field holding each sample's id."),
        click.option("--text-field", default="text", show_default=True, metavar="NAME"),
        click.option("--work-dir", type=click.Path(file_okay=False), help="Default: SAMPLES.calibrate."),
        click.option("-o", "--output", "report", type=click.Path(dir_okay=False), help="HTML report path."),
        click.option("--apply", is_flag=True, help="Write the recommended chain into the config."),
        click.option(
            "--local-only", is_flag=True, help="Refuse hosted models (the reference must be local)."
        ),
        click.option(
            "-c", "--concurrency", type=click.IntRange(min=1), help="Requests in flight per server."
        ),
        json_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def execute(task: str, task_options: dict[str, Any], opts: dict[str, Any]) -> None:
    """Run the calibration, print it, write the report and apply it if asked."""
    from offload.calibrate import CalibrateSpec, calibrate

    spec = CalibrateSpec(
        task=task,
        samples=opts["samples"],
        local=tuple(opts["local"]),
        reference=opts["reference"],
        judge=opts["judge"],
        min_quality=opts["min_quality"],
        options=task_options,
        expected_field=opts["expected_field"],
        id_field=opts["id_field"],
        text_field=opts["text_field"],
        work_dir=Path(opts["work_dir"]) if opts["work_dir"] else None,
        local_only=opts["local_only"],
        concurrency=opts["concurrency"],
    )
    cal = run(calibrate(spec, config=current_config(), notify=note))
    if opts["report"]:
        from offload.calibrate.report import render_report

        path = Path(opts["report"])
        try:
            path.write_text(render_report(cal), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
        note(f"calibrate: report written to {path}")
    applied = _apply(task, cal) if opts["apply"] else None
    if opts["as_json"]:
        out = cal.to_dict()
        if applied is not None:
            out["applied"] = applied
        print_json(out)
        return
    click.echo(render_text(cal))


def command(d: TaskDef) -> click.Command:
    """The ``offload calibrate <task>`` command of ``d``, with the task's own options."""
    # Nothing is required here: classify's labels default to the expected labels of the samples.
    options = [replace(o, required=False) for o in d.on("batch") if not o.argument]

    def callback(**opts: Any) -> None:
        execute(d.name, given(values(options, opts)), opts)

    fn = params(options)(calibrate_options(callback))
    return calibrate_group.command(d.name, help=f"Calibrate {d.name}: {d.description}")(fn)


COMMANDS = {name: command(TASKS[name]) for name in CALIBRATED}
"""The generated commands, by task name."""


def _apply(task: str, cal: Calibration) -> dict[str, Any]:
    from offload.calibrate.apply import apply_chain
    from offload.settings import config_path

    root = click.get_current_context().find_root().obj or {}
    path = Path(root.get("config_path") or config_path()).expanduser()
    rec = cal.recommendation
    done = apply_chain(path, task, rec.chain, rec.gate)
    note(f"calibrate: wrote offload.tasks.{task} = {' → '.join(rec.chain)} (gate {rec.gate}) to {done.path}")
    if done.backup:
        note(f"calibrate: the previous file is kept as {done.backup}")
    if done.comments_lost:
        note(
            "calibrate: the file was rewritten as plain JSON; its comments are not preserved (see the backup)"
        )
    return {"path": str(done.path), "backup": str(done.backup) if done.backup else None}


def render_text(cal: Calibration) -> str:
    """The table, the gate's errors and the recommendation as text."""
    from offload.ledger.format import money

    rows = [*cal.rows, cal.reference_row]
    n = cal.reference_row.n
    lines = [
        f"calibrate {cal.task} on {n} sample(s) — yardstick: {cal.yardstick}; reference {cal.reference}"
        + (f"; judge {cal.judge}" if cal.judge and cal.task not in ("classify",) else ""),
        "",
        table(
            ["model", "quality [95% CI]", "gate pass", "p50/p95 s", "tokens in/out", "$/1k", "$/1k ref"],
            [
                [
                    r.ref + ("" if r.local else " (hosted)"),
                    f"{r.quality:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]",
                    f"{r.gate_pass_rate * 100:.1f}%",
                    f"{r.p50:.2f}/{r.p95:.2f}",
                    f"{r.input_tokens:,}/{r.output_tokens:,}",
                    money(r.usd_per_1000),
                    money(r.reference_usd_per_1000),
                ]
                for r in rows
            ],
        ),
        "",
    ]
    for r in cal.rows:
        g = r.gate
        measures = ", ".join(f"{k} {v:.3f}" for k, v in r.measures.items())
        lines.append(
            f"{r.ref}: gate false accepts {g.false_accepts} of {g.bad} below the bar "
            f"({g.false_accept_rate * 100:.1f}%), false rejects {g.false_rejects} of {g.good} above it "
            f"({g.false_reject_rate * 100:.1f}%)" + (f"; {measures}" if measures else "")
        )
    rec = cal.recommendation
    lines += [
        "",
        f"recommendation: {' → '.join(rec.chain)} (gate {rec.gate}) — quality {rec.quality:.3f} "
        f"[{rec.ci[0]:.3f}, {rec.ci[1]:.3f}], {rec.local_share * 100:.0f}% served locally, "
        f"{money(rec.usd_per_1000)} per 1,000 items, {money(rec.saved_per_1000)} saved per 1,000 items "
        "vs the reference",
    ]
    if not rec.clears:
        lines.append(f"  no chain clears quality ≥ {cal.min_quality} at its lower bound: keep the reference")
    lines += [f"note: {n_}" for n_ in cal.notes]
    lines.append(
        f"answers kept in {cal.work_dir} (rerun to resume; --apply writes the chain into the config)"
    )
    return "\n".join(lines)
