"""What ``offload batch`` must never do: destroy or misread files, read devices, trip on bad input.

End-to-end tests run the real ``offload`` entry point in a subprocess against the LM Studio fake
over loopback HTTP; unit tests drive ``OutputLog``, ``scan`` and ``read_input`` on real files.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.batching.output import OutputLog, read_rows, scan
from offload.errors import InputError
from offload.testing import LMStudioFake
from tests.e2e import OFFLOAD, Run, write_config

TEXT = "The council approved the new cycling lanes after a long debate about parking and buses."
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


def own_line(item_id: str | int, error: str | None = None) -> bytes:
    """One output line as offload writes it."""
    failure = {"kind": error, "message": "m", "remedy": None} if error else None
    row = {"id": item_id, "output": "o", "model": "m", "tokens": {"input": 1, "output": 1}, "error": failure}
    return json.dumps(row, separators=(",", ":")).encode() + b"\n"


def items(path: Path, *ids: str) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": f"{i}: {TEXT}"}) + "\n" for i in ids))
    return path


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


# --- -o refuses what is not its own ---------------------------------------------------------------


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


def test_a_csv_output_is_refused_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    out.write_text("id,text\n1,hello\n")
    with pytest.raises(InputError, match=r"table\.csv holds something other than offload results"):
        OutputLog(out).open()
    assert out.read_text() == "id,text\n1,hello\n"


def test_a_foreign_line_after_offload_rows_is_refused_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = own_line("a") + b"remember to check b\n" + own_line("c")
    out.write_bytes(data)
    with pytest.raises(InputError, match="line 2: not a JSON line"):
        OutputLog(out).open()
    assert out.read_bytes() == data


def test_a_tail_that_is_not_offload_s_own_is_not_cut(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = own_line("a") + b"a note without a newline"
    out.write_bytes(data)
    with pytest.raises(InputError, match="line 2: not a JSON line"):
        OutputLog(out).open()
    assert out.read_bytes() == data


def test_a_complete_foreign_object_without_newline_is_not_cut(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = b'{"id":"a","text":"x"}'
    out.write_bytes(data)
    with pytest.raises(InputError, match="line 1: a JSON object"):
        OutputLog(out).open()
    assert out.read_bytes() == data


def test_a_foreign_json_array_line_is_named_as_such(tmp_path: Path) -> None:
    verdict = scan(own_line("a") + b"[1, 2]\n")
    assert verdict.foreign == "line 2: a JSON list, not an offload result row"


@pytest.mark.parametrize(
    "row",
    [
        {"id": True, "output": "o", "model": "m", "tokens": {}, "error": None},
        {"id": None, "output": "o", "model": "m", "tokens": {}, "error": None},
        {"id": "a", "output": "o", "model": "m", "tokens": 3, "error": None},
        {"id": "a", "output": "o", "model": "m", "tokens": {}, "error": "boom"},
        {"id": "a", "output": "o", "model": "m", "tokens": {}},
        {"id": "a", "model": "m", "tokens": {}, "error": None},
    ],
    ids=["bool-id", "null-id", "tokens-not-object", "error-not-object", "no-error", "no-output"],
)
def test_rows_without_offload_s_shape_are_foreign(row: dict[str, object]) -> None:
    assert scan(json.dumps(row).encode() + b"\n").foreign is not None


def test_an_empty_or_blank_file_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"\n  \n")
    log = OutputLog(out)
    assert log.open().done == set()
    log.close()
    assert out.read_bytes() == b""


def test_old_offload_rows_with_id_last_still_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    cached = {"output": "o", "model": "m", "tokens": {"input": 0, "output": 0}, "error": None, "id": 7}
    out.write_bytes(json.dumps(cached).encode() + b"\n")
    log = OutputLog(out)
    assert log.open().done == {"7"}
    log.close()


def test_new_lines_start_with_the_id(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    log = OutputLog(out)
    log.open()
    log.append({"output": "o", "model": "m", "tokens": {}, "error": None, "id": "x"})
    log.close()
    assert out.read_bytes().startswith(b'{"id":"x",')


def test_a_file_of_zeroed_lines_from_a_crash_is_repaired(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"\x00\x00\x00\n\x00\x00")
    log = OutputLog(out)
    resume = log.open()
    log.close()
    assert resume.done == set()
    assert out.read_bytes() == b""


# --- special files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/full", "/dev/zero"])
def test_a_device_as_output_is_refused_at_once(device: str, fake: LMStudioFake, tmp_path: Path) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    src = items(tmp_path / "small.jsonl", "a")
    run = batch("summarize", str(src), "-o", device, timeout=60)
    assert run.code == 2, run.err
    assert f"the output {device} is a device, not a regular file" in run.err
    assert "-o - to stream the results to stdout" in run.err


def test_a_fifo_as_output_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a pipe, not a regular file"):
        OutputLog(fifo).open()


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
