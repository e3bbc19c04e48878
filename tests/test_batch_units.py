"""Batch building blocks without servers: input readers, the output log, the cache, the probe, jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offload.batching.cache import ResultCache, cache_key
from offload.batching.inputs import Item, read_input
from offload.batching.jobs import fingerprint, make_job, render
from offload.batching.output import OutputLog, read_rows
from offload.batching.progress import ProgressBar, Tally, summary_lines
from offload.batching.schedule import Probe
from offload.errors import InputError

# --- inputs --------------------------------------------------------------------------------------


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_ids_text_and_malformed_lines_with_numbers(tmp_path: Path) -> None:
    src = write(
        tmp_path / "in.jsonl",
        '{"id": "a", "text": "first", "lang": "de"}\n'
        "\n"
        "{not json\n"
        '{"id": "b", "text": "second"}\n'
        '{"text": "no id"}\n'
        "[1, 2]\n"
        '{"id": "a", "text": "again"}\n'
        '{"id": 7, "body": "wrong field"}\n'
        '{"id": 8, "text": {"nested": true}}\n',
    )
    got = read_input(src)
    assert [(i.id, i.text, i.line) for i in got.items] == [
        ("a", "first", 1),
        ("b", "second", 4),
        (8, '{"nested": true}', 9),
    ]
    assert got.items[0].fields["lang"] == "de"
    messages = {p.line: p.message for p in got.problems}
    assert set(messages) == {3, 5, 6, 7, 8}
    assert "not valid JSON" in messages[3]
    assert "id field 'id' is missing" in messages[5]
    assert "expected a JSON object or string, got list" in messages[6]
    assert "repeats an earlier item (line 1)" in messages[7]
    assert "no 'text' field (fields: id, body)" in messages[8]
    assert (
        str(got.problems[0]) == "line 3: not valid JSON (Expecting property name enclosed in double quotes)"
    )


def test_jsonl_without_ids_uses_line_numbers_and_bare_strings(tmp_path: Path) -> None:
    src = write(tmp_path / "in.jsonl", '"plain string"\n{"text": "object", "x": 1}\n\n{"text": "third"}\n')
    got = read_input(src)
    assert [i.id for i in got.items] == [1, 2, 4]
    assert got.items[1].variables() == {"text": "object", "x": "1", "id": "2"}
    assert not got.problems


def test_explicit_id_field_and_text_field(tmp_path: Path) -> None:
    src = write(tmp_path / "in.jsonl", '{"key": "k1", "body": "b1"}\n{"body": "b2"}\n')
    got = read_input(src, id_field="key", text_field="body")
    assert [(i.id, i.text) for i in got.items] == [("k1", "b1")]
    assert got.problems[0].line == 2
    assert "id field 'key' is missing" in got.problems[0].message


def test_csv_and_tsv_rows(tmp_path: Path) -> None:
    src = write(
        tmp_path / "in.csv", 'id,text,lang\n1,"hello, world",de\n2,"multi\nline",fr\n3,short\n\n4,ok,it\n'
    )
    got = read_input(src)
    assert [(i.id, i.text, i.fields.get("lang")) for i in got.items] == [
        ("1", "hello, world", "de"),
        ("2", "multi\nline", "fr"),
        ("4", "ok", "it"),
    ]
    assert len(got.problems) == 1
    assert "2 fields where the header has 3" in got.problems[0].message
    assert got.problems[0].line == 5
    tsv = write(tmp_path / "in.tsv", "text\tlabel\nalpha\tx\nbeta\ty\n")
    rows = read_input(tsv)
    assert [(i.id, i.text) for i in rows.items] == [(1, "alpha"), (2, "beta")]


def test_directory_of_files(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    write(root / "b.txt", "bee")
    write(root / "sub" / "a.md", "ay")
    write(root / ".hidden", "no")
    write(root / "bin.dat", b"\xff\xfe\x00bad")
    got = read_input(root)
    assert [(i.id, i.text) for i in got.items] == [("b.txt", "bee"), ("sub/a.md", "ay")]
    assert got.items[1].fields["name"] == "a.md"
    assert [str(p) for p in got.problems] == ["bin.dat: not UTF-8 text"]


def test_empty_and_missing_input(tmp_path: Path) -> None:
    assert read_input(write(tmp_path / "empty.jsonl", "")).items == []
    assert read_input(write(tmp_path / "empty.csv", "")).items == []
    with pytest.raises(InputError, match="no input at"):
        read_input(tmp_path / "nope.jsonl")


def test_in_memory_items() -> None:
    got = read_input(["one", {"id": "x", "text": "two"}, 3, {"text": "no id"}])  # type: ignore[list-item]
    assert [(i.id, i.text) for i in got.items] == [(1, "one"), ("x", "two")]
    assert [(p.where, p.line) for p in got.problems] == [("item", 3), ("item", 4)]
    assert "got int" in got.problems[0].message
    assert "id field 'id' is missing" in got.problems[1].message


# --- output log ----------------------------------------------------------------------------------


def row(item_id: object, error: str | None = None) -> dict[str, object]:
    failure = {"kind": error, "message": "m"} if error else None
    return {"id": item_id, "output": "o", "model": "m", "tokens": {}, "error": failure}


def own_line(item_id: str) -> bytes:
    """One output line as offload writes it."""
    return json.dumps(row(item_id), separators=(",", ":")).encode() + b"\n"


def test_output_appends_whole_lines_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.jsonl"
    log = OutputLog(path)
    assert log.open().done == set()
    log.append(row("a"))
    log.append(row(2, "quality_gate"))
    log.append({**row("nl"), "output": "line one\nline two\u2028"})
    log.close()
    assert path.read_bytes().count(b"\n") == 3
    again = OutputLog(path)
    resume = again.open()
    assert resume.done == {"a", "2", "nl"}
    assert resume.failed == {"2": "quality_gate"}
    assert resume.notes == []
    again.close()
    assert read_rows(path)[2]["output"] == "line one\nline two\u2028"


def test_torn_tail_is_truncated_and_its_item_runs_again(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(own_line("a") + b'{"id":"b","error":nu')
    log = OutputLog(path)
    resume = log.open()
    assert resume.done == {"a"}
    assert "half-written" in resume.notes[0]
    log.append(row("b"))
    log.close()
    assert path.read_bytes() == own_line("a") + own_line("b")


def test_garbage_and_repeats_in_the_middle_are_repaired_atomically(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    torn, zeroed = b'{"id":"b","err\n', b"\x00\x00\x00\x00\n"
    path.write_bytes(own_line("a") + zeroed + own_line("a") + torn + own_line("c"))
    log = OutputLog(path)
    resume = log.open()
    log.close()
    assert resume.done == {"a", "c"}
    assert any("unreadable" in n for n in resume.notes)
    assert any("repeated" in n for n in resume.notes)
    assert [r["id"] for r in read_rows(path)] == ["a", "c"]
    assert path.read_bytes().count(b"\n") == 2
    assert not list(tmp_path.glob(".r.jsonl.*"))


def test_a_rewrite_cut_short_leaves_no_stray_file_after_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(own_line("a"))
    (tmp_path / ".r.jsonl.4242.tmp").write_bytes(b'{"id":"a"')
    log = OutputLog(path)
    assert log.open().done == {"a"}
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


def test_retry_failed_drops_error_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    first = OutputLog(path)
    first.open()
    for r in (row("a"), row("b", "context_overflow"), row("c")):
        first.append(r)
    first.close()
    log = OutputLog(path, retry_failed=True)
    resume = log.open()
    log.close()
    assert resume.done == {"a", "c"}
    assert not resume.failed
    assert [r["id"] for r in read_rows(path)] == ["a", "c"]


def test_one_writer_per_output(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    first = OutputLog(path)
    first.open()
    with pytest.raises(InputError, match="another offload batch is writing"):
        OutputLog(path).open()
    first.close()
    second = OutputLog(path)
    second.open()
    second.close()


def test_output_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        OutputLog(tmp_path).open()


# --- cache ---------------------------------------------------------------------------------------


def test_cache_round_trip_and_read_switch(tmp_path: Path) -> None:
    key = cache_key({"task": "summarize", "chain": ["lmstudio/auto"]}, {"prompt": "p"})
    other = cache_key({"task": "summarize", "chain": ["lmstudio/other"]}, {"prompt": "p"})
    assert key != other
    assert len(key) == 64
    cache = ResultCache(tmp_path / "c.sqlite3")
    assert cache.get(key) is None
    cache.put(key, {"output": "x", "model": "m"})
    cache.close()
    reopened = ResultCache(tmp_path / "c.sqlite3")
    assert reopened.get(key) == {"output": "x", "model": "m"}
    assert reopened.hits == 1
    reopened.close()
    writer_only = ResultCache(tmp_path / "c.sqlite3", read=False)
    assert writer_only.get(key) is None
    writer_only.put(key, {"output": "y"})
    writer_only.close()
    final = ResultCache(tmp_path / "c.sqlite3")
    assert final.get(key) == {"output": "y"}
    final.close()


def test_unusable_cache_path_degrades_to_no_cache(tmp_path: Path) -> None:
    blocker = write(tmp_path / "file", "x")
    cache = ResultCache(blocker / "sub" / "c.sqlite3")
    assert cache.get("k") is None
    cache.put("k", {"output": 1})
    cache.close()
    assert cache.broken is not None
    assert "continuing without it" in cache.broken


# --- probe ---------------------------------------------------------------------------------------


def drive_probe(probe: Probe, slots: int, service: float) -> int:
    """Feed the probe the completions a server with ``slots`` slots would produce (virtual time)."""
    now = 0.0
    for _ in range(2000):
        if probe.done:
            break
        epoch, level = probe.epoch, probe.level
        rate = min(level, slots) / service
        changed = None
        while changed is None and probe.epoch == epoch:
            now += 1 / rate
            changed = probe.finished(epoch, now)
        assert changed is None or changed != level or probe.done
    return probe.level


@pytest.mark.parametrize("slots", [1, 3, 4, 8, 12])
def test_probe_settles_at_or_just_above_the_slot_count(slots: int) -> None:
    probe = Probe()
    level = drive_probe(probe, slots, 0.1)
    assert probe.done
    assert slots <= level < 2 * max(slots, 2)
    assert [lvl for lvl, _ in probe.rates][:2] == [2, 4]


def test_probe_ignores_completions_of_an_older_level() -> None:
    probe = Probe(start=2)
    assert probe.finished(probe.epoch + 1, 1.0) is None
    assert probe.finished(probe.epoch, 1.0) is None
    assert probe.rates == []


def test_probe_stops_at_its_cap() -> None:
    probe = Probe(start=2, cap=8)
    assert drive_probe(probe, 100, 0.1) == 8
    assert probe.done


# --- jobs ----------------------------------------------------------------------------------------


def test_field_placeholders_render_from_the_item() -> None:
    item = Item("i1", "hello", {"lang": "German", "n": 3})
    assert render("into {lang} ({n}) for {id}: {text}", item) == "into German (3) for i1: hello"
    assert render("{missing}", item, strict=False) == "x"
    with pytest.raises(InputError, match="no field 'missing'"):
        render("{missing}", item)
    assert render('literal {"json": 1}', item) == 'literal {"json": 1}'


def test_jobs_check_their_options_up_front() -> None:
    with pytest.raises(InputError, match="at least two labels"):
        make_job("classify", {"labels": ["only"]})
    with pytest.raises(InputError, match="either a JSON Schema or a field list"):
        make_job("extract", {})
    with pytest.raises(TypeError, match="unknown option"):
        make_job("summarize", {"labels": ["a", "b"]})
    with pytest.raises(InputError, match="no task template"):
        make_job("no-such-template", {})


def test_translate_target_per_item_and_ask_prompt() -> None:
    job = make_job("translate", {"target": "{lang}"})
    spec = job.spec(Item(1, "Good morning", {"lang": "French"}))
    assert "into French" in spec.prompt
    with pytest.raises(InputError, match="no field 'lang'"):
        job.spec(Item(2, "Hi", {}))
    ask = make_job("ask", {"prompt": "Title: {title}\n{text}", "max_output_tokens": 20})
    assert ask.needs_text
    spec = ask.spec(Item(1, "body", {"title": "T"}))
    assert spec.prompt == "Title: T\nbody"
    assert spec.max_output_tokens == 20
    assert fingerprint(spec) != fingerprint(ask.spec(Item(2, "body", {"title": "U"})))
    assert not make_job("ask", {"prompt": "Name a {thing}"}).needs_text


def test_template_job_takes_variables_from_fields(offload_home: Path) -> None:
    tasks = offload_home / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "changelog.json5").write_text(
        '{template: "Entry for {audience} in {product}:\\n{text}", '
        'defaults: {audience: "users"}, gate: "off"}'
    )
    job = make_job("changelog", {"variables": {"product": "Acme"}})
    assert job.defaults == {"gate": "off"}
    assert job.spec(Item(1, "diff", {})).prompt == "Entry for users in Acme:\ndiff"
    assert (
        job.spec(Item(2, "diff", {"audience": "admins", "product": "Zed"})).prompt
        == "Entry for admins in Zed:\ndiff"
    )


# --- progress ------------------------------------------------------------------------------------


class Stream:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_tally_progress_line_and_summary() -> None:
    tally = Tally(total=10, skipped=2, earlier_failed=1, malformed=1, started=0.0)
    tally.add({"id": 1, "model": "lmstudio/m", "tokens": {"input": 100, "output": 40}, "error": None})
    tally.add(
        {"id": 2, "model": "cloud/big", "escalated": True, "tokens": {"input": 5, "output": 5}, "error": None}
    )
    tally.add({"id": 3, "model": "lmstudio/m", "cached": True, "tokens": {"output": 999}, "error": None})
    tally.add({"id": 4, "error": {"kind": "context_overflow", "message": "too big"}})
    assert (tally.done, tally.failed, tally.cached, tally.escalated) == (4, 1, 1, 1)
    assert tally.output_tokens == 45
    assert tally.remaining == 4
    assert tally.all_failed == 3
    clock = iter([0.0, 0.0, 2.0])
    bar = ProgressBar(tally, stream=Stream(), tty=False, clock=lambda: next(clock))
    bar.rates(0.0)
    line = bar.line(2.0)
    assert "[" in line
    assert "6/10" in line
    assert "failed 1" in line
    assert "escalated 1" in line
    tally.ended = 4.0
    text = "\n".join(
        summary_lines(tally, task="summarize", output="out.jsonl", servers=["s1"], problems=["line 3: bad"])
    )
    assert "done       6/10 (2 from earlier runs, 1 from the cache)" in text
    assert "context_overflow 1" in text
    assert "1 in earlier runs (rerun with --retry-failed)" in text
    assert "1 unreadable input line(s)" in text
    assert "input      line 3: bad" in text
    assert "models     lmstudio/m 2, cloud/big 1" in text


def test_progress_note_goes_above_the_bar() -> None:
    stream = Stream()
    bar = ProgressBar(Tally(total=1), stream=stream, tty=True)
    bar.note("hello")
    assert stream.text == "hello\n"
