"""``offload calibrate`` through the real console entry point, over real loopback HTTP.

The local candidate is the LM Studio fake (wrong on every fifth ticket), the reference a second
LM Studio fake declared as a hosted, priced provider whose responder knows the expected answers
("an oracle"). Covers the table and recommendation, ``--json``, ``--apply`` round-tripping
through ``config check``, the report in headless Chromium, resume after ``kill -9``, ``stats
--what-if``, and a real run with the embedded engine as the candidate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from offload.testing import FakeTurn, LMStudioFake
from tests.e2e import offload

EXAMPLES = Path(__file__).parent.parent / "examples" / "calibrate"
TICKETS = [json.loads(line) for line in (EXAMPLES / "tickets.jsonl").read_text().splitlines()]
NOTES = [json.loads(line) for line in (EXAMPLES / "notes.jsonl").read_text().splitlines()]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def oracle(turn: FakeTurn) -> str:
    """The reference: the expected label for tickets, a fixed-form summary, ties as a judge."""
    text = turn.user_text
    if "Answer A:" in text:
        return '{"better": "tie", "reason": "both fine"}'
    for ticket in TICKETS:
        if ticket["text"] in text:
            return json.dumps({"label": ticket["expected"]})
    for note in NOTES:
        if note["text"] in text:
            return "Summary: " + note["text"].split(". ")[0] + "."
    return "ok"


def candidate(turn: FakeTurn) -> str:
    """The local model: right on four tickets of five, a short summary otherwise."""
    for k, ticket in enumerate(TICKETS):
        if ticket["text"] in turn.user_text:
            label = ticket["expected"]
            if k % 5 == 4:
                label = "question" if label != "question" else "bug"
            return json.dumps({"label": label})
    return "A short local summary of the note."


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Path, LMStudioFake, LMStudioFake]]:
    local = LMStudioFake(responder=candidate, service_time=0.0)
    reference = LMStudioFake(responder=oracle)
    with local.serve() as ls, reference.serve() as rs:
        config = {
            "agents": {"defaults": {"model": {"primary": "lmstudio/auto", "fallbacks": ["cloud/big"]}}},
            "models": {
                "mode": "replace",
                "providers": {
                    "lmstudio": {"baseUrl": ls.url, "api": "lmstudio"},
                    "cloud": {
                        "baseUrl": f"{rs.url}/v1",
                        "api": "openai-completions",
                        "local": False,
                        "apiKey": "test-key",
                        "models": [{"id": "big", "contextWindow": 32768, "cost": {"input": 3, "output": 15}}],
                    },
                },
            },
        }
        path = tmp_path / "config.json5"
        path.write_text("// calibrate test config\n" + json.dumps(config, indent=2))
        yield path, local, reference


def samples(tmp_path: Path, rows: list[dict[str, Any]], name: str = "samples.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_classify_table_recommendation_apply_and_config_check(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    config, _, _ = servers
    path = samples(tmp_path, TICKETS[:40])
    run = offload(
        "--config", str(config), "calibrate", "classify", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "--min-quality", "0.6", "--apply",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "lmstudio/auto" in run.out
    assert "recommendation: lmstudio/auto" in run.out
    assert "comments are not preserved" in run.err
    applied = json.loads(config.read_text())["offload"]["tasks"]["classify"]
    assert applied["model"]["primary"] == "lmstudio/auto"
    assert applied["gate"] == "checks"
    backups = list(tmp_path.glob("config.json5.bak-*"))
    assert len(backups) == 1
    assert backups[0].read_text().startswith("// calibrate test config")
    check = offload("--config", str(config), "config", "check")
    assert check.code == 0, check.err


def test_json_gives_exact_quality_for_a_model_right_four_times_in_five(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    config, _, _ = servers
    path = samples(tmp_path, TICKETS[:50])
    run = offload(
        "--config", str(config), "calibrate", "classify", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    data = run.json()
    (row,) = data["candidates"]
    assert row["quality"] == 0.8
    assert row["measures"]["accuracy"] == 0.8
    assert row["gate_false_accepts"] == 10
    assert data["reference_row"]["quality"] == 1.0
    assert float(data["reference_row"]["usd_per_1000"]) > 0
    assert data["recommendation"]["chain"] == ["cloud/big"]  # 0.8 does not clear 0.9
    assert data["yardstick"] == "expected"


def test_bad_samples_fail_before_any_model_is_called(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    config, local, reference = servers
    path = samples(tmp_path, [{"id": 1, "body": "no text field", "expected": "bug"}])
    run = offload("--config", str(config), "calibrate", "classify", str(path), "--reference", "cloud/big")
    assert run.code == 2
    assert "lack what classify needs" in run.err
    assert "Traceback" not in run.err
    assert local.stats.generations == 0
    assert reference.stats.generations == 0


class Page(HTMLParser):
    """Counts of tags by class, and text by id."""

    def __init__(self) -> None:
        super().__init__()
        self.classes: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for cls in (dict(attrs).get("class") or "").split():
            self.classes[f"{tag}.{cls}"] = self.classes.get(f"{tag}.{cls}", 0) + 1


@pytest.mark.browser
def test_the_report_renders_its_plots_in_chromium(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    assert CHROMIUM, "needs headless Chromium on PATH (scripts/test-deps.sh installs it)"
    config, _, _ = servers
    path = samples(tmp_path, TICKETS[:20])
    report = tmp_path / "report.html"
    run = offload(
        "--config", str(config), "calibrate", "classify", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "-o", str(report),
    )  # fmt: skip
    assert run.code == 0, run.err
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri(),
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout
    page = Page()
    page.feed(dom)
    assert page.classes.get("circle.point") == 2  # the candidate and the reference
    assert page.classes.get("rect.fa") == 1
    assert page.classes.get("rect.fr") == 1
    assert page.classes.get("tr.disagreement") == 4  # wrong on every fifth of 20


def test_kill_9_mid_run_then_resume_scores_every_item_once(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    config, local, _ = servers
    local.config.service_time = 0.5  # 20 notes one at a time: ~10 s, so the kill lands mid-run
    path = samples(tmp_path, NOTES, "notes.jsonl")
    work = tmp_path / "notes.jsonl.calibrate"
    answers = work / "lmstudio_auto.jsonl"
    args = [
        sys.executable, "-m", "offload", "--config", str(config), "calibrate", "summarize", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "-c", "1",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if answers.exists() and len(answers.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial = len(answers.read_text().splitlines())
    assert 3 <= partial < len(NOTES)
    run = offload(
        "--config", str(config), "calibrate", "summarize", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    ids = [json.loads(line)["id"] for line in answers.read_text().splitlines()]
    assert sorted(ids) == sorted(n["id"] for n in NOTES)
    verdicts = [
        json.loads(line)["id"] for line in (work / "judge-lmstudio_auto.jsonl").read_text().splitlines()
    ]
    assert sorted(verdicts) == sorted(n["id"] for n in NOTES)
    assert run.json()["candidates"][0]["quality"] == 1.0  # the oracle judge calls every pair a tie


def test_stats_what_if_reprices_the_ledger(
    servers: tuple[Path, LMStudioFake, LMStudioFake], tmp_path: Path
) -> None:
    config, _, _ = servers
    path = samples(tmp_path, TICKETS[:10])
    run = offload(
        "--config", str(config), "calibrate", "classify", str(path),
        "--local", "lmstudio/auto", "--reference", "cloud/big", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    hosted = offload(
        "--config", str(config), "stats", "--what-if", "cloud/big", "--task", "classify", "--json"
    )
    assert hosted.code == 0, hosted.err
    data = hosted.json()
    assert data["calls"] >= 20  # ten local answers and ten reference answers
    assert data["local_share"] == 0.0
    assert float(data["what_if_usd"]) > float(data["actual_usd"])
    local = offload(
        "--config", str(config), "stats", "--what-if", "lmstudio/auto,cloud/big", "--task", "classify",
        "--local-share", "1", "--json",
    )  # fmt: skip
    assert local.json()["what_if_usd"] == "0E-9" or float(local.json()["what_if_usd"]) == 0.0
    text = offload("--config", str(config), "stats", "--what-if", "cloud/big", "--task", "classify")
    assert "what-if spend" in text.out


@pytest.mark.inference
def test_a_real_run_with_the_embedded_engine_as_the_candidate(tmp_path: Path) -> None:
    reference = LMStudioFake(responder=oracle)
    with reference.serve() as rs:
        config = tmp_path / "config.json5"
        config.write_text(
            json.dumps(
                {
                    "models": {
                        "mode": "merge",
                        "providers": {
                            "cloud": {
                                "baseUrl": f"{rs.url}/v1",
                                "api": "openai-completions",
                                "local": False,
                                "apiKey": "test-key",
                                "models": [{"id": "big", "cost": {"input": 1, "output": 5}}],
                            }
                        },
                    }
                }
            )
        )
        path = samples(tmp_path, TICKETS[:8])
        run = offload(
            "--config", str(config), "calibrate", "classify", str(path),
            "--local", "embedded/auto", "--reference", "cloud/big", "--json", timeout=600,
        )  # fmt: skip
    assert run.code == 0, run.err
    data = run.json()
    (row,) = data["candidates"]
    assert row["ref"] == "embedded/auto"
    assert row["items"] == 8
    assert 0.0 <= row["quality"] <= 1.0
    assert data["reference_row"]["quality"] == 1.0
    assert data["recommendation"]["chain"][0] in ("embedded/auto", "cloud/big")
