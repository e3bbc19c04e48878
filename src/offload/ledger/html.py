"""The savings report as one self-contained HTML page (``offload stats --html``).

``render_html(summary)`` returns a page with no external resources: inline CSS (light and
dark), and SVG charts drawn here — tokens local vs hosted per day (stacked bars), dollars
avoided per day (cumulative line with one point per day), the share of calls served locally
per task (horizontal bars) — plus a totals header and a top-models table. Every piece of text
is escaped. Days without calls between the first and last day are drawn as empty bars.
"""

from __future__ import annotations

import html
import math
import time
from datetime import date, timedelta
from decimal import Decimal

from offload.ledger.format import compact, count, money, percent, plural, seconds, when
from offload.ledger.report import Bucket, Summary
from offload.ledger.rows import BASELINE_HINT

WIDTH = 760
HEIGHT = 260
LEFT = 64
RIGHT = 16
TOP = 16
BOTTOM = 32
TOP_MODELS = 10

CSS = """
:root { --bg:#f7f7f5; --card:#fff; --ink:#1d2327; --muted:#6b7378; --grid:#e4e6e8; --line:#d5d9dc;
  --local:#1f9d6b; --hosted:#e07b39; }
@media (prefers-color-scheme: dark) { :root { --bg:#15181b; --card:#1e2226; --ink:#e8eaec;
  --muted:#9aa3a9; --grid:#2c3136; --line:#343a40; } }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
main { max-width:820px; margin:0 auto; padding:32px 20px 48px; }
h1 { font-size:24px; margin:0 0 4px; } h2 { font-size:16px; margin:0 0 12px; }
.window, .note, footer { color:var(--muted); font-size:13px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px; margin:20px 0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .value { font-size:22px; font-weight:650; font-variant-numeric:tabular-nums; }
.card.hero .value { color:var(--local); font-size:28px; }
.card .sub { color:var(--muted); font-size:12px; }
section.panel { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:16px; margin:16px 0; }
svg { display:block; width:100%; height:auto; }
svg text { fill:var(--muted); font-size:11px; font-family:inherit; }
svg .grid { stroke:var(--grid); stroke-width:1; }
svg .local { fill:var(--local); } svg .hosted { fill:var(--hosted); }
svg .track { fill:var(--grid); } svg .share { fill:var(--local); }
svg .line { fill:none; stroke:var(--local); stroke-width:2.5; }
svg .area { fill:var(--local); opacity:.12; }
svg .point { fill:var(--card); stroke:var(--local); stroke-width:2; }
svg .label { fill:var(--ink); font-size:12px; }
.legend { display:flex; gap:16px; font-size:12px; color:var(--muted); margin-top:6px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; font-size:13px; }
th, td { padding:6px 8px; border-bottom:1px solid var(--grid); text-align:right; white-space:nowrap; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align:left; }
th { color:var(--muted); font-weight:600; font-size:12px; }
.pill { font-size:11px; padding:1px 7px; border-radius:9px; color:#fff; }
.pill.local { background:var(--local); } .pill.hosted { background:var(--hosted); }
"""


def esc(text: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def render_html(summary: Summary) -> str:
    """The whole report page for ``summary``."""
    parts = [_header(summary), _cards(summary.totals)]
    if summary.empty:
        parts.append('<p class="note" id="empty">No calls recorded in this window yet.</p>')
    else:
        days = fill_days(summary.by_day)
        parts += [
            _panel("Tokens by day", "tokens", tokens_chart(days) + _legend()),
            _panel("Dollars avoided, cumulative", "avoided", avoided_chart(days) + _baseline_note(summary)),
            _panel("Served locally, by task", "tasks", task_chart(summary.by_task)),
            _panel("Top models", "models", models_table(summary.by_model[:TOP_MODELS])),
        ]
        if summary.by_client:
            parts.append(
                _panel("Gateway clients (offload serve)", "clients", clients_table(summary.by_client))
            )
    parts.append(
        f"<footer>Generated {esc(when(time.time()))} from {esc(summary.path or 'the usage ledger')}.</footer>"
    )
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>offload · usage and savings</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --- header and cards -------------------------------------------------------------------------


def _header(summary: Summary) -> str:
    start = summary.since if summary.since is not None else summary.first_ts
    end = summary.until if summary.until is not None else summary.last_ts
    window = f"{when(start)} → {when(end)}" if start is not None else "no calls yet"
    baseline = f" · baseline {summary.baselines[0]}" if summary.baselines else ""
    return f'<header><h1>What offload saved</h1><p class="window">{esc(window + baseline)}</p></header>'


def _cards(t: Bucket) -> str:
    cards = [
        ("avoided", "Avoided", money(t.avoided_usd), "vs the baseline model", True),
        ("spent", "Spent", money(t.spent_usd), _unpriced(t), False),
        (
            "local-share",
            "Served locally",
            percent(t.local_share),
            f"{count(t.local_calls)} of {count(t.ok_calls)} answered",
            False,
        ),
        ("calls", "Calls", count(t.calls), f"{count(t.failed_calls)} failed", False),
        ("local-tokens", "Local tokens", compact(t.local_tokens), f"{count(t.local_tokens)} tokens", False),
        (
            "hosted-tokens",
            "Hosted tokens",
            compact(t.hosted_tokens),
            f"{count(t.hosted_tokens)} tokens",
            False,
        ),
        (
            "escalation",
            "Escalations",
            percent(t.escalation_rate),
            f"failovers {percent(t.failover_rate)}",
            False,
        ),
        ("latency", "Median latency", seconds(t.median_latency), "answered calls", False),
    ]
    html_cards = [
        f'<div class="card{" hero" if hero else ""}" id="card-{key}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{esc(value)}</div><div class="sub">{esc(sub)}</div></div>'
        for key, label, value, sub, hero in cards
    ]
    return '<section class="cards" id="totals">' + "".join(html_cards) + "</section>"


def _unpriced(t: Bucket) -> str:
    if t.unpriced_calls:
        return f"+ {plural(t.unpriced_calls, 'hosted call')} without a price"
    return "on hosted models"


def _panel(title: str, key: str, inner: str) -> str:
    return f'<section class="panel" id="panel-{key}"><h2>{esc(title)}</h2>{inner}</section>'


def _legend() -> str:
    return (
        '<div class="legend"><span><i style="background:var(--local)"></i>local</span>'
        '<span><i style="background:var(--hosted)"></i>hosted</span></div>'
    )


def _baseline_note(summary: Summary) -> str:
    if summary.totals.unbaselined_local_calls:
        calls = plural(summary.totals.unbaselined_local_calls, "local call")
        text = f"{calls} without a savings figure: {BASELINE_HINT}."
        return f'<p class="note" id="baseline-hint">{esc(text)}</p>'
    return ""


# --- charts -----------------------------------------------------------------------------------


def fill_days(by_day: tuple[Bucket, ...]) -> list[Bucket]:
    """Every day from the first to the last with calls; days without calls are empty buckets."""
    known = {b.key: b for b in by_day if b.key}
    if not known:
        return []
    first, last = date.fromisoformat(min(known)), date.fromisoformat(max(known))
    days = []
    for i in range((last - first).days + 1):
        key = (first + timedelta(days=i)).isoformat()
        days.append(known.get(key, Bucket(key)))
    return days


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * scale:
            return step * scale
    return 10 * scale  # pragma: no cover


def _svg(chart_id: str, height: int, inner: str, label: str) -> str:
    return (
        f'<svg id="{chart_id}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{esc(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">{inner}</svg>'
    )


def _grid(top: float, *, money_axis: bool = False) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        text = money(Decimal(str(value))) if money_axis else compact(value)
        lines.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{esc(text)}</text>'
        )
    return "".join(lines)


def _x_labels(days: list[Bucket], band: float) -> str:
    step = max(1, -(-len(days) // 10))
    out = []
    for i, day in enumerate(days):
        if i % step:
            continue
        x = LEFT + band * (i + 0.5)
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{esc((day.key or "")[5:])}</text>'
        )
    return "".join(out)


def tokens_chart(days: list[Bucket]) -> str:
    """Stacked bars per day: local tokens (bottom) and hosted tokens (top)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_max(max((d.local_tokens + d.hosted_tokens for d in days), default=0))
    band = plot_w / max(len(days), 1)
    bar = max(1.0, min(40.0, band * 0.7))
    groups = []
    for i, d in enumerate(days):
        x = LEFT + band * i + (band - bar) / 2
        local_h = plot_h * d.local_tokens / top
        hosted_h = plot_h * d.hosted_tokens / top
        base = TOP + plot_h
        tip = f"{d.key}: {count(d.local_tokens)} local, {count(d.hosted_tokens)} hosted tokens"
        groups.append(
            f'<g class="day" data-day="{esc(d.key)}"><title>{esc(tip)}</title>'
            f'<rect class="bar local" x="{x:.1f}" y="{base - local_h:.1f}" width="{bar:.1f}" '
            f'height="{local_h:.1f}"/>'
            f'<rect class="bar hosted" x="{x:.1f}" y="{base - local_h - hosted_h:.1f}" width="{bar:.1f}" '
            f'height="{hosted_h:.1f}"/></g>'
        )
    inner = _grid(top) + "".join(groups) + _x_labels(days, band)
    return _svg("chart-tokens", HEIGHT, inner, "Tokens per day, local and hosted")


def avoided_chart(days: list[Bucket]) -> str:
    """Cumulative dollars avoided, one point per day."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    running = Decimal(0)
    totals = []
    for d in days:
        running += d.avoided_usd
        totals.append(running)
    top = nice_max(float(running))
    band = plot_w / max(len(days), 1)
    base = TOP + plot_h
    points = [(LEFT + band * (i + 0.5), base - plot_h * float(v) / top) for i, v in enumerate(totals)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = f"{points[0][0]:.1f},{base:.1f} {path} {points[-1][0]:.1f},{base:.1f}" if points else ""
    dots = []
    for (x, y), d, total in zip(points, days, totals, strict=True):
        tip = f"{d.key}: {money(d.avoided_usd)} avoided ({money(total)} so far)"
        dots.append(
            f'<circle class="point" data-day="{esc(d.key)}" cx="{x:.1f}" cy="{y:.1f}" r="4">'
            f"<title>{esc(tip)}</title></circle>"
        )
    inner = (
        _grid(top, money_axis=True)
        + f'<polygon class="area" points="{area}"/><polyline class="line" points="{path}"/>'
        + "".join(dots)
        + _x_labels(days, band)
    )
    return _svg("chart-avoided", HEIGHT, inner, "Dollars avoided, cumulative by day")


def task_chart(tasks: tuple[Bucket, ...]) -> str:
    """One horizontal bar per task: the share of its answered calls served locally."""
    row_h, label_w, value_w = 30, 180, 120
    track_w = WIDTH - label_w - value_w
    height = max(row_h * len(tasks) + 8, 40)
    rows = []
    for i, t in enumerate(tasks):
        y = 4 + i * row_h
        name = t.key if t.key is not None else "(no task)"
        tip = f"{name}: {t.local_calls} of {t.ok_calls} answered calls served locally"
        rows.append(
            f'<g class="task" data-task="{esc(name)}"><title>{esc(tip)}</title>'
            f'<text class="label" x="{label_w - 10}" y="{y + 17}" text-anchor="end">'
            f"{esc(_clip(name, 26))}</text>"
            f'<rect class="track" x="{label_w}" y="{y + 5}" width="{track_w}" height="16" rx="3"/>'
            f'<rect class="share" x="{label_w}" y="{y + 5}" width="{track_w * t.local_share:.1f}" '
            f'height="16" rx="3"/>'
            f'<text class="label" x="{label_w + track_w + 10}" y="{y + 17}">'
            f"{esc(percent(t.local_share))} · {esc(plural(t.calls, 'call'))}</text></g>"
        )
    return _svg("chart-tasks", height, "".join(rows), "Share of calls served locally per task")


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def models_table(models: tuple[Bucket, ...]) -> str:
    """The top models by calls, with tokens, money and latency."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Model", "Where", "Calls", "OK", "Tokens", "Spent", "Avoided", "Median latency")
    )
    rows = []
    for m in models:
        where = "local" if m.local else "hosted" if m.local is False else "mixed"
        cells = [
            esc(m.key or "-"),
            f'<span class="pill {where}">{where}</span>',
            esc(count(m.calls)),
            esc(percent(m.ok_calls / m.calls if m.calls else 0.0)),
            esc(count(m.local_tokens + m.hosted_tokens)),
            esc(money(m.spent_usd)),
            esc(money(m.avoided_usd)),
            esc(seconds(m.median_latency)),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table id="top-models"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def clients_table(clients: tuple[Bucket, ...]) -> str:
    """Gateway requests by client: calls, local share, money (scenarios are the gateway/* tasks)."""
    head = "".join(f"<th>{h}</th>" for h in ("Client", "Calls", "Local", "Tokens", "Spent", "Avoided"))
    rows = []
    for c in clients:
        cells = [
            esc(c.key or "-"),
            esc(count(c.calls)),
            esc(percent(c.local_share)),
            esc(count(c.local_tokens + c.hosted_tokens)),
            esc(money(c.spent_usd)),
            esc(money(c.avoided_usd)),
        ]
        rows.append("<tr>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
    return f'<table id="gateway-clients"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
