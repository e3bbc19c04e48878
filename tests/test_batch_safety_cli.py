"""``offload batch`` as a user runs it, on files it must not harm: the real entry point in a
subprocess against the LM Studio fake over loopback HTTP (the in-process tests of the same rules
are in ``test_batch_safety``, which mutation testing runs)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.batching.output import read_rows
from offload.testing import LMStudioFake
from tests.e2e import OFFLOAD, Run, write_config
from tests.test_batch_safety import TEXT, csv_file, items, own_line, tmpfs, tree

__all__ = ["tree"]  # a fixture used here

MODEL_PATHS = ("/api/v1/chat", "/v1/chat/completions", "/v1/responses", "/v1/messages")


def batch(*args: str, timeout: float = 120) -> Run:
    proc = subprocess.run(
        [*OFFLOAD, "batch", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def asked(fake: LMStudioFake) -> list[str]:
    """The bodies of the model calls the fake received (not the warm-up), as JSON text."""
    bodies = [json.dumps(r.body) for r in fake.requests if r.method == "POST" and r.path in MODEL_PATHS]
    return [b for b in bodies if "Reply with exactly: ok" not in b]


def model_calls(fake: LMStudioFake) -> int:
    return len(asked(fake))


@pytest.fixture
def fake(offload_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LMStudioFake]:
    lms = LMStudioFake(parallel=2, service_time=0.0)
    with lms.serve() as server:
        cfg = write_config(
            offload_home,
            f"""{{
  agents: {{ defaults: {{ model: {{ primary: "lmstudio/auto" }} }} }},
  models: {{ mode: "replace", providers: {{ lmstudio: {{ baseUrl: "{server.url}", api: "lmstudio" }} }} }},
}}""",
        )
        monkeypatch.setenv("OFFLOAD_CONFIG", str(cfg))
        yield lms


def test_a_notes_file_as_output_is_refused_and_left_untouched(fake: LMStudioFake, tmp_path: Path) -> None:
    src = items(tmp_path / "small.jsonl", "a", "b")
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    run = batch("summarize", str(src), "-o", str(notes))
    assert run.code == 2, run.err
    assert "notes.txt holds something other than offload results" in run.err
    assert "Traceback" not in run.err
    assert notes.read_text() == "my notes\n"
    assert model_calls(fake) == 0


def test_another_jsonl_dataset_is_refused_and_its_ids_do_not_count_as_done(
    fake: LMStudioFake, tmp_path: Path
) -> None:
    src = items(tmp_path / "small.jsonl", "a", "b")
    other = items(tmp_path / "other.jsonl", "a", "z")
    before = other.read_bytes()
    run = batch("summarize", str(src), "-o", str(other))
    assert run.code == 2, run.err
    assert "line 1: a JSON object without offload's result fields" in run.err
    assert other.read_bytes() == before


def test_an_output_hard_linked_to_the_input_is_refused(fake: LMStudioFake, tmp_path: Path) -> None:
    src = items(tmp_path / "small.jsonl", "a", "b")
    link = tmp_path / "out.jsonl"
    os.link(src, link)
    run = batch("summarize", str(src), "-o", str(link))
    assert run.code == 2, run.err
    assert "is the input file" in run.err
    assert model_calls(fake) == 0


@pytest.mark.parametrize("device", ["/dev/full", "/dev/zero"])
def test_a_device_as_output_is_refused_at_once(device: str, fake: LMStudioFake, tmp_path: Path) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    src = items(tmp_path / "small.jsonl", "a")
    run = batch("summarize", str(src), "-o", device, timeout=60)
    assert run.code == 2, run.err
    assert f"the output {device} is a device, not a regular file" in run.err
    assert "-o - to stream the results to stdout" in run.err


def test_dev_stdout_into_a_pipe_is_refused_without_a_traceback(fake: LMStudioFake, tmp_path: Path) -> None:
    src = items(tmp_path / "small.jsonl", "a")
    run = batch("summarize", str(src), "-o", "/dev/stdout")  # stdout is a pipe here, as in `| cat`
    assert run.code == 2, run.err
    assert "Traceback" not in run.err
    assert "is a pipe, not a regular file" in run.err


def test_dash_streams_every_result_to_stdout_with_no_resume(fake: LMStudioFake, tmp_path: Path) -> None:
    src = items(tmp_path / "small.jsonl", "a", "b")
    first = batch("summarize", str(src), "-o", "-", "--length", "sentence", "-q")
    assert first.code == 0, first.err
    assert sorted(json.loads(x)["id"] for x in first.out.splitlines()) == ["a", "b"]
    again = batch("summarize", str(src), "-o", "-", "--length", "sentence", "-q", "--no-cache")
    assert sorted(json.loads(x)["id"] for x in again.out.splitlines()) == ["a", "b"]
    assert not (tmp_path / "-").exists()
    assert not Path("-").exists()


def test_own_output_still_resumes_end_to_end(fake: LMStudioFake, tmp_path: Path) -> None:
    src = items(tmp_path / "small.jsonl", "a", "b")
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a"))
    run = batch("summarize", str(src), "-o", str(out), "--length", "sentence")
    assert run.code == 0, run.err
    assert [r["id"] for r in read_rows(out)] == ["a", "b"]
    assert [body.count(f"b: {TEXT}") for body in asked(fake)] == [1]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 KiB tmpfs."""
    with tmpfs(tmp_path / "small", "size=12k") as mnt:
        yield mnt


def test_a_full_disk_stops_with_one_line_and_the_rerun_resumes_exactly(
    fake: LMStudioFake, small_disk: Path, tmp_path: Path
) -> None:
    ids = [f"item-{k:02d}" for k in range(60)]
    src = items(tmp_path / "many.jsonl", *ids)
    out = small_disk / "out.jsonl"
    run = batch("summarize", str(src), "-o", str(out), "--length", "sentence", "--no-cache")
    assert run.code == 1, run.err
    assert "Traceback" not in run.err
    assert f"cannot write the output {out}: No space left on device" in run.err
    assert out.read_bytes().endswith(b"\n")
    written = len(read_rows(out))
    assert 0 < written < len(ids)
    grown = subprocess.run(
        ["mount", "-o", "remount,size=1m", str(small_disk)], capture_output=True, timeout=30, check=False
    )
    assert grown.returncode == 0, grown.stderr
    again = batch("summarize", str(src), "-o", str(out), "--length", "sentence", "-q")
    assert again.code == 0, again.err
    got = [r["id"] for r in read_rows(out)]
    assert sorted(got) == ids
    assert len(got) == len(set(got))


def test_a_reader_that_goes_away_stops_the_stream_without_a_traceback(
    fake: LMStudioFake, tmp_path: Path
) -> None:
    src = items(tmp_path / "many.jsonl", *(f"item-{k:02d}" for k in range(40)))
    proc = subprocess.Popen(
        [*OFFLOAD, "batch", "summarize", str(src), "-o", "-", "--length", "sentence", "--no-cache"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate(timeout=120)
    assert json.loads(first)["id"].startswith("item-")
    assert b"Traceback" not in err
    assert b"cannot write stdout: Broken pipe" in err
    assert proc.returncode == 1


def test_an_unclosed_quote_refuses_the_batch_before_any_call(fake: LMStudioFake, tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'id,text\n1,"unclosed\n2,normal\n3,"ok"\n')
    run = batch("summarize", str(src), "-o", str(tmp_path / "out.jsonl"))
    assert run.code == 2, run.err
    assert "rows.csv: line 2: a quoted field starts in this record" in run.err
    assert "Traceback" not in run.err
    assert model_calls(fake) == 0


def test_batch_cli_follows_links_out_only_when_asked(fake: LMStudioFake, tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run = batch("summarize", str(tree), "-o", str(out), "--length", "sentence")
    assert run.code == 13, run.err
    assert "secret-link.txt: a symbolic link out of the directory" in run.err
    assert not any("a secret outside the tree" in body for body in asked(fake))
    again = batch("summarize", str(tree), "-o", str(out), "--length", "sentence", "--follow-symlinks")
    assert again.code == 0, again.err
    assert any("a secret outside the tree" in body for body in asked(fake))


def test_empty_items_fail_as_empty_input_without_a_model_call(fake: LMStudioFake, tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text(
        json.dumps({"id": "empty", "text": ""})
        + "\n"
        + json.dumps({"id": "blank", "text": " \n\t "})
        + "\n"
        + json.dumps({"id": "full", "text": TEXT})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    run = batch("summarize", str(src), "-o", str(out), "--length", "sentence")
    assert run.code == 13, run.err
    errors = {r["id"]: r["error"] for r in read_rows(out)}
    assert errors["empty"] == {
        "kind": "input",
        "message": "summarize: empty input",
        "remedy": "give it some text to work on",
    }
    assert errors["blank"]["message"] == "summarize: empty input"
    assert errors["full"] is None
    assert model_calls(fake) == 1


def test_an_empty_file_in_a_directory_fails_without_a_model_call(fake: LMStudioFake, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "empty.txt").write_text("")
    (root / "full.txt").write_text(TEXT)
    out = tmp_path / "out.jsonl"
    run = batch("summarize", str(root), "-o", str(out), "--length", "sentence")
    assert run.code == 13, run.err
    errors = {r["id"]: r["error"] for r in read_rows(out)}
    assert errors["empty.txt"]["message"] == "summarize: empty input"
    assert model_calls(fake) == 1


@pytest.mark.parametrize(
    "args",
    [("summarize", ""), ("translate", "  ", "--to", "German"), ("classify", "", "--labels", "a,b")],
    ids=["summarize", "translate", "classify"],
)
def test_a_single_task_on_empty_text_exits_2_without_a_model_call(
    fake: LMStudioFake, args: tuple[str, ...]
) -> None:
    proc = subprocess.run([*OFFLOAD, *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"error: {args[0]}: empty input" in proc.stderr
    assert model_calls(fake) == 0


def test_invalid_utf8_on_stdin_is_reported_per_line_without_a_traceback(
    fake: LMStudioFake, tmp_path: Path
) -> None:
    data = b'{"id": "a", "text": "\xff bad"}\n' + json.dumps({"id": "b", "text": TEXT}).encode() + b"\n"
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [*OFFLOAD, "batch", "summarize", "-", "-o", str(out), "--length", "sentence"],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 13, proc.stderr
    assert b"input      line 1: not valid JSON (not UTF-8)" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert [r["id"] for r in read_rows(out)] == ["b"]
