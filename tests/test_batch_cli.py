"""``offload batch`` as a user runs it: a real subprocess against the LM Studio fake.

Kill -9 at random moments and Ctrl-C must leave an output that a rerun completes with every
input id exactly once; exit codes say whether every item succeeded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.testing import FakeTurn, LMStudioFake
from offload.testing._lmstudio_text import default_responder
from tests.e2e import OFFLOAD, Run, write_config

# Until ``offload.cli`` imports the batch commands itself, register them before running the CLI.
COMMAND = OFFLOAD
TEXT = "The council approved the new cycling lanes after a long debate about parking. " * 3


def batch(*args: str, timeout: float = 300) -> Run:
    proc = subprocess.run(
        [*COMMAND, "batch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=os.environ,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def start(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*COMMAND, "batch", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ
    )


def make_items(path: Path, n: int) -> list[str]:
    ids = [f"doc-{k}" for k in range(n)]
    path.write_text("".join(json.dumps({"id": i, "text": f"{i}: {TEXT}"}) + "\n" for i in ids))
    return ids


def check_exactly_once(out: Path, ids: list[str]) -> None:
    data = out.read_bytes()
    assert data.endswith(b"\n"), "the output ends with a half-written line"
    rows = [json.loads(line) for line in data.splitlines()]
    got = [r["id"] for r in rows]
    assert len(got) == len(set(got)), "an id was written twice"
    assert sorted(got) == sorted(ids), "an id is missing"
    assert all(r["error"] is None for r in rows)


@pytest.fixture
def lms(offload_home: Path) -> Iterator[tuple[LMStudioFake, Path]]:
    fake = LMStudioFake(parallel=4, service_time=0.005)
    with fake.serve() as server:
        cfg = write_config(
            offload_home,
            f"""{{
  agents: {{ defaults: {{ model: {{ primary: "lmstudio/auto" }} }} }},
  models: {{ mode: "replace", providers: {{ lmstudio: {{ baseUrl: "{server.url}", api: "lmstudio" }} }} }},
}}""",
        )
        os.environ["OFFLOAD_CONFIG"] = str(cfg)
        try:
            yield fake, cfg
        finally:
            del os.environ["OFFLOAD_CONFIG"]


def test_batch_summarize_end_to_end(lms: tuple[LMStudioFake, Path], tmp_path: Path) -> None:
    ids = make_items(tmp_path / "items.jsonl", 25)
    out = tmp_path / "out.jsonl"
    run = batch("summarize", str(tmp_path / "items.jsonl"), "-o", str(out), "--length", "sentence")
    assert run.code == 0, run.err
    check_exactly_once(out, ids)
    assert run.out == ""
    assert "batch summarize: 25 item(s)" in run.err
    assert "done       25/25" in run.err
    assert "4 slot(s) [LM Studio parallel]" in run.err
    assert "models     lmstudio/google/gemma-3-1b 25" in run.err
    again = batch("summarize", str(tmp_path / "items.jsonl"), "-o", str(out), "-q", "--length", "sentence")
    assert again.code == 0
    assert again.err == ""
    assert out.read_bytes().count(b"\n") == 25


def test_malformed_lines_are_reported_and_the_rest_processed(
    lms: tuple[LMStudioFake, Path], tmp_path: Path
) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text(
        '{"id": "a", "text": "Alpha beta gamma delta."}\n'
        '{"id": "b", "text": \n'
        '{"id": "c", "text": "Gamma."}\n'
    )
    out = tmp_path / "out.jsonl"
    run = batch("rewrite", str(src), "-o", str(out), "--how", "more formal")
    assert run.code == 13, run.err
    assert "input line 2: not valid JSON" in run.err
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["a", "c"]


def flag_empty(turn: FakeTurn) -> str:
    flagged = "FLAG" in turn.user_text or any("FLAG" in m.content for m in turn.history)
    return "" if flagged else default_responder(turn)


def test_failed_items_exit_13_until_retried(lms: tuple[LMStudioFake, Path], tmp_path: Path) -> None:
    fake, _ = lms
    fake.config.responder = flag_empty
    src = tmp_path / "items.csv"
    src.write_text(
        'id,text\n1,"FLAG this one"\n2,"A fine sentence about trains."\n3,"Another about boats."\n'
    )
    out = tmp_path / "out.jsonl"
    args = ("translate", str(src), "-o", str(out), "--to", "English")
    first = batch(*args)
    assert first.code == 13
    assert "item 1 failed: quality_gate" in first.err
    assert "failed     1 this run (quality_gate 1)" in first.err
    second = batch(*args)
    assert second.code == 13
    assert "1 in earlier runs (rerun with --retry-failed)" in second.err
    fake.config.responder = None
    third = batch(*args, "--retry-failed")
    assert third.code == 0, third.err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["1", "2", "3"]
    assert all(r["error"] is None for r in rows)


def test_empty_input(lms: tuple[LMStudioFake, Path], tmp_path: Path) -> None:
    fake, _ = lms
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    out = tmp_path / "out.jsonl"
    run = batch("summarize", str(src), "-o", str(out))
    assert run.code == 0, run.err
    assert out.read_bytes() == b""
    assert "done       0/0" in run.err
    assert fake.stats.generations == 0


def test_templates_and_raw_prompts_take_fields(
    lms: tuple[LMStudioFake, Path], tmp_path: Path, offload_home: Path
) -> None:
    (offload_home / "tasks").mkdir()
    (offload_home / "tasks" / "echo.json5").write_text(
        '{template: "Reply with exactly: {who} says {text}", gate: "off"}'
    )
    src = tmp_path / "items.jsonl"
    src.write_text('{"id": 1, "who": "Ann", "text": "hi"}\n{"id": 2, "who": "Bo", "text": "yo"}\n')
    out = tmp_path / "out.jsonl"
    run = batch("run", "echo", str(src), "-o", str(out))
    assert run.code == 0, run.err
    assert sorted(json.loads(line)["output"] for line in out.read_text().splitlines()) == [
        "Ann says hi",
        "Bo says yo",
    ]
    asked = tmp_path / "asked.jsonl"
    run = batch("ask", str(src), "-o", str(asked), "--prompt", "Reply with exactly: {who}!", "--gate", "off")
    assert run.code == 0, run.err
    assert sorted(json.loads(line)["output"] for line in asked.read_text().splitlines()) == ["Ann!", "Bo!"]
    bad = batch("run", "summarize", str(src), "-o", str(tmp_path / "x.jsonl"))
    assert bad.code == 2
    assert "built-in task" in bad.err


def test_two_servers_from_repeated_base_urls(tmp_path: Path, offload_home: Path) -> None:
    a, b = LMStudioFake(parallel=2, service_time=0.01), LMStudioFake(parallel=2, service_time=0.01)
    ids = make_items(tmp_path / "items.jsonl", 40)
    out = tmp_path / "out.jsonl"
    write_config(
        offload_home,
        '{agents: {defaults: {model: {primary: "lmstudio/auto"}}}, models: {mode: "replace", '
        'providers: {lmstudio: {baseUrl: "http://127.0.0.1:9", api: "lmstudio"}}}}',
    )
    with a.serve() as sa, b.serve() as sb:
        run = batch(
            "summarize",
            str(tmp_path / "items.jsonl"),
            "-o",
            str(out),
            "--base-url",
            sa.url,
            "--base-url",
            sb.url,
        )
    assert run.code == 0, run.err
    check_exactly_once(out, ids)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["server"] for r in rows} == {sa.url, sb.url}
    assert a.stats.max_concurrency == 2
    assert b.stats.max_concurrency == 2


def test_kill_9_at_random_moments_then_resume_gives_every_id_once(
    lms: tuple[LMStudioFake, Path], tmp_path: Path
) -> None:
    fake, _ = lms
    fake.config.service_time = 0.02  # at most 200 items/s: six kills cannot finish 1200 items
    ids = make_items(tmp_path / "items.jsonl", 1200)
    out = tmp_path / "out.jsonl"
    args = ("summarize", str(tmp_path / "items.jsonl"), "-o", str(out), "--no-cache", "-q")
    rng = random.Random(20240611)
    lines_after_kill = []
    for _ in range(6):
        before = out.read_bytes().count(b"\n") if out.exists() else 0
        proc = start(*args)
        deadline = time.monotonic() + 120  # a loaded machine may take long to start the run
        while (
            time.monotonic() < deadline and (out.read_bytes().count(b"\n") if out.exists() else 0) <= before
        ):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))  # then kill at a random moment of the writing
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        lines_after_kill.append(out.read_bytes().count(b"\n") if out.exists() else 0)
    assert lines_after_kill[-1] > 0, lines_after_kill
    assert lines_after_kill == sorted(lines_after_kill)  # every kill kept what was already written
    final = batch(*args)
    assert final.code == 0, final.err
    check_exactly_once(out, ids)


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(
    lms: tuple[LMStudioFake, Path], tmp_path: Path
) -> None:
    fake, _ = lms
    fake.config.service_time = 0.02
    ids = make_items(tmp_path / "items.jsonl", 300)
    out = tmp_path / "out.jsonl"
    args = ("summarize", str(tmp_path / "items.jsonl"), "-o", str(out), "--no-cache")
    proc = start(*args)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_bytes().count(b"\n") >= 20):
        assert time.monotonic() < deadline
        assert proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert b"run the same command again to resume" in err
    data = out.read_bytes()
    written = data.count(b"\n")
    assert data.endswith(b"\n")
    assert 20 <= written < 300
    rerun = batch(*args)
    assert rerun.code == 0, rerun.err
    assert f"({written} from earlier runs)" in rerun.err
    check_exactly_once(out, ids)
