"""What ``offload batch`` must never do, in process: destroy or misread output files, read devices,
trip on bad input, or run an empty item. Drives ``OutputLog``, ``scan`` and ``read_input`` on real
files (small tmpfs mounts for a full disk); the same rules through the CLI are in
``test_batch_safety_cli``. Mutation testing (``scripts/mutation.py``) runs this file."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.batching import output
from offload.batching.inputs import read_input
from offload.batching.output import NotOwn, OutputFailed, OutputLog, encode, read_rows, scan
from offload.errors import InputError

TEXT = "The council approved the new cycling lanes after a long debate about parking and buses."


def own_line(item_id: str | int, error: str | None = None) -> bytes:
    """One output line as offload writes it."""
    failure = {"kind": error, "message": "m", "remedy": None} if error else None
    row = {"id": item_id, "output": "o", "model": "m", "tokens": {"input": 1, "output": 1}, "error": failure}
    return json.dumps(row, separators=(",", ":")).encode() + b"\n"


def items(path: Path, *ids: str) -> Path:
    path.write_text("".join(json.dumps({"id": i, "text": f"{i}: {TEXT}"}) + "\n" for i in ids))
    return path


# --- -o refuses what is not its own ---------------------------------------------------------------


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


def test_a_foreign_json_array_line_is_named_as_such() -> None:
    with pytest.raises(NotOwn, match=r"^line 2: a JSON list, not an offload result row$"):
        scan(own_line("a") + b"[1, 2]\n")


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
    with pytest.raises(NotOwn, match=r"^line 1: a JSON object without offload's result fields"):
        scan(json.dumps(row).encode() + b"\n")


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


def test_a_fifo_as_output_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a pipe, not a regular file"):
        OutputLog(fifo).open()


# --- a full disk, a closed pipe -----------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at ``where`` (needs root and mount rights; the test is skipped otherwise)."""
    where.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30, check=False)


# --- resume: each repair alone ---------------------------------------------------------------------


def reopen(path: Path, *, retry_failed: bool = False) -> tuple[set[str], list[str]]:
    """Open and close the output; the ids resume counts as done and its notes."""
    log = OutputLog(path, retry_failed=retry_failed)
    resume = log.open()
    log.close()
    return resume.done, resume.notes


@pytest.mark.parametrize("blank", [b"\n", b"   \t\n", b"\r\n"], ids=["empty", "spaces", "crlf"])
def test_a_blank_line_does_not_stop_the_resume_scan(tmp_path: Path, blank: bytes) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + blank + own_line("b") + own_line("c"))
    done, notes = reopen(out)
    assert done == {"a", "b", "c"}
    assert out.read_bytes() == own_line("a") + own_line("b") + own_line("c")
    assert notes == ["removed 1 blank line(s)"]


def test_repeated_ids_alone_are_rewritten_to_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("a", "timeout") + own_line("c"))
    done, notes = reopen(out)
    assert done == {"a", "c"}
    assert out.read_bytes() == own_line("a") + own_line("c")
    assert notes == ["removed 1 repeated id line(s) (the first was kept)"]


def test_zeroed_lines_alone_are_cut_and_counted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + b"\x00\x00\n" + own_line("c"))
    done, notes = reopen(out)
    assert done == {"a", "c"}
    assert out.read_bytes() == own_line("a") + own_line("c")
    assert notes == ["removed 1 unreadable line(s); their items run again"]


def test_a_torn_own_line_in_the_middle_is_cut(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + b'{"id":"b","output":"hal\n' + own_line("c"))
    done, _ = reopen(out)
    assert done == {"a", "c"}
    assert out.read_bytes() == own_line("a") + own_line("c")


def test_retry_failed_alone_rewrites_without_the_failed_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("b", "quality_gate") + own_line("c"))
    done, notes = reopen(out, retry_failed=True)
    assert done == {"a", "c"}
    assert out.read_bytes() == own_line("a") + own_line("c")
    assert notes == ["removed 1 failed item(s) to run them again (--retry-failed)"]


def test_failed_lines_are_kept_and_reported_without_retry_failed(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    data = own_line("a") + own_line("b", "quality_gate")
    out.write_bytes(data)
    log = OutputLog(out)
    resume = log.open()
    log.close()
    assert resume.failed == {"b": "quality_gate"}
    assert resume.done == {"a", "b"}
    assert resume.notes == []
    assert out.read_bytes() == data


def test_a_clean_output_is_not_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("b"))
    inode = out.stat().st_ino
    reopen(out)
    assert out.stat().st_ino == inode


def test_a_torn_tail_alone_is_truncated_in_place(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + b'{"id":"b","out')
    inode = out.stat().st_ino
    done, notes = reopen(out)
    assert done == {"a"}
    assert notes == ["dropped a half-written last line (14 bytes)"]
    assert out.read_bytes() == own_line("a")
    assert out.stat().st_ino == inode


@pytest.mark.parametrize("tail", [b"{", b'{"i', b'{"id":', b"\x00\x00", b'  {"id":"b"'])
def test_every_start_of_an_own_line_counts_as_a_torn_tail(tail: bytes) -> None:
    verdict = scan(own_line("a") + tail)
    assert verdict.end == len(own_line("a"))


def test_a_complete_own_row_missing_its_newline_is_cut_and_runs_again() -> None:
    verdict = scan(own_line("a") + own_line("b").rstrip(b"\n"))
    assert verdict.resume.done == {"a"}


def test_appends_after_a_repair_go_to_the_repaired_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("a") + b'{"id":"z"')
    log = OutputLog(out)
    log.open()
    log.append(json.loads(own_line("b")))
    log.close()
    assert out.read_bytes() == own_line("a") + own_line("b")


# --- the output file in process: errors, modes, descriptors, the background sync -------------------


def big_row(item_id: int) -> dict[str, object]:
    return {"id": item_id, "output": "x" * 2900, "model": "m", "tokens": {}, "error": None}


def test_a_full_disk_fails_the_append_and_cuts_back_to_whole_lines(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=12k") as disk:
        out = disk / "out.jsonl"
        log = OutputLog(out)
        log.open()
        appended: list[int] = []
        for k in range(4):  # 4 rows fit in 12 KiB; the 5th is written in part, then fails
            log.append(big_row(k))
            appended.append(k)
        with pytest.raises(OutputFailed) as caught:
            log.append(big_row(4))
        assert str(caught.value) == (
            f"cannot write the output {out}: No space left on device\n"
            "  → make room (or fix the disk), then rerun the command to resume"
        )
        assert log.written == 4
        assert out.read_bytes() == b"".join(encode(big_row(k)) for k in appended)
        log.close()


def test_a_repair_on_a_full_disk_fails_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=12k") as disk:
        out = disk / "out.jsonl"
        data = encode(big_row(1)) + encode(big_row(1)) + encode(big_row(2)) + encode(big_row(3))
        out.write_bytes(data)
        before = fd_count()
        with pytest.raises(OutputFailed, match=f"^cannot repair the output {out}: No space left on device"):
            OutputLog(out).open()
        assert out.read_bytes() == data
        assert [p.name for p in disk.iterdir()] == ["out.jsonl"]
        assert fd_count() == before


def test_a_repair_that_cannot_create_its_temp_file_fails_clearly(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "size=64k,nr_inodes=2") as disk:
        out = disk / "out.jsonl"
        data = own_line("a") + own_line("a")
        out.write_bytes(data)
        with pytest.raises(OutputFailed, match=f"^cannot repair the output {out}: No space left on device"):
            OutputLog(out).open()
        assert out.read_bytes() == data


def test_dash_writes_whole_lines_to_stdout_and_leaves_it_open(capfd: pytest.CaptureFixture[str]) -> None:
    log = OutputLog("-")
    assert log.open().done == set()
    log.append(json.loads(own_line("a")))
    log.close()
    log.close()
    os.fstat(1)  # still open
    assert log.written == 1
    assert capfd.readouterr().out == own_line("a").decode()


def test_a_closed_stdout_pipe_fails_with_one_clear_error() -> None:
    read, write = os.pipe()
    os.close(read)
    saved = os.dup(1)
    try:
        os.dup2(write, 1)
        log = OutputLog("-")
        log.open()
        with pytest.raises(OutputFailed) as caught:
            log.append(json.loads(own_line("a")))
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(write)
    assert str(caught.value) == "cannot write stdout: Broken pipe"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_output_is_created_rw_r_r_with_its_directories(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "a" / "b" / "out.jsonl"
    log = OutputLog(out)
    log.open()
    log.close()
    assert out.stat().st_mode & 0o777 == 0o644


def test_a_repaired_output_is_rw_r_r(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("a"))
    os.chmod(out, 0o600)
    log = OutputLog(out)
    log.open()
    log.close()
    assert out.stat().st_mode & 0o777 == 0o644


def test_appends_use_an_append_only_descriptor_closed_on_exec(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("a"))  # the repair hands over a new descriptor
    log = OutputLog(out)
    log.open()
    fd = log._fd
    assert fd is not None
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    log.close()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_open_repair_and_close_leak_no_descriptor(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + own_line("a"))
    before = fd_count()
    log = OutputLog(out)
    log.open()
    log.close()
    log.close()
    assert fd_count() == before


def test_a_refused_output_leaks_no_descriptor(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    before = fd_count()
    with pytest.raises(InputError):
        OutputLog(out).open()
    assert fd_count() == before


def test_a_clean_resume_does_not_touch_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a"))
    os.utime(out, ns=(1_000_000_000, 1_000_000_000))
    log = OutputLog(out)
    log.open()
    log.close()
    assert out.stat().st_mtime_ns == 1_000_000_000


def test_an_output_through_a_dangling_symlink_says_it_cannot_open(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.symlink_to(tmp_path / "missing" / "deeper" / "x.jsonl")
    with pytest.raises(InputError, match=r"^cannot open the output .*out\.jsonl: No such file or directory$"):
        OutputLog(out).open()


def test_an_output_in_a_symlink_loop_says_it_cannot_open(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.symlink_to(out)
    with pytest.raises(InputError, match=r"^cannot open the output .*: Too many levels of symbolic links$"):
        OutputLog(out).open()


def test_dev_null_is_refused_as_a_device() -> None:
    with pytest.raises(InputError) as caught:
        OutputLog("/dev/null").open()
    assert caught.value.message == "the output /dev/null is a device, not a regular file"
    assert (
        caught.value.remedy == "give a file path with -o, or -o - to stream the results to stdout (no resume)"
    )


def test_a_socket_is_refused_as_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(InputError, match="is a socket, not a regular file"):
            OutputLog(path).open()


def test_a_refusal_says_what_to_do(tmp_path: Path) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes\n")
    with pytest.raises(InputError) as caught:
        OutputLog(out).open()
    assert caught.value.remedy == (
        "offload appends only to a new file or to its own output; "
        "choose another -o file, or move notes.txt aside"
    )


def test_a_second_writer_is_told_to_wait(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = OutputLog(out)
    first.open()
    before = fd_count()
    with pytest.raises(InputError) as caught:
        OutputLog(out).open()
    after = fd_count()
    first.close()
    assert caught.value.remedy == "wait for it to finish, or choose another -o file"
    assert after == before


def test_append_before_open_is_a_programming_error(tmp_path: Path) -> None:
    log = OutputLog(tmp_path / "out.jsonl")
    with pytest.raises(RuntimeError, match=r"^OutputLog\.append before open\(\)$"):
        log.append(json.loads(own_line("a")))


def test_written_counts_this_run_s_lines(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a"))
    log = OutputLog(out)
    log.open()
    assert log.written == 0
    log.append(json.loads(own_line("b")))
    log.append(json.loads(own_line("c")))
    log.close()
    assert log.written == 2


def test_lines_keep_non_ascii_text_as_utf8(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    log = OutputLog(out)
    log.open()
    log.append({"id": "é", "output": "größer", "model": "m", "tokens": {}, "error": None})
    log.close()
    assert out.read_bytes() == '{"id":"é","output":"größer","model":"m","tokens":{},"error":null}\n'.encode()


def test_an_error_without_a_kind_counts_as_error(tmp_path: Path) -> None:
    row = {"id": "b", "output": None, "model": None, "tokens": {}, "error": {"message": "m"}}
    assert scan(own_line("a") + json.dumps(row).encode() + b"\n").resume.failed == {"b": "error"}


@pytest.mark.parametrize("data", [b"XX\n", b"XX"], ids=["line", "tail"])
def test_letters_are_not_damage(data: bytes) -> None:
    with pytest.raises(NotOwn, match="not a JSON line"):
        scan(own_line("a") + data)


def test_every_repair_is_counted(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    zeroed, failed = b"\x00\n", own_line("f", "timeout")
    out.write_bytes(
        own_line("a") + b"\n\n" + zeroed + zeroed + own_line("a") * 2 + failed + own_line("g", "x")
    )
    done, notes = reopen(out, retry_failed=True)
    assert done == {"a"}
    assert notes == [
        "removed 2 unreadable line(s); their items run again",
        "removed 2 blank line(s)",
        "removed 2 repeated id line(s) (the first was kept)",
        "removed 2 failed item(s) to run them again (--retry-failed)",
    ]


def test_read_rows_skips_unreadable_lines_and_the_torn_tail(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a") + b"\x00\x00\n[1]\n" + own_line("b") + b'{"id":"c"')
    assert [r["id"] for r in read_rows(out)] == ["a", "b"]


def test_a_directory_named_like_a_stale_temp_file_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(own_line("a"))
    (tmp_path / ".out.jsonl.77.tmp").mkdir()
    (tmp_path / ".out.jsonl.78.tmp").write_bytes(b"{")
    done, _ = reopen(out)
    assert done == {"a"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.jsonl.77.tmp", "out.jsonl"]


def test_syncing_a_missing_directory_is_quietly_skipped(tmp_path: Path) -> None:
    output._sync_dir(tmp_path / "missing")


async def test_appends_are_synced_in_the_background_until_aclose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(output, "SYNC_INTERVAL", 0.01)
    monkeypatch.setattr(os, "fsync", spy)
    log = OutputLog(tmp_path / "out.jsonl")
    log.open()
    fd = log._fd
    assert fd is not None
    log.append(json.loads(own_line("a")))
    syncer = log._syncer
    assert syncer is not None
    deadline = time.monotonic() + 60
    while fd not in synced and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert fd in synced
    assert log._dirty is False
    await log.aclose()
    assert log._syncer is None
    assert syncer.cancelled()


async def test_aclose_without_appends_closes_the_file(tmp_path: Path) -> None:
    log = OutputLog(tmp_path / "out.jsonl")
    log.open()
    before = fd_count()
    await log.aclose()
    assert fd_count() == before - 1


async def test_streaming_to_stdout_starts_no_background_sync(capfd: pytest.CaptureFixture[str]) -> None:
    log = OutputLog("-")
    log.open()
    log.append(json.loads(own_line("a")))
    assert log._syncer is None
    await log.aclose()
    assert capfd.readouterr().out == own_line("a").decode()


# --- CSV input --------------------------------------------------------------------------------------


def csv_file(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "rows.csv"
    path.write_bytes(data)
    return path


def test_an_unclosed_quote_at_the_end_names_its_line(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'id,text\n1,fine\n2,"never closed\n3,normal\n4,normal\n')
    with pytest.raises(InputError) as caught:
        read_input(src)
    assert caught.value.message == f"{src}: line 3: a quoted field starts in this record and is never closed"
    assert caught.value.remedy is not None
    assert '""b""' in caught.value.remedy


def test_a_quote_that_swallows_later_rows_names_its_line(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'id,text\n1,"unclosed\n2,normal\n3,"ok"\n')
    with pytest.raises(
        InputError, match=r"line 2: a quoted field starts in this record and its closing quote"
    ):
        read_input(src)


def test_a_broken_header_row_names_line_1(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'"id"x,text\n1,a\n')
    with pytest.raises(InputError, match=r"rows\.csv: line 1: "):
        read_input(src)


def test_a_bad_utf8_byte_in_a_data_row_skips_only_that_row(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b"id,text\n1,ok\n2,bad \xff byte\n3,fine\n")
    got = read_input(src)
    assert [i.id for i in got.items] == ["1", "3"]
    assert [str(p) for p in got.problems] == [
        "line 3: not UTF-8 text; the row is skipped (save the file as UTF-8)"
    ]


def test_a_bad_utf8_byte_in_the_header_refuses_the_file(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b"id,t\xffxt\n1,ok\n")
    with pytest.raises(InputError, match="the header row is not UTF-8 text"):
        read_input(src)


def test_repeated_header_names_are_an_error(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b"id,text,note,text,note\n1,a,b,c,d\n")
    with pytest.raises(InputError) as caught:
        read_input(src)
    assert caught.value.message == f"{src}: the header row names 'note', 'text' more than once"


def test_a_byte_order_mark_and_crlf_lines_are_read(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b"\xef\xbb\xbfid,text\r\n1,alpha\r\n2,beta\r\n")
    got = read_input(src)
    assert [(i.id, i.text) for i in got.items] == [("1", "alpha"), ("2", "beta")]


def test_a_quoted_field_over_several_lines_is_one_item_at_its_first_line(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'id,text\n1,"first\nsecond"\n2,x\n3,too,many\n')
    got = read_input(src)
    assert [(i.id, i.text, i.line) for i in got.items] == [("1", "first\nsecond", 2), ("2", "x", 4)]
    assert [str(p) for p in got.problems] == ["line 5: 3 fields where the header has 2"]


# --- JSONL ids --------------------------------------------------------------------------------------


def test_a_bare_string_whose_line_number_is_another_item_s_id_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"id": 2, "text": "x"}\n"a bare string"\n')
    with pytest.raises(InputError) as caught:
        read_input(src)
    assert (
        caught.value.message == "line 2 has no id, so its number 2 is its id, but line 1 has the id '2' too"
    )
    assert caught.value.remedy == "give every item an id of its own (or none at all)"


def test_an_explicit_id_equal_to_an_earlier_bare_string_s_line_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('"a bare string"\n{"id": "1", "text": "x"}\n')
    with pytest.raises(InputError, match=r"^line 1 has no id, so its number 1 is its id, but line 2 has"):
        read_input(src)


def test_bare_strings_and_ids_that_do_not_collide_are_read(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n"a bare string"\n')
    assert [i.id for i in read_input(src).items] == ["a", 2]


def test_in_memory_strings_collide_with_ids_too() -> None:
    with pytest.raises(InputError, match=r"^item 1 has no id"):
        read_input(["one", {"id": 1, "text": "x"}])


def test_explicit_repeats_stay_a_skipped_line(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    got = read_input(src)
    assert [i.text for i in got.items] == ["x"]
    assert [str(p) for p in got.problems] == ["line 2: id 'a' repeats an earlier item (line 1); skipped"]


# --- directory input and symbolic links ---------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("a secret outside the tree")
    (outside / "more").mkdir()
    (outside / "more" / "deep.txt").write_text("deep outside")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "more-link").symlink_to(outside / "more")
    (root / "inner-link.txt").symlink_to(root / "a.txt")
    (root / "sub" / "loop").symlink_to(root)
    return root


def test_a_directory_walk_does_not_leave_the_tree(tree: Path) -> None:
    got = read_input(tree)
    assert [i.id for i in got.items] == ["a.txt", "inner-link.txt", "sub/b.txt"]
    assert sorted(str(p) for p in got.problems) == [
        "more-link: a symbolic link out of the directory; skipped (--follow-symlinks)",
        "secret-link.txt: a symbolic link out of the directory; skipped (--follow-symlinks)",
    ]


def test_follow_symlinks_reads_links_out_and_walks_a_cycle_once(tree: Path) -> None:
    got = read_input(tree, follow_symlinks=True)
    assert [i.id for i in got.items] == [
        "a.txt",
        "inner-link.txt",
        "more-link/deep.txt",
        "secret-link.txt",
        "sub/b.txt",
    ]
    assert got.problems == []


# --- empty input ------------------------------------------------------------------------------------


def test_task_specs_refuse_empty_input_and_ask_has_no_input_text() -> None:
    from offload.batching.inputs import Item
    from offload.batching.jobs import make_job
    from offload.tasks import builtin

    for spec in (builtin.review("", kind="code"), builtin.brainstorm(" "), builtin.rewrite("", "formal")):
        with pytest.raises(InputError, match=r": empty input\n"):
            spec.check_input()
    make_job("ask", {"prompt": "Say hi"}).spec(Item(1, "")).check_input()


# --- reading input: exact sources, messages and item shapes -------------------------------------------


def test_stdin_is_read_as_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(b'{"id": "a", "text": "alpha"}\n"beta"\n')

    monkeypatch.setattr(sys, "stdin", Stdin())
    got = read_input("-")
    assert got.source == "stdin"
    assert [(i.id, i.text) for i in got.items] == [("a", "alpha"), (2, "beta")]


def test_every_input_kind_names_its_source(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "x"}\n')
    table = csv_file(tmp_path, b"text\nx\n")
    folder = tmp_path / "docs"
    folder.mkdir()
    assert read_input(jsonl).source == str(jsonl)
    assert read_input(table).source == str(table)
    assert read_input(folder).source == str(folder)
    assert read_input(["x"]).source == "items"


def test_input_paths_that_cannot_be_read_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        read_input(tmp_path / "nope.jsonl")
    assert missing.value.remedy == "give a JSONL or CSV file, or a directory"
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with pytest.raises(InputError) as not_dir:
        read_input(plain, fmt="dir")
    assert not_dir.value.message == f"{plain} is not a directory"
    with pytest.raises(InputError) as as_jsonl:
        read_input(tmp_path, fmt="jsonl")
    assert as_jsonl.value.message == f"cannot read {tmp_path}: Is a directory"
    with pytest.raises(InputError) as as_csv:
        read_input(tmp_path, fmt="csv")
    assert as_csv.value.message == f"cannot read {tmp_path}: Is a directory"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.tab", "tsv"), ("a.TSV", "tsv"), ("a.CSV", "csv"), ("a.txt", "jsonl"), ("a", "jsonl")],
)
def test_formats_come_from_the_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    from offload.batching.inputs import detect_format

    assert detect_format(tmp_path / name) == fmt


def test_broken_quoting_messages_name_both_lines(tmp_path: Path) -> None:
    src = csv_file(tmp_path, b'id,text\n1,"unclosed\n2,normal\n3,"ok"\n')
    with pytest.raises(InputError) as caught:
        read_input(src)
    assert caught.value.message == (
        f"{src}: line 2: a quoted field starts in this record "
        "and its closing quote (line 4) has text after it"
    )
    header = csv_file(tmp_path, b'"id"x,text\n1,a\n')
    with pytest.raises(InputError) as first:
        read_input(header)
    assert first.value.message == (
        f"{header}: line 1: a quoted field starts in this record "
        "and its closing quote (line 1) has text after it"
    )


def test_header_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputError) as bad:
        read_input(csv_file(tmp_path, b"id,t\xffxt\n1,ok\n"))
    assert bad.value.remedy == "save the file as UTF-8"
    with pytest.raises(InputError) as twice:
        read_input(csv_file(tmp_path, b"id,id\n1,2\n"))
    assert twice.value.remedy == "give every column a name of its own"


def test_directory_items_carry_path_name_and_position(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "b.txt").write_text("beta")
    (root / "a.txt").write_text("alpha")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("hidden")
    (root / "bad.txt").write_bytes(b"\xff\xfe")
    got = read_input(root)
    assert [(i.id, i.line, dict(i.fields)) for i in got.items] == [
        ("a.txt", 1, {"path": "a.txt", "name": "a.txt"}),
        ("sub/b.txt", 3, {"path": "sub/b.txt", "name": "b.txt"}),
    ]
    assert [(p.line, p.where, str(p)) for p in got.problems] == [(0, "file", "bad.txt: not UTF-8 text")]


def test_a_link_cycle_met_first_does_not_end_the_walk(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "z").mkdir(parents=True)
    (root / "z" / "c.txt").write_text("gamma")
    (root / "a-loop").symlink_to(root)
    got = read_input(root, follow_symlinks=True)
    assert [i.id for i in got.items] == ["z/c.txt"]


def test_a_link_out_is_reported_as_a_file_problem(tree: Path) -> None:
    problems = read_input(tree).problems
    assert [(p.line, p.where) for p in problems] == [(0, "file"), (0, "file")]


def test_jsonl_line_problems_are_exact(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_bytes(b'{"key": "a", "text": "x"}\n"bare"\n\xff\n[1]\n{"text": "no key"}\n')
    got = read_input(src, id_field="key")
    assert [str(p) for p in got.problems] == [
        "line 2: a bare string has no id field 'key'",
        "line 3: not valid JSON (not UTF-8)",
        "line 4: expected a JSON object or string, got list",
        "line 5: id field 'key' is missing",
    ]


def test_a_bare_string_item_has_no_fields(tmp_path: Path) -> None:
    src = tmp_path / "items.jsonl"
    src.write_text('"just text"\n')
    (item,) = read_input(src).items
    assert (item.id, item.text, dict(item.fields), item.line) == (1, "just text", {}, 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "item 2: id field 'id' is missing (the first item had one, so every item needs one)"),
        ("", "item 2: id field 'id' is empty (the first item had one, so every item needs one)"),
        (
            True,
            "item 2: id field 'id' is a bool, not a string or integer"
            " (the first item had one, so every item needs one)",
        ),
        (
            1.5,
            "item 2: id field 'id' is a float, not a string or integer"
            " (the first item had one, so every item needs one)",
        ),
    ],
    ids=["missing", "empty", "bool", "float"],
)
def test_unusable_ids_are_named(value: object, message: str) -> None:
    fields = {"id": value, "text": "x"} if value is not None else {"text": "x"}
    got = read_input([{"id": "first", "text": "x"}, fields])
    assert [str(p) for p in got.problems] == [message]


def test_an_explicit_id_field_gives_no_hint() -> None:
    got = read_input([{"text": "x"}], id_field="key")
    assert [str(p) for p in got.problems] == ["item 1: id field 'key' is missing"]


def test_in_memory_items_keep_position_ids_fields_and_repeats() -> None:
    got = read_input([{"text": "x"}, "two", {}, {"text": ["é", 1]}])
    assert [(i.id, dict(i.fields)) for i in got.items] == [
        (1, {"text": "x"}),
        (2, {}),
        (4, {"text": ["é", 1]}),
    ]
    assert got.items[2].text == '["é", 1]'
    assert got.items[2].variables()["text"] == '["é", 1]'
    assert [str(p) for p in got.problems] == [
        "item 3: no 'text' field (fields: none); choose one with --text-field"
    ]


def test_a_string_after_an_id_it_collides_with_names_the_string(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^item 2 has no id, so its number 2 is its id, but item 1 has"):
        read_input([{"id": 2, "text": "x"}, "two"])


def test_repeated_in_memory_ids_name_both_items() -> None:
    got = read_input([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}])
    assert [str(p) for p in got.problems] == ["item 2: id 'a' repeats an earlier item (item 1); skipped"]


def test_only_the_first_eight_field_names_are_listed() -> None:
    fields = {f"f{k}": "v" for k in range(10)}
    (problem,) = read_input([fields]).problems
    assert problem.message == (
        "no 'text' field (fields: f0, f1, f2, f3, f4, f5, f6, f7); choose one with --text-field"
    )


def test_variables_keep_non_ascii_json() -> None:
    from offload.batching.inputs import Item

    assert Item(1, "t", {"tags": ["é"]}).variables()["tags"] == '["é"]'


def test_check_paths_lets_stdin_stdout_and_a_missing_output_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offload.batching.inputs import check_paths

    src = tmp_path / "items.jsonl"
    src.write_text('{"text": "x"}\n')
    monkeypatch.chdir(tmp_path)
    Path("-").write_text("a file named dash")
    check_paths("-", "-")
    check_paths(str(src), None)
    check_paths(str(src), tmp_path / "new.jsonl")
    with pytest.raises(InputError) as caught:
        check_paths(str(src), src)
    assert caught.value.remedy == "write the results to another file"


def test_a_template_on_empty_text_is_refused(offload_home: Path) -> None:
    from offload.tasks.templates import load_template

    tasks = offload_home / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "title.json5").write_text('{template: "Title for {audience}: {text}"}')
    template = load_template("title")
    with pytest.raises(InputError, match=r"^title: empty input\n"):
        template.spec("  ", {"audience": "users"}).check_input()
    template.spec("a text", {"audience": "users"}).check_input()
