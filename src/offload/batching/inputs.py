"""Batch input: JSONL, CSV/TSV, a directory of text files, or an in-memory iterable, read into ``Item``s.

Owns the item identity rules and the reporting of bad input:

* JSONL — one JSON object (or a bare JSON string) per line; blank lines are skipped. The id is
  ``--id-field`` when given (then required on every line); otherwise the ``id`` field when the
  first object has one; otherwise the line number. The text is ``--text-field`` (``text``).
* CSV/TSV — a header row (names must be unique), then one item per record; the same id/text
  rules, with the data row number (1-based) as the default id. Every column is a template
  variable. Broken quoting (a quote never closed, text after a closing quote) stops the read
  with an ``InputError`` naming the line where the record starts, since every later row would
  be misread; a row that is not UTF-8 is a problem on its own line.
* a directory — every non-hidden regular file below it (sorted), id = the relative POSIX path.
  Symbolic links that lead out of the directory are skipped (reported) unless
  ``follow_symlinks``; directory link cycles are walked once.
* in memory — strings (id = position, 1-based) or mappings (as JSONL objects).

A line that cannot be read becomes an ``InputProblem`` with its line number and the rest is
read on; a repeated id is a problem too (the first occurrence wins), so every id is unique.
An id taken from a position (a bare JSONL string, an item without one) that equals another
item's id is an ``InputError``: which result belongs to which item would be a guess.
Ids are strings or integers; ``Item.key`` (``str(id)``) is what output and resume compare.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from offload.errors import InputError

Format = Literal["jsonl", "csv", "tsv", "dir"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "tsv", "dir")
ItemId = str | int
FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)
"""Largest CSV field read (the csv module's default of 128 KiB is too small for documents)."""


@dataclass(frozen=True)
class Item:
    """One unit of batch work."""

    id: ItemId
    text: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0
    """Where it came from (line of JSONL, last line of a CSV record; 0 when not from a file)."""

    @property
    def key(self) -> str:
        """The id as output and resume compare it."""
        return str(self.id)

    def variables(self) -> dict[str, str]:
        """Template variables: every field as text (non-strings as JSON), plus ``id`` and ``text``."""
        out = {
            k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in self.fields.items()
        }
        out.setdefault("id", str(self.id))
        if self.text is not None:
            out["text"] = self.text
        return out


@dataclass(frozen=True)
class InputProblem:
    """A line of input that is not an item."""

    line: int
    message: str
    where: str = "line"

    def __str__(self) -> str:
        return f"{self.where} {self.line}: {self.message}" if self.line else self.message


@dataclass
class InputSet:
    """Everything read from one input."""

    items: list[Item] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    source: str = ""


def detect_format(path: Path) -> Format:
    """``dir`` for a directory, ``csv``/``tsv`` by suffix, else ``jsonl``."""
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    return "jsonl"


def read_input(
    source: str | os.PathLike[str] | Iterable[str | Mapping[str, Any]],
    *,
    fmt: Format | None = None,
    id_field: str | None = None,
    text_field: str = "text",
    need_text: bool = True,
    exclude: Iterable[str | os.PathLike[str]] = (),
    follow_symlinks: bool = False,
) -> InputSet:
    """Read every item of ``source`` (a path, ``-`` for stdin JSONL, or an iterable).

    ``exclude`` names files a directory walk skips (the output file, when it lies inside);
    ``follow_symlinks`` lets the walk follow links that lead out of the directory.
    """
    reader = _Reader(id_field, text_field, need_text)
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if name == "-":
            return reader.finish(_jsonl(reader, sys.stdin.buffer), "stdin")
        path = Path(name).expanduser()
        if not path.exists():
            raise InputError(f"no input at {path}", remedy="give a JSONL or CSV file, or a directory")
        kind = fmt or detect_format(path)
        if kind == "dir":
            if not path.is_dir():
                raise InputError(f"{path} is not a directory")
            skip = {Path(p).expanduser().resolve() for p in exclude}
            return reader.finish(_directory(reader, path, skip, follow_symlinks), str(path))
        if kind in ("csv", "tsv"):
            return reader.finish(_csv(reader, path, "\t" if kind == "tsv" else ","), str(path))
        try:
            with path.open("rb") as handle:
                return reader.finish(_jsonl(reader, handle), str(path))
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return reader.finish(_memory(reader, source), "items")


class _Reader:
    """Turns raw records into items, applying the id/text rules and catching repeats."""

    def __init__(self, id_field: str | None, text_field: str, need_text: bool) -> None:
        self.id_field = id_field
        self.explicit_id = id_field is not None
        self.decided = id_field is not None
        self.text_field = text_field
        self.need_text = need_text
        self.seen: dict[str, tuple[int, bool]] = {}
        """Key → (line, whether the id was the item's position) of every item so far."""
        self.out = InputSet()

    def finish(self, records: Iterator[None], source: str) -> InputSet:
        for _ in records:
            pass
        self.out.source = source
        return self.out

    def problem(self, line: int, message: str, where: str = "line") -> None:
        self.out.problems.append(InputProblem(line, message, where))

    def record(self, fields: Mapping[str, Any], line: int, number: int, where: str = "line") -> None:
        """Add one record; ``number`` is the default id (line or row number)."""
        if not self.decided:
            self.id_field = "id" if "id" in fields else None
            self.decided = True
        item_id: ItemId = number
        if self.id_field is not None:
            raw = fields.get(self.id_field)
            if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int) or raw == "":
                kind = f"a {type(raw).__name__}, not a string or integer"
                got = "missing" if raw is None else "empty" if raw == "" else kind
                hint = "" if self.explicit_id else " (the first item had one, so every item needs one)"
                self.problem(line, f"id field {self.id_field!r} is {got}{hint}", where)
                return
            item_id = raw
        text = fields.get(self.text_field)
        if text is not None and not isinstance(text, str):
            text = json.dumps(text, ensure_ascii=False)
        if text is None and self.need_text:
            names = ", ".join(list(fields)[:8]) or "none"
            self.problem(
                line, f"no {self.text_field!r} field (fields: {names}); choose one with --text-field", where
            )
            return
        self.add(Item(item_id, text, fields, line), where)  # position ids here never meet explicit ones

    def leaves(self, root: Path, path: Path, inside: Path, follow: bool) -> bool:
        """True (and reported) when ``path`` is a link out of the directory being walked."""
        if follow or not path.is_symlink() or path.resolve().is_relative_to(inside):
            return False
        rel = path.relative_to(root).as_posix()
        self.out.problems.append(
            InputProblem(
                0, f"{rel}: a symbolic link out of the directory; skipped (--follow-symlinks)", "file"
            )
        )
        return True

    def add(self, item: Item, where: str = "line", *, implicit: bool = False) -> None:
        """Keep ``item`` unless its id was seen (``implicit``: the id is the item's position)."""
        first = self.seen.get(item.key)
        if first is None:
            self.seen[item.key] = (item.line, implicit)
            self.out.items.append(item)
            return
        line, was_implicit = first
        if implicit or was_implicit:
            numbered, other = (item.line, line) if implicit else (line, item.line)
            raise InputError(
                f"{where} {numbered} has no id, so its number {item.key} is its id, but {where} {other} "
                f"has the id {item.key!r} too",
                remedy="give every item an id of its own (or none at all)",
            )
        self.problem(item.line, f"id {item.key!r} repeats an earlier item ({where} {line}); skipped", where)


def _jsonl(reader: _Reader, handle: Any) -> Iterator[None]:
    for number, raw in enumerate(handle, 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            reader.problem(number, f"not valid JSON ({reason})")
            yield
            continue
        if isinstance(value, str):
            if reader.id_field is not None and reader.explicit_id:
                reader.problem(number, f"a bare string has no id field {reader.id_field!r}")
            else:
                reader.add(Item(number, value, {}, number), implicit=True)
        elif isinstance(value, dict):
            reader.record(value, number, number)
        else:
            reader.problem(number, f"expected a JSON object or string, got {type(value).__name__}")
        yield


class _Lines:
    """A file's lines as text for ``csv``, decoded one at a time; remembers lines that are not UTF-8."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.number = 0
        self.bad: list[int] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw: bytes = next(self.handle)
        self.number += 1
        if self.number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.bad.append(self.number)
            return raw.decode("utf-8", "replace")


def _csv(reader: _Reader, path: Path, delimiter: str) -> Iterator[None]:
    csv.field_size_limit(FIELD_LIMIT)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        lines = _Lines(handle)
        rows = csv.reader(lines, delimiter=delimiter, strict=True)
        header = _header(path, rows, lines)
        if header is None:
            return
        number = 0
        while True:
            start = rows.line_num + 1
            try:
                row = next(rows, None)
            except csv.Error as exc:
                raise _broken(path, start, rows.line_num, exc) from None
            if row is None:
                return
            if not any(cell.strip() for cell in row):
                continue
            number += 1
            if lines.bad and lines.bad[-1] >= start:
                reader.problem(lines.bad[-1], "not UTF-8 text; the row is skipped (save the file as UTF-8)")
            elif len(row) != len(header):
                reader.problem(start, f"{len(row)} fields where the header has {len(header)}")
            else:
                reader.record({name: row[k] for k, name in enumerate(header)}, start, number)
            yield


def _header(path: Path, rows: Any, lines: _Lines) -> list[str] | None:
    """The column names (``InputError`` when the first row is unreadable or repeats a name)."""
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise _broken(path, 1, rows.line_num, exc) from None
    if lines.bad:
        raise InputError(f"{path}: the header row is not UTF-8 text", remedy="save the file as UTF-8")
    if header is None:
        return None
    names = [h.strip() for h in header]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(
            f"{path}: the header row names {', '.join(repr(n) for n in twice)} more than once",
            remedy="give every column a name of its own",
        )
    return names


def _broken(path: Path, line: int, end: int, exc: csv.Error) -> InputError:
    """Broken quoting: every later row would be misread, so the whole file is refused."""
    reason = str(exc)
    if "unexpected end of data" in reason:
        reason = "a quoted field starts in this record and is never closed"
    elif "expected after" in reason:
        reason = f"a quoted field starts in this record and its closing quote (line {end}) has text after it"
    return InputError(
        f"{path}: line {line}: {reason}",
        remedy='wrap a field that holds quotes in quotes and double the quotes inside ("a ""b"" c")',
    )


def _directory(reader: _Reader, root: Path, skip: set[Path], follow: bool) -> Iterator[None]:
    for index, path in enumerate(_walk(reader, root, skip, follow), 1):
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else (exc.strerror or str(exc))
            reader.out.problems.append(InputProblem(0, f"{rel}: {reason}", "file"))
            yield
            continue
        reader.add(Item(rel, text, {"path": rel, "name": path.name}, index))  # paths never repeat
        yield


def _walk(reader: _Reader, root: Path, skip: set[Path], follow: bool) -> list[Path]:
    """The regular files below ``root`` (sorted), without hidden names, ``skip``, or links out."""
    inside = root.resolve()
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for top, dirs, names in os.walk(root, followlinks=follow):
        here = Path(top)
        info = here.stat()
        if (info.st_dev, info.st_ino) in seen:  # a link cycle
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and not reader.leaves(root, here / d, inside, follow)
        )
        for name in names:
            path = here / name
            if name.startswith(".") or reader.leaves(root, path, inside, follow):
                continue
            if path.is_file() and path.resolve() not in skip:
                found.append(path)
    return sorted(found)


def _memory(reader: _Reader, values: Iterable[Any]) -> Iterator[None]:
    for number, value in enumerate(values, 1):
        if isinstance(value, str):
            reader.add(Item(number, value, {}, number), "item", implicit=True)
        elif isinstance(value, Mapping):
            reader.record(value, number, number, "item")
        else:
            reader.problem(number, f"expected a string or a mapping, got {type(value).__name__}", "item")
        yield


def check_paths(items: object, output: str | os.PathLike[str] | None) -> None:
    """The output must not be the input file itself (the same path, a symlink or a hard link)."""
    if output is None or not isinstance(items, str | os.PathLike):
        return
    if "-" in (os.fspath(items), os.fspath(output)):
        return
    source, target = Path(items).expanduser(), Path(output).expanduser()
    try:
        same = source.is_file() and os.path.samefile(source, target)
    except OSError:  # the output does not exist yet
        return
    if same:
        raise InputError(f"the output {target} is the input file", remedy="write the results to another file")
