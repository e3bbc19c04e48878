"""``offload stats`` and ``offload log`` against a ledger of known calls, and the HTML report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import offload.cli.stats  # noqa: F401  (registers the commands)
from offload.cli import cli
from offload.ledger import Ledger, default_path
from offload.ledger.html import render_html
from tests.test_ledger import config, config_without_baseline, fill_known, ok

CHROMIUM = Path(
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or shutil.which("google-chrome")
    or "/nonexistent"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def known() -> Path:
    """The default ledger file, filled with the six known calls."""
    fill_known(default_path())
    return default_path()


# --- stats ------------------------------------------------------------------------------------


def test_stats_json_has_the_totals_and_breakdowns(known: Path) -> None:
    result = invoke("stats", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    totals = data["totals"]
    assert (totals["calls"], totals["ok_calls"], totals["failed_calls"]) == (6, 5, 1)
    assert totals["spent_usd"] == 0.9
    assert totals["avoided_usd"] == 10.626
    assert totals["tokens"]["local"] == 1_518_000
    assert totals["tokens"]["hosted"] == 420_000
    assert totals["local_share"] == 0.6
    assert totals["escalation_rate"] == 0.2
    assert totals["failover_rate"] == 0.2
    assert totals["median_latency_seconds"] == 2.0
    assert [d["key"] for d in data["by_day"]] == ["2026-11-01", "2026-11-02", "2026-11-04"]
    assert [t["key"] for t in data["by_task"]] == ["code", "summarize", None]
    assert [m["key"] for m in data["by_model"]] == ["local/small", "cloud/big"]
    assert data["baselines"] == ["anthropic/claude-sonnet-4-5"]
    assert data["ledger"] == str(known)


def test_stats_text_shows_totals_and_aligned_tables(known: Path) -> None:
    result = invoke("stats")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "avoided         $10.63 vs anthropic/claude-sonnet-4-5" in out
    assert "spent           $0.90" in out
    assert "served locally  60% of answered calls (3 of 5)" in out
    assert "tokens          1,518,000 local · 420,000 hosted" in out
    assert "calls           6 (5 answered, 1 failed)" in out
    assert "median latency  2.00s" in out
    lines = out.splitlines()
    day_header = lines.index("By day") + 1
    assert lines[day_header].split() == [
        "DAY",
        "CALLS",
        "LOCAL",
        "LOCAL",
        "TOKENS",
        "HOSTED",
        "TOKENS",
        "SPENT",
        "AVOIDED",
    ]
    assert lines[day_header + 1].split() == ["2026-11-01", "2", "100%", "1,503,000", "0", "$0.00", "$10.52"]
    assert lines[day_header + 2].split() == ["2026-11-02", "3", "0%", "0", "420,000", "$0.90", "$0.00"]
    columns = {line.index("CALLS") for line in lines if line.startswith(("DAY", "TASK", "MODEL"))}
    assert len(columns) == 3  # each table aligns its own columns
    model_start = lines.index("By model") + 1
    assert lines[model_start + 1].split()[:3] == ["local/small", "local", "4"]
    assert lines[model_start + 2].split()[:3] == ["cloud/big", "hosted", "2"]
    assert "note:" not in out


def test_stats_since_filters_by_date(known: Path) -> None:
    data = json.loads(invoke("stats", "--since", "2026-11-02", "--json").output)
    assert data["totals"]["calls"] == 4
    assert data["totals"]["avoided_usd"] == 0.105
    data = json.loads(invoke("stats", "--since", "2026-11-01", "--until", "2026-11-02", "--json").output)
    assert data["totals"]["calls"] == 2


def test_stats_since_a_relative_span() -> None:
    cfg = config()
    now = time.time()
    stamps = iter([now - 3 * 86400, now - 2 * 3600])
    with Ledger(default_path(), cfg, clock=lambda: next(stamps)) as ledger:
        ledger.record(ok(cfg, "local/small", 100, 10))
        ledger.record(ok(cfg, "cloud/big", 100, 10))
    day = json.loads(invoke("stats", "--since", "24h", "--json").output)
    week = json.loads(invoke("stats", "--since", "7d", "--json").output)
    assert day["totals"]["calls"] == 1
    assert [m["key"] for m in day["by_model"]] == ["cloud/big"]
    assert week["totals"]["calls"] == 2


def test_stats_rejects_an_unreadable_time() -> None:
    result = invoke("stats", "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "cannot read the time 'yesterday-ish'" in result.output
    assert "7d" in result.output


def test_stats_on_an_empty_ledger_says_so() -> None:
    result = invoke("stats")
    assert result.exit_code == 0
    assert result.output.startswith("no calls recorded in ")
    assert json.loads(invoke("stats", "--json").output)["totals"]["calls"] == 0
    assert not default_path().exists()


def test_stats_explains_how_to_set_a_baseline_when_none_priced_local_calls() -> None:
    cfg = config_without_baseline()
    with Ledger(default_path(), cfg) as ledger:
        ledger.record(ok(cfg, "local/small", 1000, 100))
    out = invoke("stats").output
    assert "avoided         $0.00\n" in out
    assert "note: 1 local call without a savings figure; set a savings baseline" in out
    assert 'offload: { savings: { baseline: "anthropic/claude-sonnet-4-5" } }' in out


def test_stats_html_writes_the_page_and_prints_its_path(known: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = invoke("stats", "--html", str(target))
    assert result.exit_code == 0
    assert result.output.strip() == str(target)
    page = target.read_text()
    assert page.startswith("<!doctype html>")
    assert "<svg" in page
    assert "$10.63" in page


# --- log --------------------------------------------------------------------------------------


def test_log_lists_the_latest_calls_newest_first(known: Path) -> None:
    result = invoke("log", "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["TIME", "TASK", "MODEL", "OUTCOME"]
    assert len(lines) == 4
    assert lines[1].startswith("2026-11-04 08:00")
    assert "local/small" in lines[1]
    assert "$0.11" in lines[1]
    assert lines[2].startswith("2026-11-02 15:00")
    assert "cloud/big (hosted)" in lines[2]
    assert "escalated" in lines[2]
    assert "$0.20" in lines[2]
    assert "failover" in lines[3]


def test_log_filters_by_task_model_and_outcome(known: Path) -> None:
    def calls(*args: str) -> list[dict[str, Any]]:
        result = invoke("log", "--json", *args)
        assert result.exit_code == 0, result.output
        return list(json.loads(result.output)["calls"])

    assert [c["outcome"] for c in calls("--task", "code")] == ["ok", "ok", "unreachable"]
    assert {c["model"] for c in calls("--model", "cloud/big")} == {"big"}
    [failure] = calls("--outcome", "unreachable")
    assert failure["error"] == "unreachable: connection refused"
    assert failure["cost_usd"] == 0
    assert failure["prompt"] is None
    assert failure["answer"] is None
    assert len(calls()) == 6
    assert len(calls("--limit", "2")) == 2
    result = invoke("log", "--task", "nope")
    assert result.exit_code == 0
    assert "no calls match" in result.output


def test_the_commands_module_stays_light() -> None:
    code = "import sys, offload.cli.stats; print(sorted(m for m in ('httpx', 'sqlite3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the HTML page ----------------------------------------------------------------------------


class Elements(HTMLParser):
    """Counts start tags by (tag, class) and keeps the text inside each element with an id."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, str]] = []
        self.texts: dict[str, str] = {}
        self._stack: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a.get("class") or ""))
        if tag not in self.VOID:
            self._stack.append((tag, a.get("id")))
            if a.get("id"):
                self.texts[a["id"] or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, key in self._stack:
            if key:
                self.texts[key] += data

    def count(self, tag: str, cls: str) -> int:
        return sum(1 for t, c in self.tags if t == tag and cls in c.split())


def test_render_html_escapes_text_and_loads_nothing_external(tmp_path: Path) -> None:
    cfg = config()
    with Ledger(tmp_path / "u.db", cfg) as ledger:
        ledger.record(ok(cfg, "local/small", 10, 10, task="<script>alert(1)</script>"))
        summary = ledger.summary()
    page = render_html(summary)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "@import" not in page
    assert "url(" not in page


BROWSER_PROBE = """<script>
const q = s => document.querySelectorAll(s);
const rects = [...q('#chart-tokens rect.bar.local')];
const result = {
  local_bars: rects.length,
  hosted_bars: q('#chart-tokens rect.bar.hosted').length,
  points: q('#chart-avoided circle.point').length,
  task_bars: q('#chart-tasks rect.share').length,
  svg_rects: rects.every(r => r instanceof SVGRectElement),
  tallest_local: Math.max(...rects.map(r => r.getBBox().height)),
  share_widths: [...q('#chart-tasks rect.share')].map(r => Math.round(r.getBBox().width)),
  model_rows: q('#top-models tbody tr').length,
  avoided: document.querySelector('#card-avoided .value').textContent,
};
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify(result) + '</pre>');
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs headless Chromium on PATH: scripts/test-deps.sh installs it (apt install chromium)",
)
def test_the_html_report_renders_its_charts_in_chromium(known: Path, tmp_path: Path) -> None:
    with Ledger.open_readonly(known) as reader:
        page = render_html(reader.summary())
    probe_page = tmp_path / "report.html"
    probe_page.write_text(page.replace("</body>", BROWSER_PROBE + "</body>"), encoding="utf-8")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--dump-dom",
        probe_page.as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = Elements()
    parsed.feed(dom)
    probe = json.loads(parsed.texts["probe"])
    days = 4  # 2026-11-01 … 2026-11-04, the empty 11-03 included
    assert probe["local_bars"] == days
    assert probe["hosted_bars"] == days
    assert probe["points"] == days
    assert probe["svg_rects"] is True
    assert probe["tallest_local"] > 100
    assert probe["task_bars"] == 3
    assert probe["share_widths"][0] == 0
    assert probe["share_widths"][1] > 0
    assert probe["model_rows"] == 2
    assert probe["avoided"] == "$10.63"
    assert parsed.count("rect", "bar") == 2 * days
    assert parsed.count("circle", "point") == days
    totals = parsed.texts["totals"]
    assert "Avoided$10.63" in totals
    assert "Spent$0.90" in totals
    assert "Served locally60%" in totals
    assert "Calls6" in totals
