"""Hostile and careless input gets one clear error line and a documented exit code, never a
traceback: bad config files, damaged ledgers, full or unwritable data dirs, broken pipes,
odd option values. Everything runs the real ``offload`` entry point in a subprocess.

A full disk is simulated with ``RLIMIT_FSIZE`` = 0 (every write to a regular file fails with
EFBIG, as ENOSPC would), since the tests cannot mount a small filesystem.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from offload.ledger.report import unreadable
from offload.testing import LMStudioFake, start
from tests.e2e import OFFLOAD, Run, offload, write_config


def clear(run: Run, code: int, *words: str) -> None:
    """Exit ``code``, no traceback, and an error line mentioning ``words``."""
    assert run.code == code, run.out + run.err
    assert "Traceback" not in run.err
    assert "error" in run.err.lower()
    for word in words:
        assert word in run.err


def disk_full() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def offload_on_full_disk(*args: str, env: dict[str, str] | None = None) -> Run:
    proc = subprocess.run(
        [*OFFLOAD, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
        preexec_fn=disk_full,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


# --- config -----------------------------------------------------------------------------------


def test_binary_config_file(offload_home: Path) -> None:
    cfg = offload_home / "config.json5"
    offload_home.mkdir(parents=True)
    cfg.write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff" * 20)
    clear(offload("--config", str(cfg), "config", "check"), 2, "not UTF-8 text")


def test_config_with_nul_bytes(offload_home: Path) -> None:
    cfg = write_config(offload_home, "{}\x00\x00")
    clear(offload("--config", str(cfg), "config", "check"), 2, "NUL bytes")


def test_surrogate_escapes_in_config_strings(offload_home: Path) -> None:
    cfg = write_config(offload_home, '{extra: "\\ud800"}')
    clear(offload("--config", str(cfg), "config", "show"), 2, "unpaired")
    cfg.write_text('{extra: "\\ud83d\\ude00"}')
    shown = offload("--config", str(cfg), "config", "show", "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["extra"] == "\U0001f600"


@pytest.mark.parametrize(
    "models",
    [
        '{"a/x": {alias: "b/y"}, "b/y": {alias: "a/x"}}',
        '{"a/x": {alias: "b/y"}, "b/y": {alias: "c/z"}, "c/z": {alias: "a/x"}}',
        '{"A": {alias: "B"}, "B": {alias: "A"}}',
    ],
)
def test_alias_cycles(offload_home: Path, models: str) -> None:
    cfg = write_config(offload_home, f'{{agents: {{defaults: {{model: "a/x", models: {models}}}}}}}')
    clear(offload("--config", str(cfg), "config", "check"), 2, "alias cycle")


def test_very_deep_nesting(offload_home: Path) -> None:
    cfg = write_config(offload_home, "{a: " + "[" * 5000 + "]" * 5000 + "}")
    clear(offload("--config", str(cfg), "config", "check"), 2, "nested too deeply")


def test_moderately_deep_nesting_is_refused_before_it_can_recurse(offload_home: Path) -> None:
    cfg = write_config(offload_home, "{a: " + "[" * 40 + "]" * 40 + "}")
    clear(offload("--config", str(cfg), "config", "check"), 2, "nested deeper than 32 levels")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host/v1", "expected an http:// or https:// URL"),
        ("http://127.0.0.1:99999/v1", "Port out of range"),
        ("http:///v1", "no host"),
    ],
)
def test_unusable_base_urls_fail_config_check(offload_home: Path, url: str, words: str) -> None:
    cfg = write_config(
        offload_home,
        f'{{models: {{providers: {{x: {{baseUrl: "{url}", models: [{{id: "m"}}]}}}}}}, '
        'agents: {defaults: {model: "x/m"}}}',
    )
    clear(offload("--config", str(cfg), "config", "check"), 2, "models.providers.x.baseUrl", words)
    clear(offload("--config", str(cfg), "ask", "hi"), 2, "models.providers.x.baseUrl")


# --- ledger -----------------------------------------------------------------------------------


def ledger_file(home: Path) -> Path:
    path = home / "data" / "usage.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def real_ledger(path: Path) -> bytes:
    from offload.ledger.schema import connect, migrate

    conn = connect(path)
    migrate(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
@pytest.mark.parametrize("command", [["stats"], ["log"], ["stats", "--html", "report.html"]])
def test_damaged_ledger(offload_home: Path, tmp_path: Path, damage: str, command: list[str]) -> None:
    path = ledger_file(offload_home)
    if damage == "garbage":
        path.write_bytes(b"this is not a database at all" * 200)
    else:
        path.write_bytes(real_ledger(path)[:2048])
    run = offload(*[str(tmp_path / c) if c.endswith(".html") else c for c in command])
    clear(run, 1, "is damaged", f"mv {path} {path}.damaged")


def test_unreadable_ledger_messages_say_what_to_check() -> None:
    where = Path("/data/usage.sqlite3")
    readonly = unreadable(where, sqlite3.OperationalError("attempt to write a readonly database"))
    assert "cannot use the usage ledger" in str(readonly)
    assert "readable and writable" in str(readonly)
    full = unreadable(where, sqlite3.OperationalError("database or disk is full"))
    assert "check free space" in str(full)


def test_html_report_on_a_full_disk(tmp_path: Path) -> None:
    run = offload_on_full_disk("stats", "--html", str(tmp_path / "r.html"))
    clear(run, 1, "cannot write the report")
    assert not (tmp_path / "r.html").exists() or (tmp_path / "r.html").stat().st_size == 0


def test_html_report_into_a_missing_folder() -> None:
    clear(
        offload("stats", "--html", "/nonexistent/x.html"), 2, "cannot write the report to /nonexistent/x.html"
    )


def test_log_with_a_huge_limit() -> None:
    run = offload("log", "-n", "99999999999999999999")
    assert run.code == 2
    assert "Traceback" not in run.err
    assert "is not in the range" in run.err


# --- ask --------------------------------------------------------------------------------------


@pytest.fixture
def lms() -> Iterator[tuple[LMStudioFake, dict[str, str]]]:
    fake = LMStudioFake()
    with fake.serve() as server:
        yield fake, {"LM_STUDIO_API_URL": server.url}


def test_conversation_in_an_unwritable_data_dir(
    lms: tuple[LMStudioFake, dict[str, str]], offload_home: Path
) -> None:
    blocker = offload_home / "data" / "conversations"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the folder should be")
    clear(offload("ask", "-c", "notes", "hi", env=lms[1]), 1, "cannot save conversation 'notes'")


def test_conversation_on_a_full_disk_leaves_no_temp_file(
    lms: tuple[LMStudioFake, dict[str, str]], offload_home: Path
) -> None:
    run = offload_on_full_disk("ask", "-c", "notes", "hi", env=lms[1])
    clear(run, 1, "cannot save conversation 'notes'")
    folder = offload_home / "data" / "conversations"
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".lock") == []


def test_invalid_utf8_on_stdin() -> None:
    proc = subprocess.run(
        [*OFFLOAD, "ask"], input=b"abc\xff\xfe", capture_output=True, timeout=60, check=False
    )
    clear(Run(proc.returncode, "", proc.stderr.decode()), 2, "stdin is not UTF-8")


@pytest.mark.parametrize("option", ["--timeout", "--temperature", "--top-p"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_numbers(option: str, value: str) -> None:
    run = offload("ask", option, value, "hi")
    assert run.code == 2
    assert "Traceback" not in run.err
    assert f"Invalid value for '{option}'" in run.err


def test_stream_into_a_closed_pipe(lms: tuple[LMStudioFake, dict[str, str]]) -> None:
    fake, env = lms
    fake.script("\n".join(f"line {i} " + "x" * 200 for i in range(3000)))
    proc = subprocess.Popen(
        [*OFFLOAD, "ask", "--stream", "hi"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b"line 0")
    proc.stdout.close()  # what `| head -1` does
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err.decode()
    assert "asynchronous generator" not in err.decode()
    assert proc.returncode == 0


async def plain_json(request: Request) -> JSONResponse:
    return JSONResponse({"id": "x", "object": "chat.completion", "choices": [{"message": {"content": "hi"}}]})


@pytest.mark.parametrize("api", ["lmstudio", "openai-responses", "anthropic-messages"])
def test_plain_json_where_a_stream_was_expected(offload_home: Path, api: str) -> None:
    server = start(Starlette(routes=[Route("/{p:path}", plain_json, methods=["GET", "POST"])]))
    try:
        cfg = write_config(
            offload_home,
            f'{{agents: {{defaults: {{model: "x/m"}}}}, offload: {{embedded: {{enabled: false}}}}, '
            f'models: {{providers: {{x: {{baseUrl: "{server.url}/v1", api: "{api}", '
            'models: [{id: "m"}]}}}}',
        )
        clear(offload("--config", str(cfg), "ask", "--stream", "hi"), 8, "unexpected")
    finally:
        server.stop()


@pytest.mark.parametrize("ref", ["#/definitions/nope", "http://127.0.0.1:9/remote.json"])
def test_schema_with_an_unresolvable_ref(tmp_path: Path, ref: str) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"$ref": ref}}}))
    clear(offload("extract", "--schema", str(schema), "Maria is 34"), 2, f"$ref {ref!r} does not resolve")


def test_unanticipated_os_errors_are_one_line_unless_debugging() -> None:
    """The last-resort handler: ``config init`` never expected a full device, and still says so."""
    run = offload("config", "init", "--path", "/dev/full", "--force")
    clear(run, 1, "No space left on device")
    debug = offload("config", "init", "--path", "/dev/full", "--force", env={"OFFLOAD_DEBUG": "1"})
    assert "Traceback" in debug.err
