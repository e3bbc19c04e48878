"""``offload stats`` and ``offload log``: what the usage ledger says was spent, saved and called.

Both read the ledger file read-only (``usage.sqlite3`` in the data dir); a missing file reads
as an empty ledger. The ledger itself lives in ``offload.ledger``, the HTML page in
``offload.ledger.html``; both are imported inside the commands so ``offload --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from offload.cli._app import cli, json_option, note, print_json, table

if TYPE_CHECKING:
    from offload.ledger.report import Bucket, CallRow, Summary

WHEN_HELP = "a span like 7d, 24h, 30m, or a date/time like 2026-11-01 or 2026-11-01T09:00"


@cli.command("stats")
@click.option("--since", metavar="WHEN", help=f"Only calls from WHEN on: {WHEN_HELP}.")
@click.option("--until", metavar="WHEN", help="Only calls before WHEN (same forms as --since).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report as one self-contained HTML page to PATH and print the path.",
)
@click.option(
    "--what-if",
    "what_if_chain",
    metavar="CHAIN",
    help="Re-price the answered calls as if CHAIN (comma-separated refs) had served them.",
)
@click.option("--task", metavar="NAME", help="With --what-if: only this task's calls.")
@click.option(
    "--local-share",
    type=click.FloatRange(0, 1),
    help="With --what-if: share of calls the chain's local primary keeps (default: from the ledger).",
)
@json_option
def stats_cmd(
    since: str | None,
    until: str | None,
    html_path: str | None,
    as_json: bool,
    what_if_chain: str | None = None,
    task: str | None = None,
    local_share: float | None = None,
) -> None:
    """What offload spent and saved: totals, then by day, by task and by model."""
    from offload.ledger import Ledger, parse_when

    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    if what_if_chain:
        _what_if(what_if_chain, task, start, local_share, as_json)
        return
    with Ledger.open_readonly() as reader:
        summary = reader.summary(start, end)
    if html_path:
        from offload.ledger.html import render_html

        path = Path(html_path).expanduser()
        path.write_text(render_html(summary), encoding="utf-8")
        if as_json:
            print_json(summary.to_dict())
            note(f"wrote {path}")
        else:
            click.echo(str(path))
    elif as_json:
        print_json(summary.to_dict())
    else:
        click.echo(stats_text(summary))


@cli.command("log")
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="How many calls to show."
)
@click.option("--task", metavar="T", help="Only calls made for task T.")
@click.option("--model", metavar="M", help="Only calls to model M (provider/model or the model id).")
@click.option(
    "--outcome", metavar="O", help="Only calls that ended as O: ok or an error kind (e.g. timeout)."
)
@json_option
def log_cmd(limit: int, task: str | None, model: str | None, outcome: str | None, as_json: bool) -> None:
    """The latest model calls from the usage ledger, newest first."""
    from offload.ledger import Ledger

    with Ledger.open_readonly() as reader:
        rows = reader.recent(limit, task=task, model=model, outcome=outcome)
    if as_json:
        print_json({"calls": [r.to_dict() for r in rows]})
    elif not rows:
        note("no calls match" if (task or model or outcome) else "no calls recorded yet")
    else:
        click.echo(log_text(rows))


# --- text -------------------------------------------------------------------------------------


def stats_text(summary: Summary) -> str:
    """The human report: a totals block and three aligned tables."""
    from offload.ledger.format import when

    if summary.empty:
        window = f" since {when(summary.since)}" if summary.since is not None else ""
        return f"no calls recorded{window} in {summary.path}"
    start = summary.since if summary.since is not None else summary.first_ts
    end = summary.until if summary.until is not None else summary.last_ts
    lines = [
        f"offload usage, {when(start)} → {when(end)}  ({summary.path})",
        "",
        totals_block(summary),
        "",
        "By day",
        table(*day_rows(summary.by_day)),
        "",
        "By task",
        table(*task_rows(summary.by_task)),
        "",
        "By model",
        table(*model_rows(summary.by_model)),
    ]
    if summary.by_client:
        headers, rows = task_rows(summary.by_client)
        lines += ["", "Gateway by client (offload serve; scenarios are the gateway/* tasks)"]
        lines.append(table(["CLIENT", *headers[1:]], rows))
    hint = baseline_hint(summary)
    if hint:
        lines += ["", hint]
    return "\n".join(lines)


def totals_block(summary: Summary) -> str:
    """Label/value lines for the totals."""
    from offload.ledger.format import count, money, percent, plural, seconds

    t = summary.totals
    vs = f" vs {summary.baselines[0]}" if summary.baselines else ""
    unpriced = f" (+ {plural(t.unpriced_calls, 'hosted call')} without a price)" if t.unpriced_calls else ""
    pairs = [
        ("avoided", f"{money(t.avoided_usd)}{vs}"),
        ("spent", f"{money(t.spent_usd)}{unpriced}"),
        ("served locally", f"{percent(t.local_share)} of answered calls ({t.local_calls} of {t.ok_calls})"),
        ("tokens", f"{count(t.local_tokens)} local · {count(t.hosted_tokens)} hosted"),
        ("calls", f"{count(t.calls)} ({count(t.ok_calls)} answered, {count(t.failed_calls)} failed)"),
        ("escalations", f"{percent(t.escalation_rate)} of answered calls"),
        ("failovers", f"{percent(t.failover_rate)} of answered calls"),
        ("median latency", seconds(t.median_latency)),
    ]
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def baseline_hint(summary: Summary) -> str | None:
    """A line saying how to price local calls, when some were recorded without a baseline."""
    from offload.ledger.format import plural
    from offload.ledger.rows import BASELINE_HINT

    missing = summary.totals.unbaselined_local_calls
    if not missing:
        return None
    return f"note: {plural(missing, 'local call')} without a savings figure; {BASELINE_HINT}"


def day_rows(days: tuple[Bucket, ...]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the by-day table."""
    from offload.ledger.format import count, money, percent

    headers = ["DAY", "CALLS", "LOCAL", "LOCAL TOKENS", "HOSTED TOKENS", "SPENT", "AVOIDED"]
    rows = [
        [
            d.key or "-",
            count(d.calls),
            percent(d.local_share),
            count(d.local_tokens),
            count(d.hosted_tokens),
            money(d.spent_usd),
            money(d.avoided_usd),
        ]
        for d in days
    ]
    return headers, rows


def task_rows(tasks: tuple[Bucket, ...]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the by-task table."""
    from offload.ledger.format import count, money, percent

    headers = ["TASK", "CALLS", "LOCAL", "ESCALATED", "FAILOVER", "TOKENS", "SPENT", "AVOIDED"]
    rows = [
        [
            t.key if t.key is not None else "(none)",
            count(t.calls),
            percent(t.local_share),
            percent(t.escalation_rate),
            percent(t.failover_rate),
            count(t.local_tokens + t.hosted_tokens),
            money(t.spent_usd),
            money(t.avoided_usd),
        ]
        for t in tasks
    ]
    return headers, rows


def model_rows(models: tuple[Bucket, ...]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the by-model table."""
    from offload.ledger.format import count, money, percent, seconds

    headers = ["MODEL", "WHERE", "CALLS", "OK", "TOKENS", "SPENT", "AVOIDED", "MEDIAN"]
    rows = [
        [
            m.key or "-",
            "local" if m.local else "hosted" if m.local is False else "mixed",
            count(m.calls),
            percent(m.ok_calls / m.calls if m.calls else 0.0),
            count(m.local_tokens + m.hosted_tokens),
            money(m.spent_usd),
            money(m.avoided_usd),
            seconds(m.median_latency),
        ]
        for m in models
    ]
    return headers, rows


def log_text(rows: list[CallRow]) -> str:
    """The call log as an aligned table."""
    from offload.ledger.format import count, money, seconds, when

    headers = ["TIME", "TASK", "MODEL", "OUTCOME", "IN", "OUT", "LATENCY", "COST", "AVOIDED", "NOTE"]
    body = []
    for r in rows:
        flags = [f for f, on in (("escalated", r.escalated), ("failover", r.failover)) if on]
        if r.error:
            flags.append(r.error if len(r.error) <= 60 else r.error[:59] + "…")
        body.append(
            [
                when(r.ts),
                r.task or "-",
                r.name + ("" if r.local else " (hosted)"),
                r.outcome,
                count(r.input_tokens),
                count(r.output_tokens),
                seconds(r.seconds),
                money(r.cost_usd) if r.priced else "unpriced",
                money(r.avoided_usd),
                "; ".join(flags) or "-",
            ]
        )
    return table(headers, body)


def _what_if(chain: str, task: str | None, since: float | None, share: float | None, as_json: bool) -> None:
    from offload.cli._app import current_config
    from offload.ledger import Ledger
    from offload.ledger.whatif import what_if

    refs = [ref.strip() for ref in chain.split(",") if ref.strip()]
    with Ledger.open_readonly() as reader:
        rows = reader.answered(task, since)
    result = what_if(current_config(), refs, rows, task=task, local_share=share)
    if as_json:
        print_json(result.to_dict())
        return
    from offload.ledger.format import count, money
    from offload.ledger.rows import usd

    scope = f"{result.task} calls" if result.task else "calls"
    diff = result.difference
    verdict = f"{money(-diff)} less" if diff < 0 else f"{money(diff)} more"
    click.echo(
        f"what if {' → '.join(result.chain)} had served {count(result.calls)} answered {scope} "
        f"({count(result.input_tokens)} tokens in, {count(result.output_tokens)} out):"
    )
    click.echo(f"  actual spend   {money(usd(result.actual_nusd))}")
    click.echo(
        f"  what-if spend  {money(usd(result.what_if_nusd))}  "
        f"({result.local_share * 100:.0f}% local, the rest at {result.priced_at or 'no hosted model'})"
    )
    click.echo(f"  difference     {verdict}")
    for line in result.notes:
        note(f"note: {line}")
