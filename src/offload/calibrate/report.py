"""The calibration report as one self-contained HTML page (``offload calibrate -o report.html``).

Inline CSS (shared with the savings report) and SVG drawn here: quality against cost per model
(a point each, with its 95% interval as a whisker), the gate's false accepts and false rejects
per candidate (paired bars), the table, the recommendation, and the items where a candidate fell
short of the yardstick so a person can look. Every piece of text is escaped.
"""

from __future__ import annotations

import html

from offload.calibrate.run import Calibration
from offload.calibrate.table import Row
from offload.ledger.format import money
from offload.ledger.html import CSS

WIDTH = 720
HEIGHT = 280
LEFT = 56
RIGHT = 24
TOP = 16
BOTTOM = 40
EXTRA_CSS = """
svg .ci { stroke:var(--muted); stroke-width:1.5; } svg .ref { fill:var(--hosted); }
svg .fa { fill:var(--hosted); } svg .fr { fill:#6c8ebf; }
td.text { max-width:260px; white-space:pre-wrap; word-break:break-word; text-align:left; vertical-align:top; }
.rec { font-size:16px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def render_report(cal: Calibration) -> str:
    """The whole page."""
    rows = [*cal.rows, cal.reference_row]
    rec = cal.recommendation
    verdict = "clears" if rec.clears else "does not clear"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>offload calibrate — {_e(cal.task)}</title>",
        f"<style>{CSS}{EXTRA_CSS}</style></head><body><main>",
        f"<h1>Calibration: {_e(cal.task)}</h1>",
        f"<p class='window'>reference {_e(cal.reference)} · judge {_e(cal.judge or '—')} · "
        f"yardstick: {_e(cal.yardstick)} · bar: quality ≥ {_e(cal.min_quality)} at the lower 95% bound</p>",
        "<section class='panel' id='recommendation'><h2>Recommendation</h2>",
        f"<p class='rec'>chain <b>{_e(' → '.join(rec.chain))}</b> (gate {_e(rec.gate)}) {verdict} the bar: "
        f"quality {rec.quality:.3f} [{rec.ci[0]:.3f}, {rec.ci[1]:.3f}], "
        f"{_pct(rec.local_share)} served locally, {_e(money(rec.usd_per_1000))} per 1,000 items, "
        f"{_e(money(rec.saved_per_1000))} saved per 1,000 items against the reference alone.</p>",
        *(f"<p class='note'>{_e(n)}</p>" for n in cal.notes),
        "</section>",
        "<section class='panel'><h2>Quality against cost</h2>",
        _scatter(rows, cal.reference),
        "</section>",
        "<section class='panel'><h2>Gate: false accepts and false rejects</h2>",
        _gate_bars(cal.rows),
        "<div class='legend'><span><i class='fa' style='background:var(--hosted)'></i>false accepts "
        "(bad answers the gate kept local)</span><span><i style='background:#6c8ebf'></i>false rejects "
        "(good answers it escalated)</span></div></section>",
        "<section class='panel'><h2>Models</h2>",
        _table(rows),
        "</section>",
        _disagreements(cal),
        "</main></body></html>",
    ]
    return "".join(parts)


def _scatter(rows: list[Row], reference: str) -> str:
    costs = [float(r.usd_per_1000) for r in rows]
    top = max(max(costs, default=0.0), 0.01) * 1.15
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(cost: float) -> float:
        return LEFT + plot_w * cost / top

    def y(quality: float) -> float:
        return TOP + plot_h * (1 - quality)

    out = [f"<svg id='chart-quality' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='quality vs cost'>"]
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f"<line class='grid' x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y(q):.1f}' y2='{y(q):.1f}'/>")
        out.append(f"<text x='{LEFT - 8}' y='{y(q) + 4:.1f}' text-anchor='end'>{q:.2f}</text>")
    out.append(
        f"<text x='{LEFT + plot_w / 2:.0f}' y='{HEIGHT - 8}' text-anchor='middle'>$ per 1,000 items</text>"
    )
    out.append(f"<text x='{LEFT}' y='{HEIGHT - 24}'>$0</text>")
    out.append(f"<text x='{WIDTH - RIGHT}' y='{HEIGHT - 24}' text-anchor='end'>${top:.2f}</text>")
    for r in rows:
        cx = x(float(r.usd_per_1000))
        out.append(
            f"<line class='ci' x1='{cx:.1f}' x2='{cx:.1f}' y1='{y(r.ci[0]):.1f}' y2='{y(r.ci[1]):.1f}'/>"
        )
        cls = "point ref" if r.ref == reference else "point"
        out.append(
            f"<circle class='{cls}' cx='{cx:.1f}' cy='{y(r.quality):.1f}' r='5'>"
            f"<title>{_e(r.ref)}: quality {r.quality:.3f}, ${_e(r.usd_per_1000)}/1k</title></circle>"
        )
        out.append(f"<text class='label' x='{cx + 8:.1f}' y='{y(r.quality) - 6:.1f}'>{_e(r.ref)}</text>")
    out.append("</svg>")
    return "".join(out)


def _gate_bars(rows: list[Row]) -> str:
    band = 44
    height = TOP + band * max(1, len(rows)) + 8
    left, width = 220, WIDTH - 220 - RIGHT - 90  # room for the figure after a full bar
    out = [f"<svg id='chart-gate' viewBox='0 0 {WIDTH} {height}' role='img' aria-label='gate errors'>"]
    for i, r in enumerate(rows):
        top = TOP + i * band
        out.append(f"<text class='label' x='{left - 8}' y='{top + 18}' text-anchor='end'>{_e(r.ref)}</text>")
        for j, (cls, rate, count) in enumerate(
            (
                ("fa", r.gate.false_accept_rate, r.gate.false_accepts),
                ("fr", r.gate.false_reject_rate, r.gate.false_rejects),
            )
        ):
            w = width * rate
            out.append(f"<rect class='{cls}' x='{left}' y='{top + j * 16}' width='{w:.1f}' height='13'/>")
            out.append(f"<text x='{left + w + 6:.1f}' y='{top + j * 16 + 11}'>{_pct(rate)} ({count})</text>")
    out.append("</svg>")
    return "".join(out)


def _table(rows: list[Row]) -> str:
    head = (
        "<table id='models'><thead><tr><th>model</th><th>quality [95% CI]</th><th>gate pass</th>"
        "<th>p50 / p95 s</th><th>tokens in / out</th><th>$/1k</th><th>$/1k ref</th>"
        "</tr></thead><tbody>"
    )
    body = "".join(
        f"<tr><td>{_e(r.ref)}{'' if r.local else ' (hosted)'}</td>"
        f"<td>{r.quality:.3f} [{r.ci[0]:.3f}, {r.ci[1]:.3f}]</td><td>{_pct(r.gate_pass_rate)}</td>"
        f"<td>{r.p50:.2f} / {r.p95:.2f}</td><td>{r.input_tokens:,} / {r.output_tokens:,}</td>"
        f"<td>{_e(money(r.usd_per_1000))}</td><td>{_e(money(r.reference_usd_per_1000))}</td></tr>"
        for r in rows
    )
    return head + body + "</tbody></table>"


def _disagreements(cal: Calibration) -> str:
    out = ["<section class='panel' id='disagreements'><h2>Items to look at</h2>"]
    shown = False
    for ref, items in cal.disagreements.items():
        if not items:
            continue
        shown = True
        out.append(f"<h3>{_e(ref)}</h3><table><thead><tr><th>id</th><th>input</th><th>answer</th>")
        out.append(f"<th>{_e(cal.yardstick)}</th><th>score</th></tr></thead><tbody>")
        out.extend(
            f"<tr class='disagreement'><td>{_e(d.id)}</td><td class='text'>{_e(d.text)}</td>"
            f"<td class='text'>{_e(d.answer)}</td><td class='text'>{_e(d.yardstick)}</td>"
            f"<td>{d.score:.2f}</td></tr>"
            for d in items
        )
        out.append("</tbody></table>")
    if not shown:
        out.append("<p class='note'>Every answer matched the yardstick.</p>")
    out.append("</section>")
    return "".join(out)
